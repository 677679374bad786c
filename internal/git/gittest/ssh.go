package gittest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSH is a Git server over ssh started by SSHServer.
type SSH struct {
	// URL is ssh://git@127.0.0.1:PORT/repo.git; Addr is 127.0.0.1:PORT.
	URL, Addr string
	// HostKey is the server's public host key.
	HostKey ssh.PublicKey
	// Conns counts the TCP connections accepted, Packs the packs sent.
	Conns, Packs atomic.Int64
}

// KnownHosts is the server's line for a known_hosts file.
func (s *SSH) KnownHosts() string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey) + "\n"
}

// SSHKey makes an ed25519 key pair: the private key in OpenSSH's format in a file in
// dir (a new temporary one if ""), and its public key.
func SSHKey(t testing.TB, dir string) (file string, pub ssh.PublicKey) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(sk, "gittest")
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if pub, err = ssh.NewPublicKey(pk); err != nil {
		t.Fatal(err)
	}
	return file, pub
}

// SSHServer serves the repository in dir over ssh on 127.0.0.1 (golang.org/x/crypto/ssh
// with go-git's own upload-pack server, as HTTPServer serves it over HTTP): public-key
// authentication with authorized only, as any user; a session's `exec git-upload-pack
// '<path>'` for the path /repo.git (or repo.git), nothing else. Like HTTPServer it does
// not serve shallow fetches.
func SSHServer(t testing.TB, dir string, authorized ssh.PublicKey) *SSH {
	t.Helper()
	srv, ep := uploadPackServer(t, dir)
	_, hostKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if authorized != nil && bytes.Equal(key.Marshal(), authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("key not authorized")
		},
	}
	cfg.AddHostKey(signer)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &SSH{Addr: l.Addr().String(), HostKey: signer.PublicKey()}
	s.URL = "ssh://git@" + s.Addr + "/repo.git"
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.Conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serveConn(c, cfg, srv, ep)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *SSH) serveConn(c net.Conn, cfg *ssh.ServerConfig, srv transport.Transport, ep *transport.Endpoint) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "session channels only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go s.serveSession(ch, creqs, srv, ep)
	}
}

func (s *SSH) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request, srv transport.Transport, ep *transport.Endpoint) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			req.Reply(req.Type == "env", nil) // environment variables are accepted and ignored
			continue
		}
		var cmd struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &cmd); err != nil {
			req.Reply(false, nil)
			return
		}
		req.Reply(true, nil)
		status := uint32(0)
		if err := s.uploadPack(ch, cmd.Command, srv, ep); err != nil {
			fmt.Fprintf(ch.Stderr(), "fatal: %v\n", err)
			status = 128
		}
		ch.CloseWrite()
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		// As sshd, the channel is closed once the client closed its input too: a
		// close before it fails the client's own (go-git: "closing input: EOF").
		drained := make(chan struct{})
		go func() {
			io.Copy(io.Discard, ch)
			close(drained)
		}()
		select {
		case <-drained:
		case <-time.After(5 * time.Second):
		}
		return
	}
}

// uploadPack serves one `git-upload-pack '<path>'`: the references, then a pack for the
// request that follows (none when the client only listed the references).
func (s *SSH) uploadPack(ch ssh.Channel, command string, srv transport.Transport, ep *transport.Endpoint) error {
	name, path, _ := strings.Cut(command, " ")
	path = strings.Trim(path, "'")
	if name != "git-upload-pack" {
		return fmt.Errorf("%q: only git-upload-pack is served", name)
	}
	if strings.TrimPrefix(path, "/") != "repo.git" {
		return fmt.Errorf("'%s' does not appear to be a git repository", path)
	}
	sess, err := srv.NewUploadPackSession(ep, nil)
	if err != nil {
		return err
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(context.Background())
	if err != nil {
		return err
	}
	if err := ar.Encode(ch); err != nil {
		return err
	}
	in := bufio.NewReader(ch)
	if b, err := in.Peek(4); err != nil || string(b) == "0000" {
		return nil // the client listed the references only (a flush, or the end)
	}
	req := packp.NewUploadPackRequest()
	if err := req.Decode(in); err != nil {
		return err
	}
	resp, err := sess.UploadPack(context.Background(), req)
	if err != nil {
		// As git's upload-pack answers a request it cannot serve (here: a shallow one).
		pktline.NewEncoder(ch).Encodef("ERR %s\n", err)
		return err
	}
	s.Packs.Add(1)
	return resp.Encode(ch)
}
