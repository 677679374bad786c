package remote

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/internal/git/gittest"
)

// benchGitRepo is a repository of 500 files of 2 KiB (1 MiB) at one commit.
func benchGitRepo(b *testing.B) (*gittest.Repo, string) {
	work := gittest.Init(b, "")
	files := map[string]string{}
	for i := 0; i < 500; i++ {
		files[fmt.Sprintf("apps/app%03d/deploy.yaml", i)] = fmt.Sprintf("name: app%03d\n", i) + strings.Repeat(fmt.Sprintf("# line %d\n", i), 200)
	}
	return work, work.CommitFiles("many", files)
}

// benchGitCold fetches the commit into a new cache every iteration.
func benchGitCold(b *testing.B, url string, s Settings, commit string) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.CacheDir = b.TempDir()
		tree, err := newFetcher(b, s).Git(ctx, url, commit)
		if err != nil || tree.Commit != commit {
			b.Fatalf("%+v %v", tree, err)
		}
	}
}

// BenchmarkGitColdHTTP / BenchmarkGitColdSSH: one cold fetch of 500 files by commit,
// over smart HTTP and over ssh (the same go-git server behind both).
func BenchmarkGitColdHTTP(b *testing.B) {
	work, commit := benchGitRepo(b)
	url, _ := gittest.HTTPServer(b, work.Dir, "")
	benchGitCold(b, url, testSettings(b, ""), commit)
}

func BenchmarkGitColdSSH(b *testing.B) {
	work, commit := benchGitRepo(b)
	key, pub := gittest.SSHKey(b, "")
	srv := gittest.SSHServer(b, work.Dir, pub)
	s := testSettings(b, "")
	s.Allow = []string{"127.0.0.1"}
	s.SSHKeyFile, s.KnownHostsFile = key, filepath.Join(b.TempDir(), "known_hosts")
	os.WriteFile(s.KnownHostsFile, []byte(srv.KnownHosts()), 0o644)
	benchGitCold(b, srv.URL, s, commit)
}

// BenchmarkEvict200Trees: the eviction pass every Git fetch now ends with, over a
// cache of 200 written-out commits and 200 blobs under the bound (nothing removed).
func BenchmarkEvict200Trees(b *testing.B) {
	c := &cache{dir: b.TempDir(), max: 1 << 40}
	f := &Fetcher{cache: c, picked: map[string]string{}}
	for i := 0; i < 200; i++ {
		dir := filepath.Join(c.worktrees(), fmt.Sprintf("%016x", i%20), fmt.Sprintf("%040x", i))
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(strings.Repeat("x", 4096)), 0o644)
		if err := f.recordTree(dir, true); err != nil {
			b.Fatal(err)
		}
		if _, err := c.put([]byte(fmt.Sprintf("blob %d", i)), ""); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.evict("")
	}
}
