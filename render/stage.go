package render

import (
	"fmt"
	"io/fs"
	"sync"

	"github.com/gitgate/gitgate/internal/git"
)

// stage serves a revision with no checkout (Repo.Dir ""), read through its FS, to the
// renderers that read the disk (kustomize and Helm): before a target renders, the files
// it reads (targetDeps) are written under dir, once for all targets, and the target
// renders from there. Discovery keeps reading the revision itself.
type stage struct {
	src  fs.FS
	dir  string
	mu   sync.Mutex
	deps *depsCache
	done map[string]bool
}

func newStage(src fs.FS, dir string) *stage {
	return &stage{src: src, dir: dir, deps: newDepsCache(src), done: map[string]bool{}}
}

// repo is r with the files t reads written to the stage's directory, as a repository on
// disk there.
func (s *stage) repo(r Repo, t Target) (Repo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var todo []string
	for _, d := range s.deps.deps(t) {
		if !s.done[d] {
			s.done[d] = true
			todo = append(todo, d)
		}
	}
	if err := git.Materialize(s.src, todo, s.dir); err != nil {
		return r, fmt.Errorf("target %s: write the files it reads from the revision: %w", t.Name, err)
	}
	r.FS, r.Dir, r.stage = nil, s.dir, nil // confined() opens Dir
	return r, nil
}
