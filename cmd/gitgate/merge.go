package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/report"
	"github.com/spf13/cobra"
)

func newMergeReportsCmd(stdout, stderr io.Writer) *cobra.Command {
	var outputs []string
	cmd := &cobra.Command{
		Use:   "merge-reports SHARD.json...",
		Short: "Join the JSON reports of 'check --shard I/N' into one report",
		Long: `merge-reports reads the JSON reports of the N shards of one sharded check
('gitgate check --shard I/N -o json=shard-I.json', I = 1..N) and writes the report the
unsharded check would have written, in every -o format.

Each shard's report says which part of which check it is (its "shard" field: I, N, the
Git commit, the planned targets, the assignment). merge-reports refuses reports that are
not shards, shards of different commits, counts (N), plans (.gitgate.yaml, uncommitted
changes or gitgate version) or assignments (shards that read different recorded costs), a
shard given twice and a missing shard, naming the files. The repository-wide errors
every shard repeats are kept once; notices are kept once each, sorted (the unsharded
check lists them in plan order).

Exit codes, as check's for the merged report: 0 clean, 1 enforced violations, 2 could not
check (or could not merge).`,
		Example: `  gitgate merge-reports -o text -o sarif=gitgate.sarif -o junit=junit.xml shard-*.json`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			outs, err := report.CheckFormats().Parse(outputs, report.Options{})
			if err == nil {
				var rep *policy.Report
				if rep, err = mergeShardFiles(args); err == nil {
					for _, e := range rep.Errors {
						fmt.Fprintf(stderr, "%v\n", e)
					}
					err = report.Write(stdout, rep, outs)
					switch {
					case err != nil:
					case len(rep.Errors) > 0:
						return exitCodeError{exitError}
					case rep.Blocking():
						return exitCodeError{exitViolations}
					}
				}
			}
			if err != nil {
				fmt.Fprintf(stderr, "gitgate merge-reports: %v\n", err)
				return exitCodeError{exitError}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&outputs, "output", "o", nil, "report format, repeatable: FORMAT on stdout or FORMAT=FILE; formats: "+strings.Join(report.CheckFormats().Names(), ", ")+" (default text)")
	return cmd
}

// shardJSON is the JSON report (report/json.go) as merge-reports reads it back.
type shardJSON struct {
	APIVersion string                `json:"apiVersion"`
	Kind       string                `json:"kind"`
	Summary    policy.Summary        `json:"summary"`
	Results    []policy.Result       `json:"results"`
	Errors     []shardJSONError      `json:"errors"`
	Duplicates []policy.Duplicate    `json:"duplicates"`
	Unchecked  map[string]int        `json:"notSchemaChecked"`
	Notices    []string              `json:"notices"`
	Changes    *json.RawMessage      `json:"changes"`
	Targets    []policy.TargetStatus `json:"targets"`
	Shard      *policy.ShardInfo     `json:"shard"`
}

type shardJSONError struct {
	Origin  policy.Origin `json:"origin"`
	Message string        `json:"message"`
}

// err is the error as check had it: an input error keeps its origin.
func (e shardJSONError) err() error {
	if e.Origin != (policy.Origin{}) {
		return &policy.InputError{Origin: e.Origin, Err: errors.New(e.Message)}
	}
	return errors.New(e.Message)
}

type shardReport struct {
	file string
	info *policy.ShardInfo
	rep  shardJSON
}

func mergeShardFiles(files []string) (*policy.Report, error) {
	var shards []shardReport
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var s shardReport
		s.file = f
		if err := json.Unmarshal(b, &s.rep); err != nil {
			return nil, fmt.Errorf("%s: not a gitgate JSON report (%v); give the shards' -o json=FILE reports", f, err)
		}
		if s.rep.Kind != "CheckReport" {
			return nil, fmt.Errorf("%s: kind %q, not a CheckReport; give the shards' -o json=FILE reports", f, s.rep.Kind)
		}
		if s.rep.Changes != nil {
			return nil, fmt.Errorf("%s: a merge-request report (check --base); shards are repository checks", f)
		}
		s.info = s.rep.Shard
		if s.info == nil {
			return nil, fmt.Errorf("%s: not a shard's report (no \"shard\" field); run 'gitgate check --shard I/N -o json=%s'", f, f)
		}
		if in := s.info; in.Total < 1 || in.Total > maxShards || in.Index < 1 || in.Index > in.Total {
			return nil, fmt.Errorf("%s: shard %d/%d: not a shard of a check; the report was edited", f, in.Index, in.Total)
		}
		shards = append(shards, s)
	}
	return mergeShards(shards)
}

// mergeShards checks the shards are 1..N of one check (the same commit, plan and
// assignment) and joins them.
func mergeShards(shards []shardReport) (*policy.Report, error) {
	first := shards[0].info
	n := first.Total
	by := make([]*shardReport, n)
	var problems []string
	commit := func(in *policy.ShardInfo) string {
		switch {
		case in.Commit == "":
			return "no Git commit"
		case in.Dirty:
			return "commit " + in.Commit + " with uncommitted changes " + in.Changes
		}
		return "commit " + in.Commit
	}
	for i := range shards {
		s := &shards[i]
		p := s.info
		switch {
		case p.Total != n:
			problems = append(problems, fmt.Sprintf("%s is shard %d/%d but %s is shard %d/%d: not the same split", s.file, p.Index, p.Total, shards[0].file, first.Index, first.Total))
		case p.Commit != first.Commit:
			problems = append(problems, fmt.Sprintf("%s checked %s, %s %s: shards of different commits; run every shard of one pipeline on the same commit", s.file, commit(p), shards[0].file, commit(first)))
		case p.Dirty != first.Dirty || p.Changes != first.Changes:
			problems = append(problems, fmt.Sprintf("%s checked %s, %s %s: shards of different working trees; commit the changes (or make every job write the same files) and run the shards again", s.file, commit(p), shards[0].file, commit(first)))
		case p.Plan != first.Plan || !slices.Equal(p.Planned, first.Planned):
			problems = append(problems, fmt.Sprintf("%s is of plan %s (%d targets), %s of plan %s (%d targets): shards of different runs (.gitgate.yaml, uncommitted changes or gitgate version)", s.file, p.Plan, len(p.Planned), shards[0].file, first.Plan, len(first.Planned)))
		case p.Assignment != first.Assignment:
			problems = append(problems, fmt.Sprintf("%s and %s assigned the targets differently (assignment %s, %s): they read different recorded costs; give every shard the same --cache-dir contents, or --no-cache", s.file, shards[0].file, p.Assignment, first.Assignment))
		case by[p.Index-1] != nil:
			problems = append(problems, fmt.Sprintf("shard %d/%d given twice: %s and %s", p.Index, p.Total, by[p.Index-1].file, s.file))
		default:
			by[p.Index-1] = s
		}
	}
	if len(problems) == 0 {
		for i, s := range by {
			if s == nil {
				problems = append(problems, fmt.Sprintf("shard %d/%d missing: its report was not given (or that job did not write one)", i+1, n))
			}
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	rep := &policy.Report{Unchecked: map[string]int{}}
	seen := map[string]string{}
	var names []string
	var notices, errs [][]string
	errByText := map[string]error{}
	for _, s := range by {
		r := s.rep
		if len(r.Targets) != s.info.Targets {
			return nil, fmt.Errorf("%s lists %d targets, its shard field says %d: the report was edited or cut short", s.file, len(r.Targets), s.info.Targets)
		}
		for _, t := range r.Targets {
			id := t.Name + "\x00" + t.Path
			if f, ok := seen[id]; ok {
				return nil, fmt.Errorf("target %s (%s) is in %s and %s: the shards did not split the same plan", t.Name, t.Path, f, s.file)
			}
			seen[id] = s.file
			names = append(names, t.Name)
		}
		rep.Summary.Files += r.Summary.Files
		rep.Summary.Resources += r.Summary.Resources
		rep.Summary.Pass += r.Summary.Pass
		rep.Summary.Fail += r.Summary.Fail
		rep.Summary.Warn += r.Summary.Warn
		rep.Summary.Error += r.Summary.Error
		rep.Summary.Skip += r.Summary.Skip
		rep.Summary.Blocking += r.Summary.Blocking
		rep.Summary.Targets += r.Summary.Targets
		rep.Summary.Policies = max(rep.Summary.Policies, r.Summary.Policies)
		rep.Results = append(rep.Results, r.Results...)
		rep.Duplicates = append(rep.Duplicates, r.Duplicates...)
		rep.Targets = append(rep.Targets, r.Targets...)
		for k, v := range r.Unchecked {
			rep.Unchecked[k] += v
		}
		var ns []string
		own := shardNotice(s.info)
		for _, x := range r.Notices {
			if x != own {
				ns = append(ns, x)
			}
		}
		notices = append(notices, ns)
		var es []string
		for _, e := range r.Errors {
			err := e.err()
			errByText[err.Error()] = err
			es = append(es, err.Error())
		}
		errs = append(errs, es)
	}
	slices.Sort(names)
	if !slices.Equal(names, first.Planned) {
		var missing []string
		for _, t := range first.Planned {
			if _, ok := slices.BinarySearch(names, t); !ok {
				missing = append(missing, t)
			}
		}
		if len(missing) > 10 {
			missing = append(missing[:10], fmt.Sprintf("and %d more", len(missing)-10))
		}
		return nil, fmt.Errorf("the shards hold %d targets, the plan %d (in no shard: %s): a report was edited or cut short", len(names), len(first.Planned), strings.Join(missing, ", "))
	}
	// Notices once each: the unsharded check lists its targets' notices deduplicated
	// (several targets build one file, maybe in different shards).
	rep.Notices = slices.Compact(mergeRepeated(notices))
	// check lists the errors sorted, then the policies' load errors (every shard's, the
	// same, last): those are the shards' common tail, kept last and once.
	tail := commonSuffix(errs)
	for i := range errs {
		errs[i] = errs[i][:len(errs[i])-len(tail)]
	}
	rep.Sort()
	for _, e := range append(mergeRepeated(errs), tail...) {
		rep.Errors = append(rep.Errors, errByText[e])
	}
	return rep, nil
}

// commonSuffix is the longest tail every list ends with.
func commonSuffix(lists [][]string) []string {
	n := len(lists[0])
	for _, l := range lists[1:] {
		k := 0
		for k < min(n, len(l)) && l[len(l)-1-k] == lists[0][len(lists[0])-1-k] {
			k++
		}
		n = k
	}
	return lists[0][len(lists[0])-n:]
}

// mergeRepeated joins the shards' lists as multisets: what every shard has (the
// repository's: plan notices and errors, the gate's warnings) is kept as often as the
// shard having it least often has it; the rest (their targets') as often as all shards
// together have it. Sorted.
func mergeRepeated(lists [][]string) []string {
	counts := make([]map[string]int, len(lists))
	all := map[string]int{}
	for i, l := range lists {
		counts[i] = map[string]int{}
		for _, x := range l {
			counts[i][x]++
			all[x]++
		}
	}
	var out []string
	for x, sum := range all {
		least := sum
		for _, c := range counts {
			least = min(least, c[x])
		}
		for range sum - (len(lists)-1)*least {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}
