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
func BenchmarkEvict200Trees(b *testing.B) { benchEvict(b, 0, false) }

// BenchmarkEvict200Trees20Stores: the same with 20 Git object stores (a pack and its
// index per fetch, refs), none fetched into since the last pass.
func BenchmarkEvict200Trees20Stores(b *testing.B) { benchEvict(b, 20, false) }

// BenchmarkEvict200Trees20StoresOneFetched: the same, one store touched before each
// pass (as a fetch through it does: its size is counted again).
func BenchmarkEvict200Trees20StoresOneFetched(b *testing.B) { benchEvict(b, 20, true) }

func benchEvict(b *testing.B, stores int, fetched bool) {
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
	var dirs []string
	for i := 0; i < stores; i++ {
		// As git.Source leaves one after 5 fetches of 10 tags and a branch.
		dir := filepath.Join(c.dir, "git", "repos", fmt.Sprintf("%016x.git", i))
		dirs = append(dirs, dir)
		files := map[string]int{"HEAD": 23, "config": 122, "refs/heads/main": 41}
		for j := 0; j < 5; j++ {
			files[fmt.Sprintf("objects/pack/pack-%040x.pack", j)] = 32 << 10
			files[fmt.Sprintf("objects/pack/pack-%040x.idx", j)] = 1156
		}
		for j := 0; j < 10; j++ {
			files[fmt.Sprintf("refs/tags/v%d", j)] = 41
		}
		for name, size := range files {
			p := filepath.Join(dir, filepath.FromSlash(name))
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	c.evict("")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if fetched {
			touch(dirs[i%len(dirs)])
		}
		c.evict("")
	}
}
