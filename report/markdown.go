package report

import (
	"github.com/gitgate/gitgate/internal/git"
	"github.com/gitgate/gitgate/policy"

	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Comment size limits of the forges a markdown report is posted to.
const (
	// GitHubCommentLimit is the largest issue or pull request comment GitHub accepts.
	GitHubCommentLimit = 65536
	// GitLabCommentLimit is the largest note GitLab accepts.
	GitLabCommentLimit = 1000000
)

// markdownMarker starts every markdown report, so a CI job can find its previous
// comment and update it instead of adding another.
const markdownMarker = "<!-- gitgate report -->"

// MarkdownOptions configure the markdown report; the zero value is a GitHub comment.
type MarkdownOptions struct {
	// MaxChars bounds the comment's size in bytes (never fewer characters than that);
	// rendered diffs, then the longest lists, are truncated with a note to stay under it.
	// Default GitHubCommentLimit; use GitLabCommentLimit for GitLab.
	MaxChars int
	// LinkBase prefixes file links, e.g. https://github.com/org/repo/blob/<sha>/ or
	// https://gitlab.example.com/org/repo/-/blob/<sha>/; empty: links relative to the
	// repository root.
	LinkBase string
}

// mdTruncationReserve is room kept for the closing truncation note.
const mdTruncationReserve = 320

// mdDoc builds a comment that never exceeds its limit: every addition is checked, and
// what does not fit is counted as omitted.
type mdDoc struct {
	b       strings.Builder
	limit   int // for content, the truncation note's room excluded
	omitted bool
}

func (d *mdDoc) fits(n int) bool { return d.b.Len()+n <= d.limit }

// add writes s if it fits (leaving reserve bytes free) and reports whether it did.
func (d *mdDoc) add(s string, reserve int) bool {
	if !d.fits(len(s) + reserve) {
		d.omitted = true
		return false
	}
	d.b.WriteString(s)
	return true
}

// section writes head, then items while they fit with room for tail and a "…and N
// more" line, then that line and tail (a closing tag). Nothing is written when even
// head does not fit, so tags stay balanced.
func (d *mdDoc) section(head string, items []string, tail string) {
	const moreRoom = 80
	if !d.add(head, len(tail)+moreRoom) {
		return
	}
	for i, it := range items {
		if !d.add(it, len(tail)+moreRoom) {
			d.add(fmt.Sprintf("- _…and %d more, left out to stay under the comment limit_\n", len(items)-i), len(tail))
			break
		}
	}
	d.add(tail, 0)
}

// markdown renders the report as a merge request comment: a verdict, a summary table,
// new violations first with file:line links, then fixed ones, the unchanged ones and
// the waived ones collapsed, then each affected target's rendered diff in a collapsed
// <details> block. It stays under opts.MaxChars by truncating diffs, then lists, with a
// note saying so. A report without Changes renders a summary and its findings.
func markdown(rep *policy.Report, opts MarkdownOptions) string {
	limit := opts.MaxChars
	if limit <= 0 {
		limit = GitHubCommentLimit
	}
	d := &mdDoc{limit: max(limit-mdTruncationReserve, 0)}
	d.add(markdownMarker+"\n", 0)
	if rep.Changes != nil {
		markdownChanges(d, rep, opts)
	} else {
		markdownPlain(d, rep, opts)
	}
	markdownTail(d, rep, opts)
	if d.omitted {
		d.limit = limit
		note := fmt.Sprintf("\n---\n_This comment was shortened to stay under %d characters: parts marked above were left out. The full report is in the job's `-o json` or `-o sarif` output._\n", limit)
		d.add(note, 0)
	}
	out := d.b.String()
	if len(out) > limit { // a limit too small for even the headline
		out = out[:limit]
		for !utf8.ValidString(out) {
			out = out[:len(out)-1]
		}
	}
	return out
}

func markdownChanges(d *mdDoc, rep *policy.Report, opts MarkdownOptions) {
	c := rep.Changes
	switch {
	case c.NewBlocking > 0:
		d.add(fmt.Sprintf("### ❌ gitgate: %d new blocking %s\n\n", c.NewBlocking, plural(c.NewBlocking, "violation", "violations")), 0)
	case c.New > 0:
		d.add(fmt.Sprintf("### ⚠️ gitgate: no new blocking violations, %d new %s\n\n", c.New, plural(c.New, "warning", "warnings")), 0)
	default:
		d.add("### ✅ gitgate: no new violations\n\n", 0)
	}
	base := "`" + mdCode(c.Base) + "`"
	if c.BaseCommit != "" && c.BaseCommit != c.Base {
		base += " (`" + git.ShortRev(c.BaseCommit) + "`)"
	}
	line := fmt.Sprintf("Compared with %s: %d %s affected by %d changed %s", base,
		len(c.Targets), plural(len(c.Targets), "target", "targets"), len(c.Files), plural(len(c.Files), "file", "files"))
	if rep.Summary.Targets > 0 {
		line += fmt.Sprintf(", %d %s checked", rep.Summary.Targets, plural(rep.Summary.Targets, "target", "targets"))
	}
	line += fmt.Sprintf(": **%d new** (%d blocking), **%d fixed**, %d unchanged.", c.New, c.NewBlocking, c.FixedCount, c.Unchanged)
	if c.PoliciesChanged {
		line += " Policies changed, so every target was evaluated under both policy sets."
	}
	d.add(line+"\n\n", 0)

	// New, fixed and unchanged by policy.
	by := map[string]*[3]int{}
	var news, unchanged, waived []policy.Result
	for _, r := range rep.Results {
		switch {
		case r.Finding() && r.Baseline == policy.BaselineUnchanged:
			policyCount(by, r.Policy)[2]++
			unchanged = append(unchanged, r)
		case r.Finding():
			policyCount(by, r.Policy)[0]++
			news = append(news, r)
		case r.Status == policy.StatusSkip && r.Exception != "":
			waived = append(waived, r)
		}
	}
	for _, r := range c.Fixed {
		policyCount(by, r.Policy)[1]++
	}
	policyTable(d, "| policy | new | fixed | unchanged |\n|---|---:|---:|---:|\n", by)

	if len(c.Targets) > 0 {
		rows := make([]string, 0, len(c.Targets))
		for _, t := range c.Targets {
			baseV, headV := verdictCell(t.BaseBlocking), verdictCell(t.HeadBlocking)
			switch t.State {
			case policy.TargetAdded:
				baseV = "—"
			case policy.TargetRemoved:
				headV = "—"
			}
			if t.NewlyFailing() && t.State != policy.TargetAdded {
				headV += " (newly failing)"
			} else if t.NewlyPassing() && t.State != policy.TargetRemoved {
				headV += " (newly passing)"
			}
			rows = append(rows, fmt.Sprintf("| `%s` | %s | %s | %s |\n", mdCode(t.Name), t.State, baseV, headV))
		}
		d.section("| target | change | base | head |\n|---|---|---|---|\n", rows, "\n")
	}

	blockingFirst(news)
	if len(news) > 0 {
		d.section(fmt.Sprintf("#### New (%d)\n\n", len(news)), findingItems(news, opts), "\n")
	}
	if len(c.Fixed) > 0 {
		d.section(fmt.Sprintf("#### Fixed (%d)\n\n", len(c.Fixed)), findingItems(c.Fixed, opts), "\n")
	}
	if len(unchanged) > 0 {
		blockingFirst(unchanged)
		d.section(fmt.Sprintf("<details><summary>Unchanged (%d): already on %s</summary>\n\n", len(unchanged), mdText(c.Base)),
			findingItems(unchanged, opts), "\n</details>\n\n")
	}
	markdownWaived(d, waived, opts)
	markdownPolicyChange(d, c, opts)
	markdownRemotes(d, c.Targets)
	markdownDiffs(d, c.Targets)
}

// markdownPolicyChange shows a policy change's blast radius: whose rules judged the
// merge request and the findings the merge request's own rules would add and remove.
func markdownPolicyChange(d *mdDoc, c *policy.Changes, opts MarkdownOptions) {
	pc := c.Policy
	if pc == nil {
		return
	}
	judge := "the merge base's policies and settings (`" + mdCode(c.Base) + "`): the merge request's own are not in force until it merges"
	if pc.JudgedBy == policy.JudgedByHead {
		judge = "the merge request's own policies and settings (the base's `.gitgate.yaml` sets `mergeRequests.trustPolicyChanges`)"
	}
	d.add(fmt.Sprintf("#### Policy change\n\nThis merge request changes the policies or settings. It was judged by %s. Its own rules would add **%d** and remove **%d** %s (%d Enforce).\n\n",
		judge, len(pc.Added), len(pc.Removed), plural(len(pc.Removed), "finding", "findings"), pc.RemovedBlocking()), 0)
	if len(pc.Removed) > 0 {
		d.section(fmt.Sprintf("<details><summary>Findings the merge request's rules would remove (%d)</summary>\n\n", len(pc.Removed)), findingItems(pc.Removed, opts), "\n</details>\n\n")
	}
	if len(pc.Added) > 0 {
		d.section(fmt.Sprintf("<details><summary>Findings the merge request's rules would add (%d)</summary>\n\n", len(pc.Added)), findingItems(pc.Added, opts), "\n</details>\n\n")
	}
}

func markdownPlain(d *mdDoc, rep *policy.Report, opts MarkdownOptions) {
	s := rep.Summary
	warnings := s.Fail + s.Warn + s.Error - s.Blocking
	switch {
	case s.Blocking > 0:
		d.add(fmt.Sprintf("### ❌ gitgate: %d blocking %s\n\n", s.Blocking, plural(s.Blocking, "violation", "violations")), 0)
	case warnings > 0:
		d.add(fmt.Sprintf("### ⚠️ gitgate: no blocking violations, %d %s\n\n", warnings, plural(warnings, "warning", "warnings")), 0)
	default:
		d.add("### ✅ gitgate: no violations\n\n", 0)
	}
	d.add(mdText(summaryLine(rep))+"\n\n", 0)

	by := map[string]*[3]int{} // blocking, warnings, rule errors
	var findings, waived []policy.Result
	for _, r := range rep.Results {
		if r.Status == policy.StatusSkip && r.Exception != "" {
			waived = append(waived, r)
		}
		if !r.Finding() {
			continue
		}
		findings = append(findings, r)
		x := policyCount(by, r.Policy)
		switch {
		case r.Status == policy.StatusError:
			x[2]++
		case r.Blocking():
			x[0]++
		default:
			x[1]++
		}
	}
	policyTable(d, "| policy | blocking | warnings | rule errors |\n|---|---:|---:|---:|\n", by)
	if len(findings) > 0 {
		blockingFirst(findings)
		d.section(fmt.Sprintf("#### Findings (%d)\n\n", len(findings)), findingItems(findings, opts), "\n")
	}
	markdownWaived(d, waived, opts)
}

// markdownTail lists what could not be checked and the notices, collapsed.
func markdownTail(d *mdDoc, rep *policy.Report, opts MarkdownOptions) {
	if len(rep.Errors) > 0 {
		items := make([]string, 0, len(rep.Errors))
		for _, err := range rep.Errors {
			items = append(items, "- "+mdText(err.Error())+"\n")
		}
		d.section(fmt.Sprintf("#### Could not check (%d)\n\n", len(rep.Errors)), items, "\n")
	}
	if len(rep.Notices) > 0 {
		items := make([]string, 0, len(rep.Notices))
		for _, n := range rep.Notices {
			items = append(items, "- "+mdText(n)+"\n")
		}
		d.section(fmt.Sprintf("<details><summary>Notices (%d)</summary>\n\n", len(rep.Notices)), items, "\n</details>\n")
	}
}

func markdownWaived(d *mdDoc, waived []policy.Result, opts MarkdownOptions) {
	if len(waived) == 0 {
		return
	}
	items := make([]string, 0, len(waived))
	for _, r := range waived {
		items = append(items, fmt.Sprintf("- ➖ `%s` `%s` at %s: %s\n", mdCode(r.ResourceID()), mdCode(ruleID(r)), mdLink(r.Origin, opts), mdText(r.Exception)))
	}
	d.section(fmt.Sprintf("<details><summary>Waived or excepted (%d)</summary>\n\n", len(waived)), items, "\n</details>\n\n")
}

// markdownRemotes lists the remote sources whose resolved version or commit the change
// moves, per target: "chart web 1.2.3 → 1.3.0".
func markdownRemotes(d *mdDoc, targets []policy.TargetChange) {
	var items []string
	for _, t := range targets {
		if len(t.BaseRemotes) == 0 && len(t.HeadRemotes) == 0 {
			continue
		}
		key := func(s policy.RemoteSource) string { return s.Kind + " " + s.Name + " from " + s.URL }
		base := map[string]string{}
		for _, s := range t.BaseRemotes {
			base[key(s)] = s.Resolved
		}
		seen := map[string]bool{}
		for _, s := range t.HeadRemotes {
			k := key(s)
			seen[k] = true
			from, ok := base[k]
			switch {
			case !ok:
				items = append(items, fmt.Sprintf("- `%s`: %s %s (added)\n", mdCode(t.Name), mdText(k), mdText(s.Resolved)))
			case from != s.Resolved:
				items = append(items, fmt.Sprintf("- `%s`: %s %s → %s\n", mdCode(t.Name), mdText(k), mdText(from), mdText(s.Resolved)))
			}
		}
		for _, s := range t.BaseRemotes {
			if k := key(s); !seen[k] {
				items = append(items, fmt.Sprintf("- `%s`: %s %s (removed)\n", mdCode(t.Name), mdText(k), mdText(s.Resolved)))
			}
		}
	}
	if len(items) > 0 {
		d.section("#### Remote sources changed\n\n", items, "\n")
	}
}

// markdownDiffs adds each target's rendered diff, collapsed, truncating a diff that
// does not fit and leaving out those with no room left.
func markdownDiffs(d *mdDoc, targets []policy.TargetChange) {
	var withDiff []policy.TargetChange
	for _, t := range targets {
		if t.Diff != "" {
			withDiff = append(withDiff, t)
		}
	}
	if len(withDiff) == 0 {
		return
	}
	if !d.add("#### Rendered changes\n\n", 0) {
		return
	}
	left := 0
	for _, t := range withDiff {
		adds, dels := diffStat(t.Diff)
		fence := strings.Repeat("`", max(3, longestRun(t.Diff, '`')+1))
		head := fmt.Sprintf("<details><summary><code>%s</code> (%s, +%d −%d)</summary>\n\n%sdiff\n", mdText(t.Name), t.State, adds, dels, fence)
		tail := fence + "\n</details>\n\n"
		const noteRoom, leftRoom = 160, 100 // this diff's truncation note; the "left out" line
		avail := d.limit - d.b.Len() - len(head) - len(tail) - noteRoom - leftRoom
		diff := t.Diff
		if !strings.HasSuffix(diff, "\n") {
			diff += "\n"
		}
		if avail < 200 && len(diff) > avail {
			left++
			d.omitted = true
			continue
		}
		note := ""
		if len(diff) > avail {
			cut := strings.LastIndexByte(diff[:avail], '\n') + 1
			total := strings.Count(diff, "\n")
			shown := strings.Count(diff[:cut], "\n")
			diff = diff[:cut]
			note = fmt.Sprintf("\n_Diff truncated to stay under the comment limit: %d of %d lines shown. `gitgate render %s` shows it all._\n", shown, total, mdCode(t.Name))
			d.omitted = true
		}
		d.b.WriteString(head)
		d.b.WriteString(diff)
		d.b.WriteString(fence + "\n" + note + "</details>\n\n")
	}
	if left > 0 {
		d.add(fmt.Sprintf("_Rendered diffs of %d more %s left out to stay under the comment limit._\n\n", left, plural(left, "target", "targets")), 0)
	}
}

func diffStat(diff string) (adds, dels int) {
	for _, l := range strings.Split(diff, "\n") {
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
		case strings.HasPrefix(l, "+"):
			adds++
		case strings.HasPrefix(l, "-"):
			dels++
		}
	}
	return adds, dels
}

func longestRun(s string, c byte) int {
	best, n := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}

func verdictCell(blocking bool) string {
	if blocking {
		return "❌ blocked"
	}
	return "✅ passes"
}

// blockingFirst orders findings blocking first, then warnings, each in report order.
func blockingFirst(rs []policy.Result) {
	slices.SortStableFunc(rs, func(a, b policy.Result) int {
		rank := func(r policy.Result) int {
			if r.Blocking() {
				return 0
			}
			return 1
		}
		return cmp.Compare(rank(a), rank(b))
	})
}

func findingItems(rs []policy.Result, opts MarkdownOptions) []string {
	items := make([]string, 0, len(rs))
	for _, r := range rs {
		items = append(items, findingItem(r, opts))
	}
	return items
}

// findingItem is one finding as a list item: icon, action, resource, policy/rule,
// file:line link, target, message, field and remediation.
func findingItem(r policy.Result, opts MarkdownOptions) string {
	icon := "⚠️"
	switch {
	case r.Baseline == policy.BaselineFixed:
		icon = "✅"
	case r.Status == policy.StatusError:
		icon = "❗"
	case r.Blocking():
		icon = "❌"
	}
	var b strings.Builder
	rule := "`" + mdCode(ruleID(r)) + "`"
	if u, err := url.Parse(r.HelpURL); err == nil && u.IsAbs() && (u.Scheme == "https" || u.Scheme == "http") {
		rule = "[" + rule + "](" + strings.NewReplacer("(", "%28", ")", "%29", " ", "%20").Replace(r.HelpURL) + ")"
	}
	fmt.Fprintf(&b, "- %s **%s** `%s` %s", icon, cmp.Or(string(r.Action), "Audit"), mdCode(r.ResourceID()), rule)
	if l := mdLink(r.Origin, opts); l != "" {
		b.WriteString(" at " + l)
	}
	if r.Origin.Target != "" {
		fmt.Fprintf(&b, " in `%s`", mdCode(r.Origin.Target))
	}
	b.WriteString(": ")
	if r.Status == policy.StatusError {
		b.WriteString("could not evaluate: ")
	}
	b.WriteString(mdText(policy.CleanMessage(r.Message)))
	if r.Path != "" {
		fmt.Fprintf(&b, " (at `%s`", mdCode(r.Path))
		for k, v := range r.ValuesFrom {
			sep := "; value from "
			if k > 0 {
				sep = " and "
			}
			b.WriteString(sep + mdLink(v.Origin, opts))
			if v.Key != "" {
				fmt.Fprintf(&b, " `%s`", mdCode(v.Key))
			}
		}
		b.WriteString(")")
	}
	if r.Remediation != "" && r.Baseline != policy.BaselineFixed {
		b.WriteString(" — _" + mdText(r.Remediation) + "_")
	}
	b.WriteString("\n")
	return b.String()
}

// mdLink is [file:line](base/file#Lline), or "" without a file.
func mdLink(o policy.Origin, opts MarkdownOptions) string {
	if o.File == "" {
		return ""
	}
	href := opts.LinkBase + (&url.URL{Path: strings.TrimPrefix(o.File, "/")}).EscapedPath()
	text := o.File
	if o.Line > 0 {
		href += "#L" + strconv.Itoa(o.Line)
		text += ":" + strconv.Itoa(o.Line)
	}
	if policy.IsRemoteFile(o.File) { // a fetched chart's or another repository's file: no page here
		return "`" + mdCode(text) + "`"
	}
	return "[" + mdText(text) + "](" + strings.NewReplacer("(", "%28", ")", "%29", " ", "%20").Replace(href) + ")"
}

var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "|", `\|`,
	"<", "&lt;", ">", "&gt;", "&", "&amp;", "\r", " ", "\n", " ",
)

// mdText escapes text for inline markdown: no emphasis, links, HTML or table breaks.
// With mdCode (inside a code span) it is the one markdown escaping of every format:
// check's markdown and the drift report's.
func mdText(s string) string { return mdEscaper.Replace(s) }

// mdCode makes s safe inside a `code span` in a table or list item.
func mdCode(s string) string {
	return strings.NewReplacer("`", "'", "|", `\|`, "\n", " ").Replace(s)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// policyCount is the counts row of a policy, created on first use.
func policyCount(by map[string]*[3]int, policy string) *[3]int {
	if by[policy] == nil {
		by[policy] = &[3]int{}
	}
	return by[policy]
}

// policyTable adds a table of three counts by policy, most of the first count first,
// then of the second, then by name.
func policyTable(d *mdDoc, header string, by map[string]*[3]int) {
	if len(by) == 0 {
		return
	}
	policies := make([]string, 0, len(by))
	for p := range by {
		policies = append(policies, p)
	}
	slices.SortFunc(policies, func(a, b string) int {
		return cmp.Or(cmp.Compare(by[b][0], by[a][0]), cmp.Compare(by[b][1], by[a][1]), cmp.Compare(a, b))
	})
	rows := make([]string, 0, len(policies))
	for _, p := range policies {
		x := by[p]
		rows = append(rows, fmt.Sprintf("| `%s` | %d | %d | %d |\n", mdCode(p), x[0], x[1], x[2]))
	}
	d.section(header, rows, "\n")
}
