package remote

import (
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gitgate/gitgate/internal/git"
	"github.com/gitgate/gitgate/internal/git/gittest"
)

// sshFixture is a repository with a tag, a branch and three commits, served over ssh
// to one key, and settings with that key and a known_hosts naming the server.
type sshFixture struct {
	srv        *gittest.SSH
	s          Settings
	c1, c2, c3 string
}

func newSSHFixture(t *testing.T) *sshFixture {
	t.Helper()
	work := gittest.Init(t, "")
	fx := &sshFixture{}
	fx.c1 = work.CommitFiles("one", map[string]string{"base/kustomization.yaml": "resources: [cm.yaml]\n", "base/cm.yaml": "v: 1\n"})
	work.Tag("v1.0", fx.c1, "release one")
	fx.c2 = work.CommitFiles("two", map[string]string{"base/cm.yaml": "v: 2\n"})
	work.Branch("release", fx.c2)
	fx.c3 = work.CommitFiles("three", map[string]string{"base/cm.yaml": "v: 3\n"})
	key, pub := gittest.SSHKey(t, "")
	fx.srv = gittest.SSHServer(t, work.Dir, pub)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(fx.srv.KnownHosts()), 0o644); err != nil {
		t.Fatal(err)
	}
	fx.s = testSettings(t, "")
	fx.s.Allow = []string{"127.0.0.1"}
	fx.s.SSHKeyFile, fx.s.KnownHostsFile = key, kh
	return fx
}

// Over ssh: a tag, a branch and a commit, in the ssh:// form; offline afterwards with
// no connection.
func TestGitSSH(t *testing.T) {
	fx := newSSHFixture(t)
	f := newFetcher(t, fx.s)
	for _, tc := range []struct{ ref, commit, content string }{
		{"v1.0", fx.c1, "v: 1\n"},
		{"release", fx.c2, "v: 2\n"},
		{fx.c3, fx.c3, "v: 3\n"},
	} {
		tree, err := f.Git(ctx, fx.srv.URL, tc.ref)
		if err != nil {
			t.Fatalf("%q over ssh: %v", tc.ref, err)
		}
		if tree.Commit != tc.commit {
			t.Errorf("%q: commit %s, want %s", tc.ref, tree.Commit, tc.commit)
		}
		if b, err := os.ReadFile(filepath.Join(tree.Dir, "base", "cm.yaml")); err != nil || string(b) != tc.content {
			t.Errorf("%q: cm.yaml = %q, %v", tc.ref, b, err)
		}
	}
	if fx.srv.Packs.Load() == 0 {
		t.Fatal("no pack was served")
	}

	// Offline after the warm run: the same refs, no connection.
	conns := fx.srv.Conns.Load()
	off := fx.s
	off.Offline = true
	g := newFetcher(t, off)
	for _, ref := range []string{"v1.0", "release", fx.c3} {
		if _, err := g.Git(ctx, fx.srv.URL, ref); err != nil {
			t.Errorf("offline %s: %v", ref, err)
		}
	}
	if _, err := g.Git(ctx, fx.srv.URL, "other"); !errors.As(err, new(*OfflineError)) {
		t.Errorf("offline, a ref never fetched: %v", err)
	}
	if n := fx.srv.Conns.Load() - conns; n != 0 {
		t.Errorf("offline opened %d connections", n)
	}
}

// What is refused over ssh, each with a clear error and (where the refusal is the
// fetcher's) no connection to the server.
func TestGitSSHRefused(t *testing.T) {
	fx := newSSHFixture(t)
	_, port, _ := net.SplitHostPort(fx.srv.Addr)

	// A key the server does not accept.
	wrong := fx.s
	wrong.SSHKeyFile, _ = gittest.SSHKey(t, "")
	_, err := newFetcher(t, wrong).Git(ctx, fx.srv.URL, "v1.0")
	if err == nil || !strings.HasPrefix(err.Error(), fx.srv.URL+": not fetched: ") || !strings.Contains(err.Error(), "the server refused the ssh key "+wrong.SSHKeyFile) || !strings.Contains(err.Error(), "--ssh-key") {
		t.Errorf("a key the server refuses: %v", err)
	}

	// A host known_hosts does not name: refused, with what to do.
	unknown := fx.s
	unknown.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(unknown.KnownHostsFile, nil, 0o644)
	_, err = newFetcher(t, unknown).Git(ctx, fx.srv.URL, "v1.0")
	if err == nil || !strings.HasPrefix(err.Error(), fx.srv.URL+": not fetched: ") || !strings.Contains(err.Error(), "host 127.0.0.1:"+port+" is not in known_hosts") ||
		!strings.Contains(err.Error(), "ssh-keyscan -p "+port+" 127.0.0.1") || !strings.Contains(err.Error(), "--known-hosts") {
		t.Errorf("an unknown host key: %v", err)
	}
	packs := fx.srv.Packs.Load()
	if packs != 0 {
		t.Errorf("%d packs sent to refused fetches", packs)
	}

	// Not in remotes.allow: no connection at all.
	conns := fx.srv.Conns.Load()
	other := fx.s
	other.Allow = []string{"git.example.com"}
	_, err = newFetcher(t, other).Git(ctx, fx.srv.URL, "v1.0")
	var re *RefusedError
	if !errors.As(err, &re) || re.Allow != "127.0.0.1:"+port {
		t.Errorf("not allowed: %v", err)
	}
	// The scp-like form too (it carries no port: the check comes first).
	if _, err := newFetcher(t, other).Git(ctx, "git@127.0.0.1:repo.git", "v1.0"); !errors.As(err, new(*RefusedError)) || !strings.Contains(err.Error(), "host not in remotes.allow") {
		t.Errorf("scp-like, not allowed: %v", err)
	}
	// A host name allowed, its address loopback: refused at dial time.
	byName := fx.s
	byName.Allow = []string{"localhost"}
	_, err = newFetcher(t, byName).Git(ctx, strings.Replace(fx.srv.URL, "127.0.0.1", "localhost", 1), "v1.0")
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "loopback") || !strings.HasPrefix(err.Error(), "ssh://git@localhost:"+port+"/repo.git: not fetched: ") {
		t.Errorf("loopback by name: %v", err)
	}
	if n := fx.srv.Conns.Load() - conns; n != 0 {
		t.Errorf("%d connections reached the server for refused fetches", n)
	}

	for _, e := range []string{"PRIVATE KEY"} {
		if err != nil && strings.Contains(err.Error(), e) {
			t.Errorf("an error shows the key: %v", err)
		}
	}
}

// A pack over the download limit fails the fetch; the references alone fit.
func TestGitSSHDownloadLimit(t *testing.T) {
	work := gittest.Init(t, "")
	big := make([]byte, 256<<10)
	rand.Read(big) // incompressible
	c := work.CommitFiles("big", map[string]string{"big.bin": string(big)})
	key, pub := gittest.SSHKey(t, "")
	srv := gittest.SSHServer(t, work.Dir, pub)
	s := testSettings(t, "")
	s.Allow = []string{"127.0.0.1"}
	s.SSHKeyFile, s.KnownHostsFile = key, filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(s.KnownHostsFile, []byte(srv.KnownHosts()), 0o644)
	s.MaxDownloadBytes = 64 << 10
	_, err := newFetcher(t, s).Git(ctx, srv.URL, c)
	if err == nil || !strings.HasPrefix(err.Error(), srv.URL+": not fetched: ") || !strings.Contains(err.Error(), "download limit of 65536 bytes") {
		t.Errorf("over the limit: %v", err)
	}
	if srv.Packs.Load() == 0 {
		t.Error("the server sent no pack to the limited fetch: the limit was not what stopped it")
	}
	s.MaxDownloadBytes = 1 << 20
	s.CacheDir = t.TempDir()
	if tree, err := newFetcher(t, s).Git(ctx, srv.URL, c); err != nil || tree.Commit != c {
		t.Errorf("under the limit: %+v %v", tree, err)
	}
}

var (
	proxyTrapOnce  sync.Once
	proxyTrapConns atomic.Int64
)

// proxyTrap is a TCP listener set as ALL_PROXY (socks5) for the rest of the process:
// golang.org/x/net/proxy reads the variable once per process, so it is set once, and
// it counts the connections it gets.
func proxyTrap(t *testing.T) {
	proxyTrapOnce.Do(func() {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				proxyTrapConns.Add(1)
				c.Close()
			}
		}()
		os.Setenv("ALL_PROXY", "socks5://"+l.Addr().String())
	})
}

// ALL_PROXY in the environment is what go-git's own ssh dialler uses (the control:
// internal/git without the fetcher's dialer, as sync reads its own repository); the
// fetcher never contacts it.
func TestGitSSHIgnoresAllProxy(t *testing.T) {
	proxyTrap(t)
	fx := newSSHFixture(t)
	before := proxyTrapConns.Load()
	auth := git.Auth{SSHKeyFile: fx.s.SSHKeyFile, KnownHostsFile: fx.s.KnownHostsFile}
	if _, err := (git.Source{URL: fx.srv.URL, Ref: "v1.0", Auth: auth, CacheDir: t.TempDir()}).Fetch(ctx); err == nil {
		t.Error("control: go-git's own dialler did not go through the ALL_PROXY trap")
	}
	if proxyTrapConns.Load() == before {
		t.Fatal("control: the ALL_PROXY trap was not contacted by go-git's own dialler, so this test would prove nothing")
	}
	before = proxyTrapConns.Load()
	conns := fx.srv.Conns.Load()
	tree, err := newFetcher(t, fx.s).Git(ctx, fx.srv.URL, "v1.0")
	if err != nil || tree.Commit != fx.c1 {
		t.Fatalf("fetch with ALL_PROXY set: %+v %v", tree, err)
	}
	if n := proxyTrapConns.Load() - before; n != 0 {
		t.Errorf("the fetcher contacted ALL_PROXY %d times", n)
	}
	if fx.srv.Conns.Load() == conns {
		t.Error("the fetch did not reach the server directly")
	}
}
