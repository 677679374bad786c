package git

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/internal/git/gittest"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

// A local repository through a path: fetched into the cache once, the worktree reused,
// a new commit fetched, tags and commit hashes resolved.
func TestSourceFetch(t *testing.T) {
	work := gittest.Init(t, "")
	first := work.CommitFiles("c", map[string]string{"app.yaml": "one\n"})
	work.Tag("v1", first, "")
	src := Source{URL: work.Dir, CacheDir: t.TempDir()}
	co, err := src.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if co.Commit != first || co.Ref != "refs/heads/master" {
		t.Fatalf("checkout = %+v, want %s on master", co, first)
	}
	if b, _ := os.ReadFile(filepath.Join(co.Dir, "app.yaml")); string(b) != "one\n" {
		t.Fatalf("worktree file = %q", b)
	}
	if _, err := os.Stat(filepath.Join(co.Dir, ".git")); err == nil {
		t.Fatal("the worktree holds .git")
	}
	second := work.CommitFiles("c", map[string]string{"app.yaml": "two\n"})
	co2, err := src.Fetch(context.Background())
	if err != nil || co2.Commit != second {
		t.Fatalf("after a new commit: %+v %v", co2, err)
	}
	if b, _ := fs.ReadFile(co2.FS(), "app.yaml"); string(b) != "two\n" {
		t.Fatalf("worktree file after the new commit = %q", b)
	}
	for rev, want := range map[string]string{"v1": first, "master": second, first: first} {
		s := src
		s.Ref = rev
		co, err := s.Fetch(context.Background())
		if err != nil || co.Commit != want {
			t.Errorf("revision %s: %+v %v, want %s", rev, co, err, want)
		}
	}
	s := src
	s.Ref = "no-such-branch"
	if _, err := s.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "no-such-branch") {
		t.Errorf("unknown revision: %v", err)
	}
	s = Source{URL: filepath.Join(work.Dir, "missing")}
	if _, err := s.Fetch(context.Background()); err == nil {
		t.Error("a missing path is not an error")
	}
	s = Source{URL: "https://127.0.0.1:1/x.git", Auth: Auth{TokenEnv: "GITGATE_TEST_UNSET_TOKEN", Flags: AuthFlags{TokenEnv: "--git-token-env"}}, CacheDir: t.TempDir()}
	if _, err := s.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "GITGATE_TEST_UNSET_TOKEN") || !strings.Contains(err.Error(), "--git-token-env") {
		t.Errorf("an empty token variable: %v", err)
	}
}

// https-style sources: the token from an environment variable or a file, a missing or
// wrong token refused, the cache reused (no second pack for an unchanged revision).
func TestSourceHTTPToken(t *testing.T) {
	work := gittest.Init(t, "")
	h := work.CommitFiles("c", map[string]string{"app.yaml": "kind: ConfigMap\n"})
	url, packs := gittest.HTTPServer(t, work.Dir, "s3cret")
	ctx := context.Background()

	t.Setenv("GITGATE_TEST_TOKEN", "s3cret")
	src := Source{URL: url, CacheDir: t.TempDir(), Auth: Auth{TokenEnv: "GITGATE_TEST_TOKEN"}}
	co, err := src.Fetch(ctx)
	if err != nil {
		t.Fatalf("fetch with the token from the environment: %v", err)
	}
	if co.Commit != h {
		t.Fatalf("commit = %s, want %s", co.Commit, h)
	}
	if b, _ := os.ReadFile(filepath.Join(co.Dir, "app.yaml")); string(b) != "kind: ConfigMap\n" {
		t.Fatalf("worktree file = %q", b)
	}
	n := packs.Load()
	if _, err := src.Fetch(ctx); err != nil || packs.Load() != n {
		t.Fatalf("a second fetch of the same revision fetched again (%d packs): %v", packs.Load()-n, err)
	}

	tokenFile := writeTemp(t, "s3cret\n")
	if _, err := (Source{URL: url, CacheDir: t.TempDir(), Auth: Auth{TokenFile: tokenFile}}).Fetch(ctx); err != nil {
		t.Fatalf("fetch with the token from a file: %v", err)
	}
	if _, err := (Source{URL: url, CacheDir: t.TempDir(), Auth: Auth{CredentialsFile: writeTemp(t, "ci:s3cret\n")}}).Fetch(ctx); err != nil {
		t.Fatalf("fetch with a credentials file: %v", err)
	}
	withPassword := strings.Replace(url, "http://", "http://ci:s3cret@", 1)
	if co, err := (Source{URL: withPassword, CacheDir: t.TempDir()}).Fetch(ctx); err != nil || co.Commit != h {
		t.Fatalf("fetch with credentials in the URL: %v", err)
	}
	for name, s := range map[string]Source{
		"no token":           {URL: url, CacheDir: t.TempDir()},
		"wrong token":        {URL: url, CacheDir: t.TempDir(), Auth: Auth{TokenFile: writeTemp(t, "nope")}},
		"wrong URL password": {URL: strings.Replace(url, "http://", "http://ci:s3cr3t-wrong@", 1), CacheDir: t.TempDir()},
	} {
		_, err := s.Fetch(ctx)
		if err == nil || !strings.Contains(err.Error(), "authentication") {
			t.Errorf("%s: err = %v, want an authentication error", name, err)
		}
		if err != nil && (strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "s3cr3t")) {
			t.Errorf("%s: the error shows the token: %v", name, err)
		}
	}
}

// One resolver for a local repository and a remote: branches, lightweight and annotated
// tags, full reference names, full and short commit hashes, HEAD; a commit on a remote
// is fetched, then found.
func TestResolve(t *testing.T) {
	work := gittest.Init(t, "")
	c1 := work.CommitFiles("one", map[string]string{"policies/p.yaml": "one\n"})
	work.Tag("light", c1, "")
	work.Tag("annotated", c1, "release 1")
	c2 := work.CommitFiles("two", map[string]string{"policies/p.yaml": "two\n"})
	work.Branch("main", c2)
	c3 := work.CommitFiles("three", map[string]string{"policies/p.yaml": "three\n"})
	url, _ := gittest.HTTPServer(t, work.Dir, "")
	ctx := context.Background()

	cases := map[string]string{
		"":                       c3,
		"HEAD":                   c3,
		"master":                 c3,
		"main":                   c2,
		"refs/heads/main":        c2,
		"light":                  c1,
		"annotated":              c1,
		"refs/tags/annotated":    c1,
		c1:                       c1,
		c2[:7]:                   c2,
		strings.ToUpper(c1[:10]): c1,
	}
	for _, remote := range []string{work.Dir, "file://" + work.Dir, url} {
		for rev, want := range cases {
			src := Source{URL: remote, Ref: rev, CacheDir: t.TempDir()}
			tree, err := src.Read(ctx, nil)
			if err != nil {
				t.Errorf("%s at %q: read: %v", remote, rev, err)
				continue
			}
			if tree.Commit != want {
				t.Errorf("%s at %q: read commit %s, want %s", remote, rev, tree.Commit, want)
			}
			data, err := fs.ReadFile(tree.FS, "policies/p.yaml")
			wantData := map[string]string{c1: "one\n", c2: "two\n", c3: "three\n"}[want]
			if err != nil || string(data) != wantData {
				t.Errorf("%s at %q: policies/p.yaml = %q, %v; want %q", remote, rev, data, err, wantData)
			}
			co, err := src.Fetch(ctx)
			if err != nil || co.Commit != want {
				t.Errorf("%s at %q: fetch %+v, %v; want %s", remote, rev, co, err, want)
			}
		}
		for _, rev := range []string{"no-such-branch", "deadbeef"} {
			_, err := (Source{URL: remote, Ref: rev}).Read(ctx, nil)
			var nf *NotFoundError
			if !errors.As(err, &nf) || !strings.Contains(err.Error(), rev) {
				t.Errorf("%s at %q: err = %v, want a not-found error naming it", remote, rev, err)
			}
		}
	}
}

// Read returns the last tree while the revision has not moved, and a new one when it has.
func TestReadUnchanged(t *testing.T) {
	work := gittest.Init(t, "")
	c1 := work.CommitFiles("one", map[string]string{"a.yaml": "one\n"})
	url, packs := gittest.HTTPServer(t, work.Dir, "")
	ctx := context.Background()
	for _, src := range []Source{{URL: work.Dir, Ref: "master"}, {URL: url, Ref: "master"}, {URL: url, Ref: c1[:8]}} {
		first, err := src.Read(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := packs.Load()
		again, err := src.Read(ctx, first)
		if err != nil || again != first || packs.Load() != n {
			t.Errorf("%s: an unchanged revision read again (%v)", src, err)
		}
	}
	c2 := work.CommitFiles("two", map[string]string{"a.yaml": "two\n"})
	for _, src := range []Source{{URL: work.Dir}, {URL: url}} {
		first, err := (Source{URL: src.URL, Ref: c1}).Read(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		next, err := src.Read(ctx, first)
		if err != nil || next == first || next.Commit != c2 {
			t.Errorf("%s: after a commit read %+v, %v; want %s", src, next, err, c2)
		}
	}
}

// The tree of a commit as a filesystem: directories, sizes, symbolic links not followed.
func TestTreeFS(t *testing.T) {
	work := gittest.Init(t, "")
	work.CommitFiles("c", map[string]string{"d/a.yaml": "abc\n", "d/e/b.yaml": "b\n", "d/link": "->a.yaml", "top": "t"})
	tree, err := (Source{URL: work.Dir}).Read(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = fs.WalkDir(tree.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		kind := "file"
		if d.IsDir() {
			kind = "dir"
		} else if d.Type()&fs.ModeSymlink != 0 {
			kind = "link"
		}
		got = append(got, p+":"+kind)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".:dir", "d:dir", "d/a.yaml:file", "d/e:dir", "d/e/b.yaml:file", "d/link:link", "top:file"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("walk (-want +got)\n%s", diff)
	}
	st, err := fs.Stat(tree.FS, "d/a.yaml")
	if err != nil || st.Size() != 4 || st.IsDir() {
		t.Errorf("stat d/a.yaml = %v, %v", st, err)
	}
	if _, err := fs.ReadFile(tree.FS, "d/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
	if _, err := fs.ReadFile(tree.FS, "d"); err == nil {
		t.Error("a directory read as a file")
	}
}

func TestParseURL(t *testing.T) {
	for raw, want := range map[string]Kind{
		"./gitops":                                Local,
		"/srv/git/gitops.git":                     Local,
		"file:///srv/git/gitops.git":              File,
		"https://git.example.com/org/repo.git":    HTTP,
		"http://127.0.0.1:8080/repo.git":          HTTP,
		"ssh://git@git.example.com:2222/org/repo": SSH,
		"git@github.com:org/repo.git":             SSH,
		"github.com:org/repo.git":                 SSH,
		"git://git.example.com/repo.git":          Other,
		"apps/a:b":                                Local,
	} {
		ep, err := ParseURL(raw)
		if err != nil || ep.Kind != want {
			t.Errorf("%s: %v, %v; want %v", raw, ep.Kind, err, want)
		}
	}
	if ep, _ := ParseURL("file:///srv/x.git"); ep.Dir != "/srv/x.git" {
		t.Errorf("file URL dir = %q", ep.Dir)
	}
	if ep, _ := ParseURL("gitops"); !filepath.IsAbs(ep.Dir) {
		t.Errorf("local dir %q is not absolute", ep.Dir)
	}
	if _, err := ParseURL(" "); err == nil {
		t.Error("an empty URL parsed")
	}
	for raw, want := range map[string]string{
		"ssh://git@git.example.com/org/repo": "git",
		"git@github.com:org/repo.git":        "git",
		"deploy@host:org/repo":               "deploy",
		"ssh://ci@host/repo":                 "ci",
		"host:org/repo":                      "git",
	} {
		ep, _ := ParseURL(raw)
		if got := ep.sshUser(); got != want {
			t.Errorf("%s: ssh user %q, want %q", raw, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:tok3n@git.example.com/x.git":          "https://user:xxxxx@git.example.com/x.git",
		"fetch https://tok3n@git.example.com/x.git: failed": "fetch https://xxxxx@git.example.com/x.git: failed",
		"ssh://git@git.example.com/x and ssh://git:pw@h/y":  "ssh://git@git.example.com/x and ssh://git:xxxxx@h/y",
		"git@github.com:org/repo.git":                       "git@github.com:org/repo.git",
		"no url here":                                       "no url here",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	err := redact(errors.New(`Get "https://a:b@h/x": token s3cret refused`), "s3cret")
	if got := err.Error(); strings.Contains(got, "s3cret") || strings.Contains(got, "a:b@") {
		t.Errorf("redacted error %q", got)
	}
	if s := (Source{URL: "https://u:p4ss@h/x.git", Ref: "main"}).String(); s != "https://u:xxxxx@h/x.git@main" {
		t.Errorf("source string %q", s)
	}
}

// Auth messages name the running command's flag, or the setting generically; the
// message that named --git-known-hosts (no such flag) is gone.
func TestAuthMessages(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := writeTemp(t, string(pem.EncodeToMemory(block)))
	ep, _ := ParseURL("ssh://git@git.example.com/x")
	missing := filepath.Join(t.TempDir(), "known_hosts")
	for flag, want := range map[string]string{"--known-hosts": "give --known-hosts", "": "give a known_hosts file"} {
		_, _, err := Auth{SSHKeyFile: key, KnownHostsFile: missing, Flags: AuthFlags{KnownHosts: flag}}.method(ep)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "--git-known-hosts") {
			t.Errorf("flag %q: err = %v, want %q", flag, err, want)
		}
	}
	if err := (Auth{CredentialsFile: writeTemp(t, "just-a-token"), Flags: AuthFlags{CredentialsFile: "--git-credentials-file"}}).Validate(); err == nil || !strings.Contains(err.Error(), "--git-credentials-file") || strings.Contains(err.Error(), "just-a-token") {
		t.Errorf("a malformed credentials file: %v", err)
	}
	if err := (Auth{CredentialsFile: writeTemp(t, "ci:tok\n")}).Validate(); err != nil {
		t.Errorf("a credentials file: %v", err)
	}
}

func writeTemp(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
