package git

import (
	"context"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"

	"github.com/gitgate/gitgate/internal/git/gittest"
)

// sshFixture is a repository served over ssh, a key the server accepts and a
// known_hosts naming the server.
func sshFixture(t *testing.T) (work *gittest.Repo, srv *gittest.SSH, key, knownHosts string) {
	t.Helper()
	work = gittest.Init(t, "")
	key, pub := gittest.SSHKey(t, "")
	srv = gittest.SSHServer(t, work.Dir, pub)
	knownHosts = filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(srv.KnownHosts()), 0o644); err != nil {
		t.Fatal(err)
	}
	return work, srv, key, knownHosts
}

// A repository over ssh with a key and known_hosts: a tag and a commit fetched; a key
// the server refuses, a host known_hosts does not name and a changed host key are
// errors saying what to do, and never show the key.
func TestSourceFetchSSH(t *testing.T) {
	work, srv, key, knownHosts := sshFixture(t)
	c1 := work.CommitFiles("one", map[string]string{"app.yaml": "one\n"})
	work.Tag("v1", c1, "")
	c2 := work.CommitFiles("two", map[string]string{"app.yaml": "two\n"})
	auth := Auth{SSHKeyFile: key, KnownHostsFile: knownHosts, Flags: AuthFlags{SSHKey: "--ssh-key", KnownHosts: "--known-hosts"}}
	for rev, want := range map[string]string{"v1": c1, c2: c2, "": c2} {
		co, err := Source{URL: srv.URL, Ref: rev, Auth: auth, CacheDir: t.TempDir()}.Fetch(context.Background())
		if err != nil || co.Commit != want {
			t.Fatalf("%q over ssh: %+v %v, want %s", rev, co, err, want)
		}
	}
	if srv.Packs.Load() == 0 {
		t.Fatal("no pack was served over ssh")
	}
	keyText, _ := os.ReadFile(key)

	other, _ := gittest.SSHKey(t, "")
	wrong := auth
	wrong.SSHKeyFile = other
	_, err := Source{URL: srv.URL, Ref: "v1", Auth: wrong, CacheDir: t.TempDir()}.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "the server refused the ssh key "+other) || !strings.Contains(err.Error(), "give --ssh-key a key the server accepts") {
		t.Errorf("a key the server refuses: %v", err)
	}

	unknown := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(unknown, nil, 0o644)
	noHost := auth
	noHost.KnownHostsFile = unknown
	_, port, _ := net.SplitHostPort(srv.Addr)
	_, err = Source{URL: srv.URL, Ref: "v1", Auth: noHost, CacheDir: t.TempDir()}.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is not in known_hosts ("+unknown+")") || !strings.Contains(err.Error(), "ssh-keyscan -p "+port+" 127.0.0.1") || !strings.Contains(err.Error(), "--known-hosts") {
		t.Errorf("a host known_hosts does not name: %v", err)
	}

	other2 := gittest.SSHServer(t, work.Dir, nil) // another host key
	changed := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(changed, []byte(strings.Replace(other2.KnownHosts(), other2.Addr[strings.LastIndex(other2.Addr, ":")+1:], port, 1)), 0o644)
	bad := auth
	bad.KnownHostsFile = changed
	_, err = Source{URL: srv.URL, Ref: "v1", Auth: bad, CacheDir: t.TempDir()}.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "which is not the one known_hosts ("+changed+":1) holds") {
		t.Errorf("a changed host key: %v", err)
	}

	// A key with a passphrase ($GITGATE_SSH_KEY_PASSPHRASE): used with it; a wrong one is
	// an error that does not show it.
	locked := filepath.Join(t.TempDir(), "id_locked")
	os.WriteFile(locked, encryptKey(t, key, "correct horse"), 0o600)
	withPass := auth
	withPass.SSHKeyFile = locked
	t.Setenv(SSHKeyPassphraseEnv, "correct horse")
	if co, err := (Source{URL: srv.URL, Ref: "v1", Auth: withPass, CacheDir: t.TempDir()}).Fetch(context.Background()); err != nil || co.Commit != c1 {
		t.Errorf("a key with its passphrase: %+v %v", co, err)
	}
	t.Setenv(SSHKeyPassphraseEnv, "wrong battery")
	_, err = Source{URL: srv.URL, Ref: "v1", Auth: withPass, CacheDir: t.TempDir()}.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ssh key "+locked) || strings.Contains(err.Error(), "wrong battery") || strings.Contains(err.Error(), "correct horse") {
		t.Errorf("a wrong passphrase: %v", err)
	}

	t.Setenv("SSH_AUTH_SOCK", "")
	agent := auth
	agent.SSHKeyFile = ""
	_, err = Source{URL: srv.URL, Ref: "v1", Auth: agent, CacheDir: t.TempDir()}.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no ssh key: give --ssh-key, or run an ssh agent") {
		t.Errorf("no key and no agent: %v", err)
	}
	for _, e := range []error{err} {
		if strings.Contains(e.Error(), strings.TrimSpace(string(keyText))[40:80]) {
			t.Errorf("an error shows the key: %v", e)
		}
	}
}

// encryptKey is the private key in file encrypted with passphrase.
func encryptKey(t *testing.T, file, passphrase string) []byte {
	t.Helper()
	b, _ := os.ReadFile(file)
	raw, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(raw, "", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

// fakeSSHConfig is an ssh_config rewriting one host's Hostname and Port.
type fakeSSHConfig struct{ host, hostname, port string }

func (c fakeSSHConfig) Get(alias, key string) string {
	if alias != c.host {
		return ""
	}
	switch key {
	case "Hostname":
		return c.hostname
	case "Port":
		return c.port
	}
	return ""
}

// Under WithSSHDialer every connection goes through the dialer, and only to the URL's
// own host and port: ~/.ssh/config rewriting the host is refused before anything is
// dialled. Without it (sync and report's own repository) go-git follows the ssh
// configuration as before.
func TestSSHDialerHost(t *testing.T) {
	work, srv, key, knownHosts := sshFixture(t)
	c1 := work.CommitFiles("one", map[string]string{"app.yaml": "one\n"})
	auth := Auth{SSHKeyFile: key, KnownHostsFile: knownHosts}
	var dials atomic.Int64
	var dialled []string
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		dialled = append(dialled, addr)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	ctx := WithSSHDialer(context.Background(), dialer)
	co, err := Source{URL: srv.URL, Auth: auth, CacheDir: t.TempDir()}.Fetch(ctx)
	if err != nil || co.Commit != c1 {
		t.Fatalf("through the dialer: %+v %v", co, err)
	}
	if dials.Load() == 0 || dialled[0] != srv.Addr {
		t.Fatalf("the dialer dialled %v, want %s", dialled, srv.Addr)
	}
	if _, err := (Source{URL: srv.URL, Auth: auth}).Read(ctx, nil); err != nil {
		t.Fatalf("Read through the dialer: %v", err)
	}

	_, port, _ := net.SplitHostPort(srv.Addr)
	saved := gitssh.DefaultSSHConfig
	t.Cleanup(func() { gitssh.DefaultSSHConfig = saved })
	gitssh.DefaultSSHConfig = fakeSSHConfig{host: "git.example.test", hostname: "127.0.0.1", port: port}
	url := "ssh://git@git.example.test/repo.git"
	n, conns := dials.Load(), srv.Conns.Load()
	_, err = Source{URL: url, Auth: auth, CacheDir: t.TempDir()}.Fetch(ctx)
	if err == nil || !strings.Contains(err.Error(), "sends git.example.test:22 to 127.0.0.1:"+port) {
		t.Errorf("a host the ssh configuration rewrites: %v", err)
	}
	if dials.Load() != n || srv.Conns.Load() != conns {
		t.Errorf("the rewritten host was dialled (%d dials, %d connections)", dials.Load()-n, srv.Conns.Load()-conns)
	}
	// Without the dialer: go-git's own behaviour, the rewrite followed.
	co, err = Source{URL: url, Auth: auth, CacheDir: t.TempDir()}.Fetch(context.Background())
	if err != nil || co.Commit != c1 {
		t.Errorf("without the dialer the ssh configuration is followed as before: %+v %v", co, err)
	}
}
