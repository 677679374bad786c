package runner

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/gitgate/gitgate/internal/treediff"
	"github.com/gitgate/gitgate/policy"
)

// snapshot is a copy of a GitOps workspace taken before a task.
type snapshot struct {
	workspace string // pipeline workspace name
	dir       string // the workspace on the host
	copy      string // the copy
}

// snapshotGitOps copies the GitOps workspaces t binds, holding the GitOps lock until
// release: tasks that bind a GitOps workspace run one at a time, so every change is
// judged against the state it started from.
func (r *runner) snapshotGitOps(t *PlannedTask) ([]snapshot, func(), error) {
	var snaps []snapshot
	seen := map[string]bool{}
	for _, b := range r.bindings(t) {
		if b[0] == "" || !r.gitops[b[1]] || seen[b[1]] {
			continue
		}
		seen[b[1]] = true
		// The whole workspace, not just the task's subPath: the gate renders the repo.
		snaps = append(snaps, snapshot{workspace: b[1], dir: r.plan.Workspaces[b[1]]})
	}
	if len(snaps) == 0 || r.opts.ChangeGate == nil {
		return nil, func() {}, nil
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].workspace < snaps[j].workspace })
	r.gitopsMu.Lock()
	release := func() { r.gitopsMu.Unlock() }
	for i := range snaps {
		snaps[i].copy = filepath.Join(r.scratch, "snapshots", t.Name, snaps[i].workspace)
		if err := copyTree(snaps[i].dir, snaps[i].copy); err != nil {
			release()
			return nil, nil, fmt.Errorf("snapshot workspace %s before task %s: %w", snaps[i].workspace, t.Name, err)
		}
	}
	return snaps, func() {
		for _, s := range snaps {
			os.RemoveAll(s.copy)
		}
		release()
	}, nil
}

// gateChanges is the gate between stages: for each GitOps workspace the task changed,
// the change gate compares the workspace with its snapshot. A blocking verdict turns
// the task into Blocked, whatever its steps did.
func (r *runner) gateChanges(ctx context.Context, t *PlannedTask, tr *TaskRun, snaps []snapshot) {
	for _, s := range snaps {
		files, err := treediff.Diff(os.DirFS(s.copy), os.DirFS(s.dir))
		if err != nil {
			r.blockTask(tr, "ChangeGateError", fmt.Sprintf("compare workspace %s with its state before the task: %v", s.workspace, err))
			return
		}
		if len(files) == 0 {
			continue
		}
		cr := &ChangeRecord{Workspace: s.workspace, Files: files}
		tr.Status.ChangeGate = cr
		r.note(t.Name, "changed GitOps workspace %s: %s; checking the change", s.workspace, joinMax(files, 5))
		rep, err := r.opts.ChangeGate(ctx, s.copy, s.dir)
		if err != nil {
			cr.Error = err.Error()
			r.blockTask(tr, "ChangeGateError", fmt.Sprintf("the gate could not check the change to workspace %s: %v", s.workspace, err))
			return
		}
		cr.Changes = rep.Changes
		cr.Blocking = rep.Blocking()
		for _, res := range rep.Results {
			if res.Finding() && (rep.Changes == nil || res.Baseline == policy.BaselineNew) {
				cr.Findings = append(cr.Findings, res)
			}
		}
		for _, res := range cr.Findings {
			r.note(t.Name, "gate: %s", policy.FindingLine(res))
		}
		if len(rep.Errors) > 0 {
			var msgs []string
			for _, e := range rep.Errors {
				msgs = append(msgs, e.Error())
				r.note(t.Name, "gate: %v", e)
			}
			cr.Error = joinMax(msgs, 3)
			r.blockTask(tr, "ChangeGateError", fmt.Sprintf("the change to workspace %s does not render: %s", s.workspace, joinMax(msgs, 1)))
			r.revert(t, s, files)
			return
		}
		if cr.Blocking {
			n := 0
			for _, res := range cr.Findings {
				if res.Blocking() {
					n++
				}
			}
			r.blockTask(tr, "Blocked", fmt.Sprintf("the gate refused the change to workspace %s: %d new Enforce violation(s); later tasks do not run", s.workspace, n))
			r.note(t.Name, "blocked: the gate refused the change to workspace %s (%d new Enforce violations)", s.workspace, n)
			r.revert(t, s, files)
			return
		}
		r.note(t.Name, "gate: the change to workspace %s passes (%d new findings, none enforced)", s.workspace, len(cr.Findings))
	}
}

// revert undoes a refused change: the changed paths are restored from the snapshot
// (or removed when the task created them), so no later stage, finally included, can
// push what the gate refused. The record keeps the list of files and the findings.
func (r *runner) revert(t *PlannedTask, s snapshot, files []string) {
	if r.opts.KeepRefusedChanges {
		r.note(t.Name, "the refused change is left in workspace %s (KeepRefusedChanges)", s.workspace)
		return
	}
	if err := restore(s.copy, s.dir, files); err != nil {
		r.note(t.Name, "could not undo the refused change to workspace %s: %v", s.workspace, err)
		return
	}
	r.note(t.Name, "the refused change to workspace %s was undone (%d paths restored)", s.workspace, len(files))
}

// restore makes the paths (slash-separated, relative) of dst what they are in src: a
// path src lacks is removed, any other is copied back. Deeper paths are handled first
// for removal and shallower first for copying.
func restore(src, dst string, paths []string) error {
	sorted := append([]string{}, paths...)
	sort.Strings(sorted)
	for i := len(sorted) - 1; i >= 0; i-- {
		p := filepath.FromSlash(sorted[i])
		if _, err := os.Lstat(filepath.Join(src, p)); os.IsNotExist(err) {
			if err := os.RemoveAll(filepath.Join(dst, p)); err != nil {
				return err
			}
			// The tree diff lists files, not directories: remove the directories the
			// change created once they are empty again.
			for d := filepath.Dir(p); d != "." && d != string(filepath.Separator); d = filepath.Dir(d) {
				if _, err := os.Lstat(filepath.Join(src, d)); !os.IsNotExist(err) {
					break
				}
				if os.Remove(filepath.Join(dst, d)) != nil {
					break // not empty, or already gone
				}
			}
		}
	}
	for _, rel := range sorted {
		p := filepath.FromSlash(rel)
		from, to := filepath.Join(src, p), filepath.Join(dst, p)
		info, err := os.Lstat(from)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			if err := os.MkdirAll(to, 0o777); err != nil {
				return err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(from)
			if err != nil {
				return err
			}
			if err := os.RemoveAll(to); err != nil {
				return err
			}
			if err := os.Symlink(link, to); err != nil {
				return err
			}
		default:
			if err := os.MkdirAll(filepath.Dir(to), 0o777); err != nil {
				return err
			}
			if st, err := os.Lstat(to); err == nil && !st.Mode().IsRegular() {
				if err := os.RemoveAll(to); err != nil {
					return err
				}
			}
			if err := copyFile(from, to, info.Mode().Perm()); err != nil {
				return err
			}
			if err := os.Chmod(to, info.Mode().Perm()); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *runner) blockTask(tr *TaskRun, reason, msg string) {
	now := r.opts.Now()
	tr.Status.Results = nil // a refused stage publishes nothing
	tr.Status.Conditions = []Condition{{Type: "Succeeded", Status: "False", Reason: reason, Message: msg, LastTransitionTime: now}}
}

func joinMax(s []string, n int) string {
	if len(s) <= n {
		return fmt.Sprint(joinComma(s))
	}
	return fmt.Sprintf("%s and %d more", joinComma(s[:n]), len(s)-n)
}

func joinComma(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(x)
	}
	return b.String()
}

// skipDir reports directories that are not part of a workspace's content for the gate.
func skipDir(name string) bool { return name == ".git" }

// copyTree copies src to dst: regular files with their modes, directories, symlinks
// as symlinks. .git is left out: the gate judges the working tree.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if p != src && skipDir(d.Name()) {
				return fs.SkipDir
			}
			return os.MkdirAll(target, 0o777)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return copyFile(p, target, info.Mode().Perm())
		}
		return nil // sockets, devices: not content
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
