package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/report"
)

// runEvents is runCached keeping every fate of every target in order (check --base: the
// merge base's side is looked up and rendered before head's).
func runEvents(t *testing.T, dir, cache string, extra ...string) (cacheRun, map[string][]string) {
	t.Helper()
	cacheTraceMu.Lock()
	defer cacheTraceMu.Unlock()
	out := t.TempDir()
	args := []string{"check", "--cache-dir", cache}
	for _, f := range report.CheckFormats().Names() {
		args = append(args, "-o", f+"="+filepath.Join(out, f))
	}
	args = append(append(args, extra...), dir)
	var mu sync.Mutex
	events := map[string][]string{}
	cacheTrace = func(target, fate string) { mu.Lock(); events[target] = append(events[target], fate); mu.Unlock() }
	defer func() { cacheTrace = nil }()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	r := cacheRun{code: code, outs: map[string][]byte{}, stderr: stderr.String(), fates: map[string]string{}}
	for target, fs := range events {
		r.fates[target] = fs[len(fs)-1]
	}
	for _, f := range report.CheckFormats().Names() {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		r.outs[f] = b
	}
	return r, events
}

func eventList(ev map[string][]string) []string {
	var out []string
	for t, fs := range ev {
		for _, f := range fs {
			out = append(out, t+" "+f)
		}
	}
	sort.Strings(out)
	return out
}

// TestCacheBase: merge-request mode (check --base) shares check's verdict cache on both
// sides. Its output, in every -o format, is an uncached run's whether the cache is cold,
// warm or partly stale after a change; a warm run renders nothing; a check of the merge
// base commit fills the entries the merge-request's base side then takes; after a
// further change only the target it affects is rendered again (at head: its base is
// unchanged and known).
func TestCacheBase(t *testing.T) {
	dir, repo := gitRepo(t)
	cache := t.TempDir()

	// A check of the base commit (main) fills the cache, as a main-branch pipeline does.
	fill, _ := runEvents(t, dir, cache)
	if f := byFate(fill); len(f["miss"]) < 10 {
		t.Fatalf("the check of main stored %d targets: %v", len(f["miss"]), f)
	}

	editFile(t, filepath.Join(dir, "apps/cart-ledger-003/overlays/dev/kustomization.yaml"),
		"newName: harbor.example.com/identity/cart-ledger-003", "newName: docker.io/identity/cart-ledger-003")
	repo.Commit("move the dev image")
	args := []string{"--base", "main"}
	step := func(what string, wantEvents []string) {
		t.Helper()
		ref, refEv := runEvents(t, dir, t.TempDir(), append([]string{"--no-cache"}, args...)...)
		if len(refEv) != 0 {
			t.Fatalf("%s: --no-cache used the cache: %v", what, refEv)
		}
		if ref.code != exitViolations {
			t.Fatalf("%s: uncached exit %d, want 1 (the new docker.io finding); stderr:\n%s", what, ref.code, ref.stderr)
		}
		got, ev := runEvents(t, dir, cache, args...)
		sameOutput(t, what, ref, got)
		if diff := slices.Compare(eventList(ev), wantEvents); diff != 0 {
			t.Errorf("%s: the cache did %v, want %v", what, eventList(ev), wantEvents)
		}
	}
	// The base side's target is the one main's check stored: a hit; head's is new.
	step("after main's check", []string{"cart-ledger-003-dev hit", "cart-ledger-003-dev miss"})
	step("warm", []string{"cart-ledger-003-dev hit", "cart-ledger-003-dev hit"})
	// A second change: the new target's base comes from main's check, its head is
	// rendered; the first target is known on both sides.
	editFile(t, filepath.Join(dir, "apps/gateway-session-002/overlays/staging/kustomization.yaml"),
		"newName: docker.io/platform/gateway-session-002", "newName: harbor.example.com/platform/gateway-session-002")
	step("after a change", []string{"cart-ledger-003-dev hit", "cart-ledger-003-dev hit", "gateway-session-002-staging hit", "gateway-session-002-staging miss"})
	step("warm again", []string{"cart-ledger-003-dev hit", "cart-ledger-003-dev hit", "gateway-session-002-staging hit", "gateway-session-002-staging hit"})

	// A cold cache: both sides rendered and stored, the output the same.
	cache = t.TempDir()
	step("cold", []string{"cart-ledger-003-dev miss", "cart-ledger-003-dev miss", "gateway-session-002-staging miss", "gateway-session-002-staging miss"})

	// The entries check --base stored serve check: the merge-request's head targets hit.
	_, ev := runEvents(t, dir, cache)
	for _, n := range []string{"cart-ledger-003-dev", "gateway-session-002-staging"} {
		if !slices.Equal(ev[n], []string{"hit"}) {
			t.Errorf("check after check --base: %s did %v, want a hit", n, ev[n])
		}
	}
}

// TestCacheBasePolicyChange: a change to the policies judges head under both rule sets:
// the cache is not used, and the output is an uncached run's.
func TestCacheBasePolicyChange(t *testing.T) {
	dir, repo := gitRepo(t)
	cache := t.TempDir()
	runEvents(t, dir, cache)
	appendFile(t, filepath.Join(dir, ".gitgate.yaml"), "# a comment changes the settings\n")
	repo.Commit("touch the settings")
	ref, _ := runEvents(t, dir, t.TempDir(), "--no-cache", "--base", "main")
	got, ev := runEvents(t, dir, cache, "--base", "main")
	sameOutput(t, "policy change", ref, got)
	if len(ev) != 0 {
		t.Errorf("the cache was used with a policy change: %v", eventList(ev))
	}
}

// TestCacheBaseShapes: over the shapes repositories, a change to a file targets read (a
// comment appended to the first kustomization or values file), committed on top of main:
// check --base after a check of main, and again warm, print what an uncached run prints
// in every format; the warm run renders nothing it could store.
func TestCacheBaseShapes(t *testing.T) {
	shapes, _ := filepath.Glob("../../testdata/shapes/*")
	hits := 0
	for _, src := range shapes {
		t.Run(filepath.Base(src), func(t *testing.T) {
			dir, repo := gitRepoOf(t, src)
			cache := t.TempDir()
			runEvents(t, dir, cache) // main's check
			var changed string
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && changed == "" && !d.IsDir() && (d.Name() == "kustomization.yaml" || d.Name() == "values.yaml") && !strings.Contains(p, "/.git/") {
					changed = p
				}
				return err
			})
			if changed == "" {
				t.Skip("no kustomization or values file to change") // not counted: hits below must come from others
			}
			appendFile(t, changed, "\n# changed by the test\n")
			repo.Commit("a comment")
			ref, _ := runEvents(t, dir, t.TempDir(), "--no-cache", "--base", "main")
			after, ev := runEvents(t, dir, cache, "--base", "main")
			sameOutput(t, "after main's check", ref, after)
			warm, wev := runEvents(t, dir, cache, "--base", "main")
			sameOutput(t, "warm", ref, warm)
			for target, fs := range wev {
				for _, f := range fs {
					if f == "miss" {
						t.Errorf("warm: %s stored again (%v; the run before: %v)", target, fs, ev[target])
					}
					if f == "hit" {
						hits++
					}
				}
			}
		})
	}
	if hits == 0 {
		t.Errorf("no target came from the cache in any shape: the comparison proves little")
	}
}
