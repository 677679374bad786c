package report

import (
	"github.com/gitgate/gitgate/reconcile"

	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"
)

// writeSyncText prints one line per app and the objects that changed or need attention.
func writeSyncText(w io.Writer, r *reconcile.SyncResult) error {
	var b strings.Builder
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "error: %s\n", e)
	}
	for _, a := range r.Apps {
		if a.Cluster != "" {
			fmt.Fprintf(&b, "[%s] ", a.Cluster)
		}
		fmt.Fprintf(&b, "%s: %s at %s (%d created, %d configured, %d unchanged, %d pruned, %d writes, %s)\n",
			a.App, a.Phase, reconcile.ShowRevision(a.Revision), a.Count(reconcile.Created), a.Count(reconcile.Configured), a.Count(reconcile.Unchanged), a.Count(reconcile.Pruned), a.Writes, a.Duration.Round(time.Millisecond))
		if a.Error != "" {
			fmt.Fprintf(&b, "  error: %s\n", a.Error)
		}
		for _, f := range a.Findings {
			level := "warning"
			if f.Blocking() {
				level = "blocked"
			}
			fmt.Fprintf(&b, "  %s: %s: %s: %s/%s: %s\n", level, f.Origin, f.ResourceID(), f.Policy, f.Rule, f.Message)
		}
		for _, o := range a.Objects {
			switch o.Action {
			case reconcile.Unchanged:
				continue
			}
			fmt.Fprintf(&b, "  %s %s", o.Ref, o.Action)
			if o.Message != "" {
				fmt.Fprintf(&b, ": %s", o.Message)
			}
			b.WriteString("\n")
			for _, d := range o.Diffs {
				fmt.Fprintf(&b, "    %s\n", d)
			}
		}
		for _, n := range a.Notices {
			fmt.Fprintf(&b, "  notice: %s\n", n)
		}
	}
	for _, c := range r.Clusters {
		fmt.Fprintln(&b, c)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeSyncJSON writes the sync result as indented JSON.
func writeSyncJSON(w io.Writer, r *reconcile.SyncResult) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeReportJSON writes the report as indented JSON.
func writeReportJSON(w io.Writer, r *reconcile.DriftReport) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func stateWord(o reconcile.ObjectDrift) string {
	s := string(o.State)
	if o.DriftViolates {
		s += ", drift violates policy"
	} else if o.Blocking() {
		s += ", violates policy"
	}
	return s
}

// writeReportText prints a summary line per app, then what differs and what violates.
func writeReportText(w io.Writer, r *reconcile.DriftReport) error {
	var b strings.Builder
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "error: %s\n", e)
	}
	for _, a := range r.Apps {
		c := a.Counts()
		if a.Cluster != "" {
			fmt.Fprintf(&b, "[%s] ", a.Cluster)
		}
		fmt.Fprintf(&b, "%s: %d in sync, %d missing, %d modified, %d extra, %d violating (%d by drift)\n",
			a.App, c.InSync, c.Missing, c.Modified, c.Extra, c.Violating, c.DriftViolating)
		if a.Error != "" {
			fmt.Fprintf(&b, "  error: %s\n", a.Error)
		}
		for _, o := range a.Objects {
			if o.State == reconcile.InSync && len(o.Violations) == 0 && o.Error == "" {
				continue
			}
			fmt.Fprintf(&b, "  %s: %s\n", o.Ref, stateWord(o))
			for _, d := range o.Diffs {
				fmt.Fprintf(&b, "    %s\n", d)
			}
			for _, v := range o.Violations {
				fmt.Fprintf(&b, "    %s %s/%s: %s\n", v.Status, v.Policy, v.Rule, v.Message)
			}
			if o.Error != "" {
				fmt.Fprintf(&b, "    error: %s\n", o.Error)
			}
		}
	}
	for _, c := range r.Clusters {
		fmt.Fprintln(&b, c.ReportLine())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeReportMarkdown writes a summary table and a section per app with drift or findings.
func writeReportMarkdown(w io.Writer, r *reconcile.DriftReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Drift and policy report\n\nRevision `%s`, generated %s.\n\n", reconcile.ShowRevision(r.Revision), r.Generated.Format(time.RFC3339))
	b.WriteString("| app | in sync | missing | modified | extra | violating | drift violating |\n|---|---|---|---|---|---|---|\n")
	for _, a := range r.Apps {
		c := a.Counts()
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d |\n", mdText(a.App), c.InSync, c.Missing, c.Modified, c.Extra, c.Violating, c.DriftViolating)
	}
	for _, a := range r.Apps {
		c := a.Counts()
		if !c.Drifted() && c.Violating == 0 && a.Error == "" && c.Errors == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n## %s\n\n", mdText(a.App))
		if a.Error != "" {
			fmt.Fprintf(&b, "Error: %s\n\n", mdText(a.Error))
		}
		b.WriteString("| object | state | field / rule | desired | live |\n|---|---|---|---|---|\n")
		for _, o := range a.Objects {
			if o.State == reconcile.InSync && len(o.Violations) == 0 && o.Error == "" {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | | | |\n", mdText(o.Ref.String()), mdText(stateWord(o)))
			for _, d := range o.Diffs {
				fmt.Fprintf(&b, "| | | `%s` | %s | %s |\n", mdCode(d.Path), mdText(jsonShort(d.Desired, d.DesiredSet)), mdText(jsonShort(d.Live, d.LiveSet)))
			}
			for _, v := range o.Violations {
				fmt.Fprintf(&b, "| | %s | %s/%s | | %s |\n", v.Status, mdText(v.Policy), mdText(v.Rule), mdText(v.Message))
			}
			if o.Error != "" {
				fmt.Fprintf(&b, "| | error | | | %s |\n", mdText(o.Error))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func jsonShort(v any, set bool) string {
	if !set {
		return "(absent)"
	}
	var j strings.Builder
	enc := json.NewEncoder(&j)
	enc.SetEscapeHTML(false) // a masked value reads <masked 1a2b3c4d>; the formats escape for themselves
	_ = enc.Encode(v)
	s := strings.TrimSuffix(j.String(), "\n")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

var htmlPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"short": reconcile.ShowRevision,
	"json":  jsonShort,
	"pct": func(n, total int) string {
		if total == 0 {
			return "0"
		}
		return fmt.Sprintf("%.2f", float64(n)*100/float64(total))
	},
	"word":  stateWord,
	"lower": func(s reconcile.State) string { return strings.ToLower(string(s)) },
	"show": func(o reconcile.ObjectDrift) bool {
		return o.State != reconcile.InSync || len(o.Violations) > 0 || o.Error != ""
	},
	"anyShown": func(a reconcile.AppDrift) bool {
		for _, o := range a.Objects {
			if o.State != reconcile.InSync || len(o.Violations) > 0 || o.Error != "" {
				return true
			}
		}
		return false
	},
	"totals": func(r *reconcile.DriftReport) []int {
		a, b, c, d := totals(r)
		return []int{a, b, c, d}
	},
	"sum3": func(a, b, c int) int { return a + b + c },
	// inSyncOK: in sync and not violating; driftOK: drifted and not violating.
	"inSyncOK": func(a reconcile.AppDrift) int {
		n := 0
		for _, o := range a.Objects {
			if o.State == reconcile.InSync && !o.Blocking() {
				n++
			}
		}
		return n
	},
	"driftOK": func(a reconcile.AppDrift) int {
		n := 0
		for _, o := range a.Objects {
			if o.State != reconcile.InSync && !o.Blocking() {
				n++
			}
		}
		return n
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gitgate drift and policy report</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#1d2430;background:#fff}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:2rem 0 .5rem;border-bottom:1px solid #dde2ea;padding-bottom:.25rem}
.meta{color:#5b6576;margin-bottom:1.5rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #eef1f5;vertical-align:top}
th{background:#f5f7fa;font-weight:600}
.bar{display:flex;height:14px;width:260px;border-radius:3px;overflow:hidden;background:#eef1f5}
.bar span{display:block;height:100%}
.insync{background:#2e9d5b}.drifted{background:#e0a526}.violating{background:#d64545}
.legend span{display:inline-block;width:10px;height:10px;margin:0 .3rem 0 1rem;border-radius:2px}
.state{font-weight:600}.state.missing,.state.modified,.state.extra{color:#a86f00}.bad{color:#c22f2f;font-weight:600}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f5f7fa;padding:0 .2rem;border-radius:2px}
.state.bad{color:#c22f2f}.ok{color:#2e9d5b}.num{text-align:right;font-variant-numeric:tabular-nums}
</style></head><body>
<h1>Drift and policy report</h1>
<div class="meta">Revision <code>{{short .Revision}}</code> &middot; generated {{.Generated.Format "2006-01-02 15:04:05 UTC"}} &middot; {{len .Apps}} apps</div>
{{$t := .}}<p class="totals">{{with totals $t}}<b>{{index . 0}}</b> in sync &middot; <b>{{index . 1}}</b> drifted &middot; <b class="bad">{{index . 2}}</b> violating policy &middot; <b>{{index . 3}}</b> could not be compared{{end}}</p>
{{range .Errors}}<p class="bad">error: {{.}}</p>{{end}}
<div class="legend"><span class="insync"></span>in sync<span class="drifted"></span>drifted<span class="violating"></span>violating policy</div>
<table><thead><tr><th>app</th><th>objects</th><th class="num">in sync</th><th class="num">drifted</th><th class="num">violating</th><th class="num">drift violating</th></tr></thead><tbody>
{{range .Apps}}{{$c := .Counts}}{{$total := len .Objects}}{{$drift := sum3 $c.Missing $c.Modified $c.Extra}}
<tr><td><a href="#app-{{.App}}">{{.App}}</a>{{if .Error}} <span class="bad">error</span>{{end}}</td>
<td><div class="bar" title="{{$c.InSync}} in sync, {{$drift}} drifted, {{$c.Violating}} violating">
<span class="insync" style="width:{{pct (inSyncOK .) $total}}%"></span><span class="drifted" style="width:{{pct (driftOK .) $total}}%"></span><span class="violating" style="width:{{pct $c.Violating $total}}%"></span></div></td>
<td class="num">{{$c.InSync}}</td><td class="num">{{$drift}}</td><td class="num">{{$c.Violating}}</td><td class="num">{{$c.DriftViolating}}</td></tr>{{end}}
</tbody></table>
{{range .Apps}}<h2 id="app-{{.App}}">{{.App}}</h2>
{{if .Error}}<p class="bad">error: {{.Error}}</p>{{end}}
{{if .LastSync}}<p class="meta">last sync: {{.LastSync.Phase}} at <code>{{short .LastSync.Revision}}</code>{{if .LastSync.LastError}} &middot; {{.LastSync.LastError}}{{end}}</p>{{end}}
{{if anyShown .}}<table><thead><tr><th>object</th><th>state</th><th>field / rule</th><th>desired</th><th>live</th></tr></thead><tbody>
{{range .Objects}}{{if show .}}
<tr><td><code>{{.Ref}}</code></td><td class="state {{lower .State}}{{if .DriftViolates}} bad{{end}}">{{word .}}</td><td></td><td></td><td></td></tr>
{{range .Diffs}}<tr><td></td><td></td><td><code>{{.Path}}</code>{{if .Managers}} <span class="meta">({{range $i, $m := .Managers}}{{if $i}}, {{end}}{{$m}}{{end}})</span>{{end}}</td><td><code>{{json .Desired .DesiredSet}}</code></td><td><code>{{json .Live .LiveSet}}</code></td></tr>{{end}}
{{range .Violations}}<tr><td></td><td class="{{if .Blocking}}bad{{end}}">{{.Status}}</td><td>{{.Policy}}/{{.Rule}}</td><td colspan="2">{{.Message}}</td></tr>{{end}}
{{if .Error}}<tr><td></td><td class="bad">error</td><td colspan="3">{{.Error}}</td></tr>{{end}}
{{end}}{{end}}
</tbody></table>{{end}}
{{if eq (len .Objects) (inSyncOK .)}}<p class="ok">Every object is in sync and passes policy.</p>{{end}}
{{end}}
</body></html>
`))

// writeReportHTML writes a self-contained page: a bar per app (in sync, drifted,
// violating), then each app's details.
func writeReportHTML(w io.Writer, r *reconcile.DriftReport) error {
	view := *r
	view.Apps = append([]reconcile.AppDrift(nil), r.Apps...)
	rank := func(a reconcile.AppDrift) int {
		c := a.Counts()
		switch {
		case a.Error != "" || c.Errors > 0:
			return 0
		case c.DriftViolating > 0:
			return 1
		case c.Violating > 0:
			return 2
		case c.Drifted():
			return 3
		}
		return 4
	}
	sort.SliceStable(view.Apps, func(i, j int) bool { return rank(view.Apps[i]) < rank(view.Apps[j]) })
	return htmlPage.Execute(w, &view)
}

// totals counts apps: in sync and clean, drifted, violating (live Enforce failures), failed.
func totals(r *reconcile.DriftReport) (clean, drifted, violating, failed int) {
	for _, a := range r.Apps {
		c := a.Counts()
		switch {
		case a.Error != "" || c.Errors > 0:
			failed++
		case c.Violating > 0:
			violating++
		case c.Drifted():
			drifted++
		default:
			clean++
		}
	}
	return
}
