package report

import (
	"github.com/gitgate/gitgate/internal/git"
	"github.com/gitgate/gitgate/policy"

	"fmt"
	"io"
	"sort"
	"strings"
)

// writeText prints one line per finding, grouped by render target, then duplicates,
// then a one-line summary. In merge-request mode (rep.Changes set) every finding is
// tagged [new] or [unchanged], the fixed findings and the affected targets follow, and
// the summary counts new, fixed and unchanged findings.
func writeText(w io.Writer, rep *policy.Report) error {
	target := ""
	for _, r := range rep.Results {
		if !r.Finding() {
			continue
		}
		if r.Origin.Target != target { // grouped by render target
			target = r.Origin.Target
			if _, err := fmt.Fprintf(w, "# %s\n", target); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintln(w, baselineTag(r)+policy.FindingLine(r)); err != nil {
			return err
		}
	}
	if c := rep.Changes; c != nil {
		if len(c.Fixed) > 0 {
			if _, err := fmt.Fprintln(w, "# fixed"); err != nil {
				return err
			}
			for _, r := range c.Fixed {
				if _, err := fmt.Fprintln(w, "[fixed] "+policy.FindingLine(r)); err != nil {
					return err
				}
			}
		}
		if pc := c.Policy; pc != nil {
			judge := "the merge base's rules judged; its own are not in force until merged"
			if pc.JudgedBy == policy.JudgedByHead {
				judge = "its own rules judged: the base trusts policy changes"
			}
			if _, err := fmt.Fprintf(w, "# policy change (%s): its own rules would add %d and remove %d findings (%d Enforce)\n", judge, len(pc.Added), len(pc.Removed), pc.RemovedBlocking()); err != nil {
				return err
			}
			for _, r := range pc.Removed {
				if _, err := fmt.Fprintln(w, "[would remove] "+policy.FindingLine(r)); err != nil {
					return err
				}
			}
			for _, r := range pc.Added {
				if _, err := fmt.Fprintln(w, "[would add] "+policy.FindingLine(r)); err != nil {
					return err
				}
			}
		}
		if len(c.Targets) > 0 {
			if _, err := fmt.Fprintln(w, "# affected targets"); err != nil {
				return err
			}
			for _, t := range c.Targets {
				if _, err := fmt.Fprintf(w, "%s: %s\n", t.Name, targetVerdict(t)); err != nil {
					return err
				}
			}
		}
	}
	for _, d := range rep.Duplicates {
		var where []string
		for _, o := range d.Origins[1:] {
			where = append(where, o.String())
		}
		if _, err := fmt.Fprintf(w, "%s: %s: warning: defined more than once; also at %s\n", d.Origins[0], d.Resource, strings.Join(where, ", ")); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, summaryLine(rep))
	return err
}

// summaryLine is the one-line summary of a report.
func summaryLine(rep *policy.Report) string {
	s := rep.Summary
	var b strings.Builder
	if s.Targets > 0 {
		fmt.Fprintf(&b, "%d resources from %d %s, %d policies: ", s.Resources, s.Targets, plural(s.Targets, "target", "targets"), s.Policies)
	} else {
		fmt.Fprintf(&b, "%d resources in %d %s, %d policies: ", s.Resources, s.Files, plural(s.Files, "file", "files"), s.Policies)
	}
	fmt.Fprintf(&b, "%d blocking, %d warnings, %d passed", s.Blocking, s.Fail+s.Warn+s.Error-s.Blocking, s.Pass)
	if s.Error > 0 {
		fmt.Fprintf(&b, ", %d rule errors", s.Error)
	}
	if s.Skip > 0 {
		fmt.Fprintf(&b, ", %d skipped", s.Skip)
	}
	if n := len(rep.Errors); n > 0 {
		fmt.Fprintf(&b, "; %d %s could not be checked (the errors above say which and why)", n, plural(n, "input", "inputs"))
	}
	if nr := rep.NotRendered(); len(nr) > 0 {
		reasons := make([]string, 0, len(nr))
		n := 0
		for r, c := range nr {
			reasons = append(reasons, fmt.Sprintf("%d %s", c, r))
			n += c
		}
		sort.Strings(reasons)
		fmt.Fprintf(&b, "; %d of %d targets not rendered (%s)", n, len(rep.Targets), strings.Join(reasons, ", "))
	}
	if len(rep.Unchecked) > 0 {
		kinds := make([]string, 0, len(rep.Unchecked))
		n := 0
		for k, c := range rep.Unchecked {
			kinds = append(kinds, k)
			n += c
		}
		sort.Strings(kinds)
		fmt.Fprintf(&b, "; %d not schema-checked (no schema for %s)", n, strings.Join(kinds, ", "))
	}
	if c := rep.Changes; c != nil {
		b.WriteString("; ")
		b.WriteString(changesLine(c))
	}
	return b.String()
}

// changesLine summarises a merge-request comparison: against main (0123abc): 2 new
// (1 blocking), 1 fixed, 5 unchanged in 3 affected targets.
func changesLine(c *policy.Changes) string {
	var b strings.Builder
	b.WriteString("against ")
	b.WriteString(c.Base)
	if c.BaseCommit != "" && c.BaseCommit != c.Base {
		fmt.Fprintf(&b, " (%s)", git.ShortRev(c.BaseCommit))
	}
	fmt.Fprintf(&b, ": %d new (%d blocking), %d fixed, %d unchanged in %d affected targets", c.New, c.NewBlocking, c.FixedCount, c.Unchanged, len(c.Targets))
	if c.PoliciesChanged {
		b.WriteString(" (policies changed: every target re-evaluated)")
	}
	return b.String()
}

// baselineTag is "[new] " or "[unchanged] " for a classified finding, else "".
func baselineTag(r policy.Result) string {
	if r.Baseline == "" {
		return ""
	}
	return "[" + string(r.Baseline) + "] "
}

// targetVerdict says how an affected target changed and what the change does to its
// verdict: "modified, newly failing".
func targetVerdict(t policy.TargetChange) string {
	v := string(t.State)
	switch {
	case t.NewlyFailing():
		v += ", newly failing"
	case t.NewlyPassing():
		v += ", newly passing"
	case t.HeadBlocking:
		v += ", still failing"
	}
	return v
}
