package main

import (
	"errors"
	"fmt"
	"github.com/gitgate/gitgate/internal/git"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/gitgate/gitgate/internal/verdictcache"
	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
	"github.com/gitgate/gitgate/report"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type checkOptions struct {
	gate        gateFlags
	plain       bool
	outputs     []string
	maxFileSize int64
	workers     int
	noSchema    bool
	noMutate    bool
	base        string
	staged      bool
	linkBase    string
	commentMax  int
	noCache     bool
	shard       string
}

func (o *checkOptions) BindFlags(fs *pflag.FlagSet) {
	o.gate.BindFlags(fs)
	def := policy.DefaultCheckOptions()
	fs.StringArrayVarP(&o.outputs, "output", "o", nil, "report format, repeatable: FORMAT on stdout or FORMAT=FILE; formats: "+strings.Join(report.CheckFormats().Names(), ", ")+" (default text)")
	fs.Int64Var(&o.maxFileSize, "max-file-size", def.MaxFileSize, "refuse manifest files larger than this many bytes")
	fs.IntVar(&o.workers, "workers", def.Workers, "files evaluated in parallel")
	fs.BoolVar(&o.noSchema, "no-schema", false, "skip the strict schema check of built-in kinds")
	fs.BoolVar(&o.noMutate, "no-mutate", false, "judge manifests as written: do not apply the policies' mutate rules first (as the cluster's admission chain would)")
	fs.BoolVar(&o.plain, "plain", false, "check files as plain manifests even when one directory is given (no rendering)")
	fs.StringVar(&o.linkBase, "link-base", "", "markdown report: prefix of file links, e.g. https://github.com/org/repo/blob/<sha>/ (default: links relative to the repository)")
	fs.IntVar(&o.commentMax, "comment-limit", report.GitHubCommentLimit, fmt.Sprintf("markdown report: size limit in bytes, diffs truncated to fit (GitHub %d, GitLab %d)", report.GitHubCommentLimit, report.GitLabCommentLimit))
	fs.BoolVar(&o.staged, "staged", false, "with --base: the change is what is staged (unstaged and untracked files left out), as a pre-commit hook needs")
	bindNoCache(fs, &o.noCache)
	fs.StringVar(&o.shard, "shard", "", "check only shard I of N (I/N, 1-based as GitLab's CI_NODE_INDEX/CI_NODE_TOTAL; a GitHub matrix counts from 1 too): targets assigned by a stable hash of their name and path, balanced by their recorded cost when the verdict cache has it; join the shards' -o json reports with 'gitgate merge-reports'")
	fs.StringVar(&o.base, "base", "", "merge-request mode: check only the targets the changes since the merge base with REF affect, and report findings as new, fixed or unchanged (only new Enforce findings fail)")
}

func newCheckCmd(stdout, stderr io.Writer) *cobra.Command {
	o := &checkOptions{}
	cmd := &cobra.Command{
		Use:   "check [PATH...]",
		Short: "Check manifests against the policies (pre-commit and CI)",
		Long: `Given one directory (default: the current one), check treats it as a GitOps repository:
it discovers the render targets (leaf kustomizations, Helm charts with their values, plain
manifest directories, Tekton files; see 'gitgate targets'), renders each in-process
(remote charts and repositories only from what remotes.allow in .gitgate.yaml names,
through the verified cache; --offline: the cache only), checks built-in kinds strictly against their schema and evaluates every object with
Kyverno's engine against the built-in policy bundle plus the repository's policies/.
Given files, several paths or --plain, the manifests are checked as they are.

Each finding prints as file:line:col: Kind/namespace/name: policy/rule: message.
Audit findings are warnings; Enforce findings fail the check.

With --base REF (merge-request mode) only the targets the change affects are checked
(commits since the merge base of REF and HEAD, plus staged, unstaged and untracked
files), at the merge base and at head; each finding is new, unchanged or fixed, and
only new Enforce findings fail. Git is read in-process: no git binary is needed.

Exit codes: 0 clean, 1 enforced violations, 2 could not check.`,
		Example: `  gitgate check .
  gitgate check --registry harbor.example.com apps/ infrastructure/
  gitgate check --policies my-policies/ --no-builtin -o json deploy.yaml
  gitgate check --base origin/main -o text -o sarif=gitgate.sarif -o markdown=comment.md .
  gitgate check --offline --cache-dir .gitgate-cache .
  gitgate check --base HEAD --staged .     # in a pre-commit hook`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, args, stdout, stderr)
		},
	}
	o.BindFlags(cmd.Flags())
	return cmd
}

func (o *checkOptions) run(cmd *cobra.Command, args []string, stdout, stderr io.Writer) error {
	outs, err := report.CheckFormats().Parse(o.outputs, report.Options{Markdown: report.MarkdownOptions{MaxChars: o.commentMax, LinkBase: o.linkBase}})
	if err != nil {
		fmt.Fprintf(stderr, "gitgate check: %v\n", err)
		return exitCodeError{exitError}
	}
	if len(args) == 0 {
		args = []string{"."}
	}
	if cmd.Flags().Changed("base") && strings.TrimSpace(o.base) == "" {
		fmt.Fprintf(stderr, "gitgate check: --base needs a revision to compare with, e.g. --base origin/main (an empty value would check everything)\n")
		return exitCodeError{exitError}
	}
	var shard *shardSpec
	if cmd.Flags().Changed("shard") {
		sp, err := parseShard(o.shard)
		if err == nil && (o.base != "" || o.plain) {
			err = fmt.Errorf("--shard splits a repository check; it takes no --base or --plain")
		}
		if err != nil {
			fmt.Fprintf(stderr, "gitgate check: %v\n", err)
			return exitCodeError{exitError}
		}
		shard = &sp
	}
	tuneGC()
	defer watchInterrupt(cmd.Context(), stderr)()
	// check DIR inside a repository: the repository's settings, discovery and names,
	// limited to the targets in DIR (its bases and patches are never plain manifests).
	root, under, rootNotice := args[0], "", ""
	if st, err := os.Stat(args[0]); err == nil && st.IsDir() && len(args) == 1 && !o.plain && o.base == "" {
		root, under, rootNotice = findRepoRoot(args[0])
	}
	set, err := loadSettings(root, o.gate, o.maxFileSize)
	if set != nil {
		set.under = under
		set.partial = o.base == "" // merge-request mode compares rule sets: whole ones only
	}
	var gate *policy.Gate
	if err == nil {
		gate, err = set.openGate(stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "gitgate check: %v\n", err)
		return exitCodeError{exitError}
	}
	opts := set.checkOptions()
	opts.Workers = o.workers
	opts.Schema = !o.noSchema
	opts.NoMutate = o.noMutate
	opts.Exclude = set.shownPolicyDirs()
	var renderProgress func(done, total int)
	if isTerminal(stderr) {
		opts.Progress = progress(stderr, "checked", "inputs")
		renderProgress = progress(stderr, "rendered", "targets")
	}
	var rep *policy.Report
	if o.base != "" {
		if len(args) != 1 || o.plain {
			fmt.Fprintf(stderr, "gitgate check: --base takes one repository directory and no --plain\n")
			return exitCodeError{exitError}
		}
		rep, err = o.checkChange(cmd, set, gate, opts, renderProgress, func(w string) { fmt.Fprintf(stderr, "warning: %s\n", w) })
		if err != nil {
			fmt.Fprintf(stderr, "gitgate check: %v\n", err)
			return exitCodeError{exitError}
		}
	} else if st, err := os.Stat(args[0]); len(args) == 1 && !o.plain && err == nil && st.IsDir() {
		vc := openVerdictCache(o, func(w string) { fmt.Fprintf(stderr, "warning: %s\n", w) })
		rep = checkRepo(cmd, set, gate, opts, renderProgress, vc, shard, func(w string) { fmt.Fprintf(stderr, "warning: %s\n", w) })
	}
	if shard != nil && rep == nil {
		fmt.Fprintf(stderr, "gitgate check: --shard splits a repository's render targets; %s has none (plain manifests are checked as files)\n", strings.Join(args, " "))
		return exitCodeError{exitError}
	}
	if rep == nil { // files, several paths, --plain, or a directory with nothing to render
		var sources []policy.Source
		for _, a := range args {
			sources = append(sources, osSource(a))
		}
		rep = gate.Check(cmd.Context(), sources, opts)
	}
	if rootNotice != "" {
		rep.Notices = append([]string{rootNotice}, rep.Notices...)
	}
	rep.Notices = append(append([]string{}, gate.Warnings...), rep.Notices...) // in the JSON report too
	rep.Errors = append(rep.Errors, gate.LoadErrors...)                        // exit 2; every other policy ran
	if opts.Progress != nil {
		fmt.Fprint(stderr, "\r\033[K")
	}
	for _, n := range rep.Notices[len(gate.Warnings):] { // the warnings were printed when the gate opened
		fmt.Fprintf(stderr, "notice: %s\n", n)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(stderr, "%v\n", e)
	}
	if rep.Summary.Resources == 0 && len(rep.Errors) == 0 && len(rep.Targets) == 0 && shard == nil { // targets that rendered nothing are reported; a shard with none still writes its report for merge-reports
		fmt.Fprintf(stderr, "gitgate check: no resources found in %s\n", strings.Join(args, " "))
		return nil
	}
	if err := report.Write(stdout, rep, outs); err != nil {
		fmt.Fprintf(stderr, "gitgate check: %v\n", err)
		return exitCodeError{exitError}
	}
	switch {
	case len(rep.Errors) > 0:
		return exitCodeError{exitError}
	case rep.Blocking():
		return exitCodeError{exitViolations}
	}
	return nil
}

// progress draws "checked N/M inputs" on a terminal, at most every 1%.
func progress(w io.Writer, verb, unit string) func(done, total int) {
	var mu sync.Mutex
	last := -1
	return func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		pct := done * 100 / max(total, 1)
		if pct == last {
			return
		}
		last = pct
		fmt.Fprintf(w, "\r\033[K%s %d/%d %s (%d%%)", verb, done, total, unit, pct)
	}
}

// tuneGC trades memory for speed in a short-lived check: evaluation allocates heavily
// but keeps little (files are streamed), so the collector can run less often. Not too
// much less: past GOGC=200 the heap's growth costs more (fresh pages faulted in and
// cleared) than the collections it saves. On hack/bench/kubeconform.sh's 10,000 objects
// (2026-12-06, 2 shared cores) GOGC=200 took 1.2-1.3 CPU-s and 235 MiB peak RSS where 800
// took 1.7 CPU-s and 360 MiB, and with the built-in policies 8 CPU-s and 350 MiB against
// 8-10 CPU-s and 660 MiB. A soft limit keeps the heap bounded on huge inputs. GOGC and
// GOMEMLIMIT still win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(512 << 20)
	}
}

// shownFrom shows a repo-relative file from where the user stands (display is the
// repository as they named it); a file of a remote source (chart@version:file,
// url@commit:file) is shown as it is.
func shownFrom(display string) func(string) string {
	return func(p string) string {
		if display == "." || policy.IsRemoteFile(p) {
			return p
		}
		return path.Join(display, p)
	}
}

// checkRepo is repository mode: discover, render every target in parallel, gate.
//
// vc is the verdict cache (nil: --no-cache); warn says what made it unusable. shard
// (nil: all) limits the check to one shard's targets (shard.go).
func checkRepo(cmd *cobra.Command, set *settings, gate *policy.Gate, opts policy.CheckOptions, progress func(done, total int), vc *verdictcache.Cache, shard *shardSpec, warn func(string)) *policy.Report {
	abs, _ := filepath.Abs(set.root)
	repo := set.repo(abs)
	display := filepath.ToSlash(filepath.Clean(set.root))
	dopts := set.discover()
	// From the verdict cache's plan memo when nothing changed; ctx carries the run's file
	// digests to the cache keys (cache.go).
	d, ctx, saveDigests := planRepo(cmd.Context(), vc, set, repo, dopts, opts.Workers)
	defer saveDigests()
	if !d.NeedsRendering {
		return nil // plain manifests: checked file by file, with no render targets
	}
	var sp *shardPlan
	var elsewhere *shardCRDs // the CRDs other shards' targets render, when needed (shard_crds.go)
	if shard != nil {
		var p shardPlan
		full := d
		d, p = selectShard(d, *shard, set, vc)
		sp = &p
		if shard.Total > 1 {
			elsewhere = &shardCRDs{spec: *shard, repo: repo, plan: full, vc: vc}
			mine := map[string]bool{}
			for _, t := range d.Targets {
				mine[targetID(t)] = true
			}
			for _, t := range full.Targets {
				if !mine[targetID(t)] {
					elsewhere.others = append(elsewhere.others, t)
				}
			}
		}
	}

	show := shownFrom(display)
	// Each target is gated as soon as it renders, on the rendering worker, or comes from
	// the verdict cache (cache.go); the parts are merged in plan order.
	rep := &policy.Report{Unchecked: map[string]int{}}
	run := ""
	if vc != nil {
		var err error
		if run, err = runKey(vc, set, gate, opts); err != nil {
			warn(fmt.Sprintf("verdict cache off for this run: %v", err))
		}
	}
	if elsewhere != nil {
		elsewhere.run = run
	}
	evaluated := map[string]bool{} // target name|path, rendered and gated completely
	var notices []string           // the targets' own, deduplicated (several targets build one file)
	noticed := map[string]bool{}
	for i, o := range evaluateTargets(ctx, repo, d, gate, opts, vc, run, shard == nil, progress, elsewhere) {
		if o.part == nil {
			continue
		}
		rep.Merge(o.part)
		for _, n := range o.notices {
			if !noticed[n] {
				noticed[n] = true
				notices = append(notices, n)
			}
		}
		if o.done {
			evaluated[targetID(d.Targets[i])] = true
		}
	}
	if vc != nil {
		if _, _, _, failed := vc.Stats(); failed > 0 {
			warn(fmt.Sprintf("verdict cache: %d targets' results could not be stored in %s; check --cache-dir (or pass --no-cache)", failed, vc.Dir()))
		}
	}
	if opts.CRDs != nil {
		rep.Errors = append(rep.Errors, elsewhere.otherCRDErrors(opts.CRDs.Errors())...) // rendered CRDs that could not be taken (other shards report theirs)
	}
	if err := ctx.Err(); err != nil {
		ie := &policy.InterruptedError{Err: err, Total: len(d.Targets), Unit: "targets"}
		for _, t := range d.Targets {
			if !evaluated[targetID(t)] {
				ie.NotEvaluated++
				ie.Names = append(ie.Names, t.Name)
			}
		}
		rep.Errors = append(rep.Errors, ie)
	}
	rep.Summary.Policies = gate.Set.Len()
	rep.Sort()
	// Origins are repo-relative (a finding may point into an overlay, not the resource's
	// own file); show them from where the user stands.
	showResults(rep.Results, show)
	for _, dup := range rep.Duplicates {
		for i := range dup.Origins {
			dup.Origins[i].File = show(dup.Origins[i].File)
		}
	}
	rep.Errors = append(rep.Errors, d.Errors...)
	for _, e := range rep.Errors {
		var ie *policy.InputError
		if errors.As(e, &ie) {
			ie.Origin.File = show(ie.Origin.File)
		}
	}
	rep.Summary.Targets = len(d.Targets)
	if sp != nil {
		rep.Shard = sp.info(shardCommit(set.root, set.maxFileSize))
		rep.Notices = append(rep.Notices, shardNotice(rep.Shard))
		if n := elsewhere.notice(rep.Unchecked); n != "" {
			rep.Notices = append(rep.Notices, n)
		}
	}
	rep.Notices = append(rep.Notices, d.Notices...)
	slices.Sort(notices) // targets finish in any order
	for _, n := range notices {
		if display != "." { // they start with a repo-relative file
			n = display + "/" + n
		}
		rep.Notices = append(rep.Notices, n)
	}
	rep.Sort()
	return rep
}

// checkChange is merge-request mode: the targets the change affects, rendered and gated
// at the merge base and at head, their findings classified as new, fixed or unchanged.
//
// Trust: head is judged by the merge base's .gitgate.yaml, policies and values, never
// by its own, unless the base's .gitgate.yaml sets mergeRequests.trustPolicyChanges. A
// change to the policy side is gated under both rule sets; the findings head's rules
// add or remove are its blast radius (Changes.Policy), and a change that weakens
// enforcement is itself a blocking merge-request-trust finding (a warning when trusted).
func (o *checkOptions) checkChange(cmd *cobra.Command, set *settings, gate *policy.Gate, opts policy.CheckOptions, progress func(done, total int), warn func(string)) (*policy.Report, error) {
	root := set.root
	ch, err := git.OpenChange(root, o.base, git.ChangeOptions{Staged: o.staged, MaxBlobSize: set.maxFileSize, WorkFS: repopath.DirFS(root)})
	if err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(root)
	display := filepath.ToSlash(filepath.Clean(root))
	show := shownFrom(display)

	// The policy side of each revision: .gitgate.yaml, the policy directories and the
	// values file. A change to any of them, at base or at head, re-evaluates every
	// target under both rule sets.
	headSide := policySide(display, set.cfg, o.gate, os.DirFS(root))
	var notices []string
	baseCfg, baseCfgErr := policy.LoadConfig(ch.BaseFS)
	baseSide := headSide
	if baseCfgErr == nil {
		baseSide = policySide(display, baseCfg, o.gate, ch.BaseFS)
	}
	policiesChanged := false
	for _, p := range append(append([]string{}, headSide...), baseSide...) {
		policiesChanged = policiesChanged || git.ChangedUnder(ch.Files, strings.TrimSuffix(p, "/"))
	}

	judgeSet, judgeGate := set, gate
	baseGate, baseSet := gate, set
	var trust []policy.Result
	trusted := false
	var pc *policy.PolicyChange
	if policiesChanged {
		// The base's policy side, written out to open its gate.
		dir, err := os.MkdirTemp("", "gitgate-base-policies-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		err = baseCfgErr
		if err == nil {
			err = git.Materialize(ch.BaseFS, baseSide, dir)
		}
		if err == nil {
			baseSet, err = loadSettings(dir, o.gate.rebase(root, dir), set.maxFileSize)
		}
		if err == nil {
			baseGate, err = baseSet.openGate(io.Discard)
		}
		if err != nil {
			// Nothing to compare head's rules with: they judge, and the merge request
			// needs a policy owner's review like any other weakening.
			baseGate, baseSet = gate, set
			trust = append(trust, policy.Result{Origin: policy.Origin{File: show(policy.ConfigFile)}, Kind: "Settings", Name: policy.ConfigFile,
				Policy: policy.TrustPolicy, Rule: policy.TrustBaseUnloadable, Status: policy.StatusFail, Action: policy.Enforce, Baseline: policy.BaselineNew,
				Message: fmt.Sprintf("the merge base's policies and settings do not load (%s), so the merge request's own judge it and its policy changes cannot be compared; a policy owner must review it",
					strings.ReplaceAll(err.Error(), dir, "<base>"))})
		} else {
			trusted = baseSet.cfg.MergeRequests.TrustPolicyChanges
			if !trusted {
				judgeSet, judgeGate = baseSet, baseGate
			}
			pc = &policy.PolicyChange{JudgedBy: policy.JudgedByBase}
			if trusted {
				pc.JudgedBy = policy.JudgedByHead
			}
			headData, _ := os.ReadFile(filepath.Join(root, policy.ConfigFile))
			w := policy.Weakening(
				policy.Rules{Gate: baseGate, Config: baseSet.cfg, Registries: baseSet.registries()},
				policy.Rules{Gate: gate, Config: set.cfg, Registries: set.registries(), ConfigFile: show(policy.ConfigFile), ConfigData: headData})
			for i := range w {
				w[i].Origin.File = baseShown(w[i].Origin.File, dir, show)
			}
			trust = append(trust, w...)
		}
	}
	head := judgeSet.repo(abs)
	base := baseSet.repo("")
	base.FS = ch.BaseFS
	copts := render.CompareOptions{
		Discover:        judgeSet.discover(),
		Workers:         opts.Workers,
		Check:           opts,
		Changed:         ch.Files,
		PoliciesChanged: policiesChanged,
		BaseGate:        baseGate,
		HeadGate:        judgeGate,
		Progress:        progress,
	}
	if pc != nil {
		copts.BaseRules, copts.HeadRules = baseGate, gate
	}
	// The verdict cache, check's entries on both sides; not when the policies changed
	// (head is judged under two rule sets, and the base's are written out afresh).
	var vc *verdictcache.Cache
	if !policiesChanged {
		vc = openVerdictCache(o, warn)
	}
	if vc != nil {
		if run, err := runKey(vc, set, gate, opts); err != nil {
			warn(fmt.Sprintf("verdict cache off for this run: %v", err))
		} else {
			copts.Cache = newCompareCache(vc, run, opts.Workers)
		}
	}
	rep := render.Compare(cmd.Context(), base, head, copts)
	if vc != nil {
		vc.Close()
		if _, _, _, failed := vc.Stats(); failed > 0 {
			warn(fmt.Sprintf("verdict cache: %d targets' results could not be stored in %s; check --cache-dir (or pass --no-cache)", failed, vc.Dir()))
		}
	}
	rep.Changes.Base, rep.Changes.BaseCommit = ch.Base, ch.BaseCommit
	rep.Notices = append(notices, rep.Notices...)
	showResults(rep.Results, show)
	showResults(rep.Changes.Fixed, show)
	if pc != nil && rep.Changes.Policy != nil {
		pc.Added, pc.Removed = rep.Changes.Policy.Added, rep.Changes.Policy.Removed
		showResults(pc.Added, show)
		showResults(pc.Removed, show)
		if r := policy.EnforcementRemoved(pc, policy.Origin{File: show(firstChanged(ch.Files, headSide, baseSide))}); r != nil {
			trust = append(trust, *r)
		}
		rep.Changes.Policy = pc
		if pc.JudgedBy == policy.JudgedByBase {
			rep.Notices = append(rep.Notices, fmt.Sprintf("the merge request changes the policies or settings: judged by the merge base's (%s); its own rules add %d and remove %d findings (not in force until merged)",
				ch.Base, len(pc.Added), len(pc.Removed)))
		}
	}
	if len(trust) > 0 {
		if trusted {
			trust = policy.Trusted(trust)
		}
		if pc != nil {
			pc.Weakened = true
		}
		for _, r := range trust {
			rep.Summary.Fail++
			if r.Blocking() {
				rep.Summary.Blocking++
			}
		}
		rep.Results = append(rep.Results, trust...)
		policy.SortResults(rep.Results)
		rep.Changes.CountBaselines(rep.Results)
	}
	for _, e := range rep.Errors {
		var ie *policy.InputError
		if errors.As(e, &ie) {
			ie.Origin.File = show(ie.Origin.File)
		}
	}
	return rep, nil
}

// policySide is the policy side of a revision, repo-relative ("dir/" for a directory):
// .gitgate.yaml, the policy directories and the values file, from the flags when given
// (those inside the repository), else from cfg (fsys is the revision, for the default
// policies/).
func policySide(display string, cfg *policy.Config, flags gateFlags, fsys fs.FS) []string {
	out := []string{policy.ConfigFile}
	if len(flags.policyDirs) > 0 {
		for _, d := range repoRelative(display, slashAll(flags.policyDirs)) {
			out = append(out, d+"/")
		}
	} else {
		for _, d := range cfg.PolicyDirs(fsys) {
			out = append(out, d+"/")
		}
	}
	values := cfg.Values
	if flags.values != "" {
		values = ""
		if r := repoRelative(display, []string{filepath.ToSlash(flags.values)}); len(r) > 0 {
			values = r[0]
		}
	}
	if values != "" {
		out = append(out, path.Clean(values))
	}
	return out
}

func slashAll(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = filepath.ToSlash(filepath.Clean(p))
	}
	return out
}

// firstChanged is the first changed file of the policy side, where a finding about the
// policy change points.
func firstChanged(files []string, sides ...[]string) string {
	for _, f := range files {
		for _, side := range sides {
			for _, p := range side {
				if git.ChangedUnder([]string{f}, strings.TrimSuffix(p, "/")) {
					return f
				}
			}
		}
	}
	return policy.ConfigFile
}

// baseShown turns a file of the base's written-out policy side (under dir) back into
// the repository path it stands for, shown from where the user stands.
func baseShown(file, dir string, show func(string) string) string {
	d := filepath.ToSlash(filepath.Clean(dir))
	if rel, ok := strings.CutPrefix(file, d+"/"); ok {
		return show(rel)
	}
	return file
}

// showResults shows the results' files, where a value was set included, from where
// the user stands.
func showResults(rs []policy.Result, show func(string) string) {
	for i := range rs {
		rs[i].Origin.File = show(rs[i].Origin.File)
		for k := range rs[i].ValuesFrom {
			rs[i].ValuesFrom[k].Origin.File = show(rs[i].ValuesFrom[k].Origin.File)
		}
	}
}
