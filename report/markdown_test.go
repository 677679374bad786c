package report

import (
	"github.com/gitgate/gitgate/policy"

	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// bigMRReport has n new findings and one target per diff, each diff lines long.
func bigMRReport(findings, targets, lines int) *policy.Report {
	rep := mrReport(0)
	for i := range findings {
		r := privilegedFinding(100 + i)
		r.Name = fmt.Sprintf("web-%04d", i)
		r.Baseline = policy.BaselineNew
		rep.Results = append(rep.Results, r)
	}
	for i := range targets {
		var b strings.Builder
		b.WriteString("--- base\n+++ head\n@@ -1 +1 @@\n")
		for j := range lines {
			fmt.Fprintf(&b, "+  key-%d: value with some ```backticks``` and <html> %d\n", j, i)
		}
		rep.Changes.Targets = append(rep.Changes.Targets, policy.TargetChange{Name: fmt.Sprintf("app-%03d/production", i), State: policy.TargetModified, Diff: b.String()})
	}
	rep.Changes.CountBaselines(rep.Results)
	return rep
}

func TestMarkdown(t *testing.T) {
	tests := []struct {
		name     string
		rep      *policy.Report
		opts     MarkdownOptions
		inOrder  []string // must appear in this order
		absent   []string
		truncate bool
	}{
		{
			name: "merge request: verdict, tables, new before fixed before unchanged before diffs",
			rep:  mrReport(0),
			opts: defaultMarkdownOptions(),
			inOrder: []string{
				markdownMarker,
				"### ❌ gitgate: 1 new blocking violation",
				"Compared with `main` (`0123456789ab`): 3 targets affected by 2 changed files, 4 targets checked: **1 new** (1 blocking), **1 fixed**, 2 unchanged.",
				"| policy | new | fixed | unchanged |",
				"| `disallow-privilege-escalation` | 1 | 0 | 0 |",
				"| `web/production` | modified | ✅ passes | ❌ blocked (newly failing) |",
				"#### New (1)",
				"- ❌ **Enforce** `Deployment/production/web` [`disallow-privilege-escalation/autogen-privilege-escalation`](https://kyverno.io/policies/pod-security/restricted/disallow-privilege-escalation/) at [apps/web/base/deployment.yaml:20](apps/web/base/deployment.yaml#L20) in `web/production`: allowPrivilegeEscalation must be false \\| &lt;always&gt; — _set allowPrivilegeEscalation: false_",
				"#### Fixed (1)",
				"- ✅ **Enforce** `Deployment/staging/web` `disallow-latest-tag/autogen-validate-image-tag` at [apps/web/base/deployment.yaml:18](apps/web/base/deployment.yaml#L18)",
				"<details><summary>Unchanged (2): already on main</summary>",
				"<details><summary>Waived or excepted (2)</summary>",
				"#### Rendered changes",
				"<details><summary><code>api/production</code> (modified, +2 −1)</summary>\n\n```diff\n--- base/api/production",
				"+        securityContext: {allowPrivilegeEscalation: true}\n```\n</details>",
				"#### Could not check (1)",
			},
			absent: []string{"shortened"},
		},
		{
			name: "link base prefixes file links",
			rep:  mrReport(0),
			opts: MarkdownOptions{LinkBase: "https://github.com/org/repo/blob/0123abc/"},
			inOrder: []string{
				"[apps/web/base/deployment.yaml:20](https://github.com/org/repo/blob/0123abc/apps/web/base/deployment.yaml#L20)",
			},
		},
		{
			name: "no new violations",
			rep: func() *policy.Report {
				rep := mrReport(0)
				rep.Results = rep.Results[:2] // the unchanged ones
				rep.Changes.CountBaselines(rep.Results)
				return rep
			}(),
			opts:    defaultMarkdownOptions(),
			inOrder: []string{"### ✅ gitgate: no new violations", "#### Fixed (1)"},
			absent:  []string{"#### New"},
		},
		{
			name: "plain report: summary and findings, blocking first",
			rep:  plainReport(0),
			opts: defaultMarkdownOptions(),
			inOrder: []string{
				"### ❌ gitgate: 3 blocking violations",
				"12 resources from 4 targets, 11 policies: 3 blocking",
				"| policy | blocking | warnings | rule errors |",
				"#### Findings (4)",
				"- ❗ **Enforce** `Deployment/production/api` `quota/max-deployments`",
				"- ❌ **Enforce** `Deployment/production/web`",
				"- ❌ **Enforce** `Deployment/staging/web`",
				"- ⚠️ **Audit** `Deployment/production/api` `require-probes/autogen-liveness`",
				"<details><summary>Waived or excepted (2)</summary>",
			},
			absent: []string{"Compared with", "Rendered changes", "[new]"},
		},
		{
			name: "GitHub limit: huge diffs truncated with a note, new findings kept",
			rep:  bigMRReport(50, 40, 400),
			opts: defaultMarkdownOptions(),
			inOrder: []string{
				"#### New (51)",
				"`Deployment/production/web-0049`",
				"#### Rendered changes",
				"````diff", // a fence longer than the diff's own backticks
				"_Diff truncated to stay under the comment limit:",
				"left out to stay under the comment limit._",
				"This comment was shortened to stay under 65536 characters",
			},
			truncate: true,
		},
		{
			name: "GitLab limit: the same report fits whole",
			rep:  bigMRReport(50, 10, 400),
			opts: MarkdownOptions{MaxChars: GitLabCommentLimit},
			inOrder: []string{
				"`app-009/production`",
				"+  key-399: value with some ```backticks``` and <html> 9",
			},
			absent: []string{"truncated", "shortened"},
		},
		{
			name: "tiny limit: lists cut too, still under it",
			rep:  bigMRReport(500, 3, 50),
			opts: MarkdownOptions{MaxChars: 8000},
			inOrder: []string{
				"#### New (501)",
				"more, left out to stay under the comment limit_",
				"This comment was shortened to stay under 8000 characters",
			},
			truncate: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := markdown(tt.rep, tt.opts)
			limit := tt.opts.MaxChars
			if limit == 0 {
				limit = GitHubCommentLimit
			}
			if len(got) > limit {
				t.Fatalf("%d bytes, over the %d limit", len(got), limit)
			}
			if !utf8.ValidString(got) {
				t.Fatal("not valid UTF-8")
			}
			if tt.truncate && len(got) < limit/2 {
				t.Errorf("truncated to %d bytes, far under the %d limit: truncation wastes room", len(got), limit)
			}
			pos := 0
			for _, w := range tt.inOrder {
				i := strings.Index(got[pos:], w)
				if i < 0 {
					t.Fatalf("missing, or out of order: %q\n--- got:\n%s", w, got)
				}
				pos += i + len(w)
			}
			for _, w := range tt.absent {
				if strings.Contains(got, w) {
					t.Errorf("unexpected %q", w)
				}
			}
			if strings.Count(got, "<details>") != strings.Count(got, "</details>") {
				t.Errorf("unbalanced <details>: %d open, %d closed", strings.Count(got, "<details>"), strings.Count(got, "</details>"))
			}
		})
	}
}

func TestMarkdownEscapes(t *testing.T) {
	r := privilegedFinding(3)
	r.Message = "image `x` is *bad* [click](http://evil) <script>alert(1)</script> | pipe\nnext line"
	r.Remediation = ""
	got := markdown(&policy.Report{Results: []policy.Result{r}, Summary: policy.Summary{Blocking: 1, Fail: 1}}, defaultMarkdownOptions())
	for _, bad := range []string{"<script>", "[click](", "*bad*", "`x`", "\nnext line"} {
		if strings.Contains(got, bad) {
			t.Errorf("message not escaped: %q in\n%s", bad, got)
		}
	}
	if !strings.Contains(got, `image \`+"`x\\`"+` is \*bad\* \[click\](http://evil) &lt;script&gt;`) {
		t.Errorf("escaped message not found in\n%s", got)
	}
}

// defaultMarkdownOptions fit a GitHub comment, with links relative to the repository.
func defaultMarkdownOptions() MarkdownOptions {
	return MarkdownOptions{MaxChars: GitHubCommentLimit}
}

// TestMarkdownRemoteSources: a merge request that moves a chart's version, adds and
// removes remote sources says so per target; a target whose sources did not move says
// nothing.
func TestMarkdownRemoteSources(t *testing.T) {
	chart := func(name, v string) policy.RemoteSource {
		return policy.RemoteSource{Kind: "chart", URL: "https://charts.example.com", Name: name, Requested: "1.*", Resolved: v}
	}
	ch := &policy.Changes{Targets: []policy.TargetChange{
		{Name: "web", State: policy.TargetModified, BaseRemotes: []policy.RemoteSource{chart("web", "1.2.3"), chart("old", "0.1.0")}, HeadRemotes: []policy.RemoteSource{chart("web", "1.3.0"), chart("new", "2.0.0")}},
		{Name: "api", State: policy.TargetModified},
	}}
	got := markdown(&policy.Report{Changes: ch}, defaultMarkdownOptions())
	for _, want := range []string{
		"#### Remote sources changed",
		"- `web`: chart web from https://charts.example.com 1.2.3 → 1.3.0\n",
		"- `web`: chart new from https://charts.example.com 2.0.0 (added)\n",
		"- `web`: chart old from https://charts.example.com 0.1.0 (removed)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "`api`:") {
		t.Errorf("a target whose sources did not move is listed:\n%s", got)
	}
}
