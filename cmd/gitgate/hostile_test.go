//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/git/gittest"
	"sigs.k8s.io/yaml"
)

// hostileDir is the regression corpus of hostile repositories, relative to this package.
const hostileDir = "../../testdata/hostile"

// outsideSecret is the content of secret.txt in the {{OUTSIDE}} directory: seeing it
// in any output means a file outside the repository was read.
const outsideSecret = "OUTSIDE-SECRET-4f1c"

// hostileCase is testdata/hostile/<case>/case.yaml.
type hostileCase struct {
	// Args are gitgate's arguments, run in the case's repository ({{TRAP}} and
	// {{OUTSIDE}} replaced).
	Args []string `json:"args"`
	// Exit is the expected exit code.
	Exit int `json:"exit"`
	// Stderr and Stdout are substrings that must each appear in that stream.
	Stderr []string `json:"stderr,omitempty"`
	Stdout []string `json:"stdout,omitempty"`
	// Absent are substrings that must appear in neither stream (outsideSecret always is).
	Absent []string `json:"absent,omitempty"`
	// Seconds bounds the wall time (default 20); RSSMiB the peak resident set size.
	Seconds float64 `json:"seconds,omitempty"`
	RSSMiB  int64   `json:"rssMiB,omitempty"`
	// Base makes the repository a Git repository whose branch main is the merge base.
	Base bool `json:"base,omitempty"`
}

// TestHostile runs the regression corpus: hostile repositories (and requests) written
// from scratch, each asserting that gitgate refuses what it must, says so, reaches no
// network, reads nothing outside the repository, and stays within time and memory.
//
// Each case is a directory testdata/hostile/<case>/ holding:
//
//	repo/           the repository; gitgate runs with it as the working directory
//	case.yaml       what to run and expect:
//	  args: [check, .]          gitgate's arguments
//	  exit: 2                   the exit code
//	  stderr: ["substring"]     each must appear in stderr (optional)
//	  stdout: ["substring"]     each must appear in stdout (optional)
//	  absent: ["substring"]     must appear in neither (optional; OUTSIDE-SECRET-4f1c always)
//	  seconds: 10               wall-time bound (optional, default 20)
//	  rssMiB: 600               peak RSS bound (optional)
//	  base: true                optional, for merge-request cases (check --base main)
//	symlinks.txt    optional: lines "path/in/repo -> target", created before the run
//	base/           optional, with base: true: the merge base's version of files
//
// Before the run, repo/ is copied to a temporary directory and in every file (and in
// args, symlinks.txt and base/) the literal {{TRAP}} becomes the URL of an HTTP server on
// 127.0.0.1 that fails the case when contacted, and {{OUTSIDE}} the absolute path of a
// temporary directory outside the repository holding secret.txt, whose content
// OUTSIDE-SECRET-4f1c must never be printed. HTTP_PROXY, HTTPS_PROXY and ALL_PROXY (and
// their lower-case forms) point at a second trap, so a request to any other host fails
// the case as well; HOME is an empty temporary directory.
//
// With base: true the repository is made a Git repository: repo/ with base/ laid over
// it (a file in base/ replaces or adds the file at the same path) is committed as the
// branch main, then the working tree is put back to repo/ exactly (files only in base/
// removed), uncommitted: the merge request's change. symlinks.txt is applied after that
// commit, to the working tree only.
//
// gitgate runs as a subprocess: this test binary under the name gitgate (TestMain),
// so the exit code, time and peak RSS (getrusage of the child) are the real command's.
// Every case logs its exit code, wall time and peak RSS. To run the corpus against
// another build (to measure a before), set GITGATE_HOSTILE_BIN to its path; to keep the
// prepared directories for a closer look (e.g. /usr/bin/time -v), set
// GITGATE_HOSTILE_KEEP to a directory.
//
//	go test ./cmd/gitgate -run 'TestHostile/symlink' -v
func TestHostile(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(hostileDir, "*", "case.yaml"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases in %s: %v", hostileDir, err)
	}
	bin := os.Getenv("GITGATE_HOSTILE_BIN")
	if bin == "" {
		if bin, err = exec.LookPath("gitgate"); err != nil {
			t.Fatalf("the test binary is not on PATH as gitgate (TestMain): %v", err)
		}
	}
	trap, proxy := newTrap(t, "trap"), newTrap(t, "proxy trap")
	for _, file := range dirs {
		dir := filepath.Dir(file)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			runHostile(t, bin, dir, trap, proxy)
		})
	}
}

// trapServer fails whichever case contacts it.
type trapServer struct {
	*httptest.Server
	name string
	mu   sync.Mutex
	hits []string
}

func newTrap(t *testing.T, name string) *trapServer {
	s := &trapServer{name: name}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits = append(s.hits, r.Method+" "+r.Host+r.URL.String())
		s.mu.Unlock()
		// A body worth fetching, so a fetch that succeeds shows in the output too.
		fmt.Fprintln(w, "TRAP-BODY-9b2e: this content came from the network")
	}))
	// A CONNECT for https through the proxy is a hit too (handled above by net/http).
	t.Cleanup(s.Close)
	return s
}

// take returns and forgets the requests seen so far.
func (s *trapServer) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hits
	s.hits = nil
	return h
}

func runHostile(t *testing.T, bin, dir string, trap, proxy *trapServer) {
	data, err := os.ReadFile(filepath.Join(dir, "case.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c hostileCase
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		t.Fatalf("case.yaml: %v", err)
	}
	if len(c.Args) == 0 {
		t.Fatal("case.yaml: no args")
	}
	if c.Seconds <= 0 {
		c.Seconds = 20
	}
	work := t.TempDir()
	if keep := os.Getenv("GITGATE_HOSTILE_KEEP"); keep != "" {
		work = filepath.Join(keep, filepath.Base(dir))
		_ = os.RemoveAll(work)
	}
	outside := filepath.Join(work, "outside")
	repo := filepath.Join(work, "repo")
	home := filepath.Join(work, "home")
	for _, d := range []string{outside, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte(outsideSecret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	subst := strings.NewReplacer("{{TRAP}}", trap.URL, "{{OUTSIDE}}", outside)
	copyTree := func(from string) {
		t.Helper()
		if err := copySubst(from, repo, subst); err != nil {
			t.Fatal(err)
		}
	}
	if c.Base {
		copyTree(filepath.Join(dir, "repo"))
		if _, err := os.Stat(filepath.Join(dir, "base")); err == nil {
			copyTree(filepath.Join(dir, "base"))
		}
		g := gittest.Init(t, repo)
		g.Branch("main", g.Commit("merge base"))
		// Back to repo/ exactly: the working tree is the merge request.
		entries, _ := os.ReadDir(repo)
		for _, e := range entries {
			if e.Name() != ".git" {
				if err := os.RemoveAll(filepath.Join(repo, e.Name())); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	copyTree(filepath.Join(dir, "repo"))
	if links, err := os.ReadFile(filepath.Join(dir, "symlinks.txt")); err == nil {
		for _, line := range strings.Split(subst.Replace(string(links)), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			name, target, ok := strings.Cut(line, " -> ")
			if !ok {
				t.Fatalf("symlinks.txt: %q is not \"path -> target\"", line)
			}
			p := filepath.Join(repo, filepath.FromSlash(strings.TrimSpace(name)))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			_ = os.Remove(p)
			if err := os.Symlink(strings.TrimSpace(target), p); err != nil {
				t.Skip("symlinks not supported:", err)
			}
		}
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = subst.Replace(a)
	}

	// A hard stop well past the bound, so a hang fails instead of stalling the suite.
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.Seconds*float64(time.Second))*3+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = repo
	rssFile := filepath.Join(t.TempDir(), "peak-rss")
	cmd.Env = append(hostileEnv(home, proxy.URL), "GITGATE_PEAK_RSS_FILE="+rssFile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	elapsed := time.Since(start)
	code := 0
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("gitgate did not run: %v", err)
	}
	rss := peakRSSMiB(cmd.ProcessState, rssFile)
	t.Logf("exit %d, %.2fs, peak RSS %d MiB", code, elapsed.Seconds(), rss)
	out, errOut := stdout.String(), stderr.String()
	show := func() string {
		return fmt.Sprintf("\n--- stdout\n%s\n--- stderr\n%s", clip(out), clip(errOut))
	}
	if code != c.Exit {
		t.Errorf("exit %d, want %d%s", code, c.Exit, show())
	}
	for _, s := range c.Stdout {
		if !strings.Contains(out, subst.Replace(s)) {
			t.Errorf("stdout lacks %q%s", s, show())
		}
	}
	for _, s := range c.Stderr {
		if !strings.Contains(errOut, subst.Replace(s)) {
			t.Errorf("stderr lacks %q%s", s, show())
		}
	}
	for _, s := range append([]string{outsideSecret, "TRAP-BODY-9b2e"}, c.Absent...) {
		if s = subst.Replace(s); strings.Contains(out, s) || strings.Contains(errOut, s) {
			t.Errorf("output holds %q, which must be absent%s", s, show())
		}
	}
	for _, s := range []*trapServer{trap, proxy} {
		if hits := s.take(); len(hits) > 0 {
			t.Errorf("the %s was contacted: %s", s.name, strings.Join(hits, "; "))
		}
	}
	if limit := time.Duration(c.Seconds * float64(time.Second)); elapsed > limit {
		t.Errorf("took %s, over the %s bound", elapsed.Round(time.Millisecond), limit)
	}
	if c.RSSMiB > 0 && rss > c.RSSMiB {
		t.Errorf("peak RSS %d MiB, over the %d MiB bound", rss, c.RSSMiB)
	}
}

// hostileEnv is the child's environment: this one without proxy or Git settings, with
// every proxy variable pointing at the proxy trap and HOME empty.
func hostileEnv(home, proxy string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "HOME", "XDG_CONFIG_HOME":
			continue
		}
		if strings.HasPrefix(k, "GIT_") {
			continue
		}
		env = append(env, kv)
	}
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"} {
		env = append(env, k+"="+proxy, strings.ToLower(k)+"="+proxy)
	}
	return append(env, "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
}

// peakRSSMiB is the child's peak resident set size: what it recorded itself
// (GITGATE_PEAK_RSS_FILE), else its rusage, which on Linux also counts this test
// process's own peak (the child starts sharing its memory until exec).
func peakRSSMiB(ps *os.ProcessState, recorded string) int64 {
	if b, err := os.ReadFile(recorded); err == nil {
		if kib, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && kib > 0 {
			return kib / 1024
		}
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	kib := int64(ru.Maxrss)
	if runtime.GOOS == "darwin" {
		kib /= 1024 // bytes there
	}
	return kib / 1024
}

// copySubst copies the tree from into to, replacing the placeholders in every file.
func copySubst(from, to string, subst *strings.Replacer) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, []byte(subst.Replace(string(data))), 0o644)
	})
}

// clip keeps a failure message readable.
func clip(s string) string {
	const max = 4000
	if len(s) > max {
		return s[:max] + fmt.Sprintf("\n... (%d more bytes)", len(s)-max)
	}
	return s
}
