package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// Writer writes a report in one format.
type Writer interface {
	Write(w io.Writer, rep *Report) error
}

// WriterFunc adapts a function to Writer.
type WriterFunc func(w io.Writer, rep *Report) error

// Write calls f.
func (f WriterFunc) Write(w io.Writer, rep *Report) error { return f(w, rep) }

var _ Writer = WriterFunc(nil)

// Formats are the report formats by name, for -o.
var Formats = map[string]Writer{
	"text":        WriterFunc(WriteText),
	"json":        WriterFunc(WriteJSON),
	"sarif":       WriterFunc(WriteSARIF),
	"junit":       WriterFunc(WriteJUnit),
	"codequality": WriterFunc(WriteCodeQuality),
	"markdown":    WriterFunc(WriteMarkdown),
}

// FormatNames lists the report formats, sorted.
func FormatNames() []string {
	names := make([]string, 0, len(Formats))
	for n := range Formats {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var (
	kyvernoPrefix = regexp.MustCompile(`^(?:validation (?:error|failure): )+`)
	kyvernoSuffix = regexp.MustCompile(`\.?\s*rule [^ ]+ failed at path /\S*`)
)

// CleanMessage drops Kyverno's "validation error:" prefix and "rule X failed at path"
// tail: the text output says both in its own columns.
func CleanMessage(msg string) string {
	msg = kyvernoPrefix.ReplaceAllString(msg, "")
	msg = kyvernoSuffix.ReplaceAllString(msg, "")
	return strings.TrimSpace(msg)
}

// FindingLine formats one finding the way the Go toolchain prints errors:
// file:line:col: Kind/namespace/name: policy/rule: message (at field).
func FindingLine(r Result) string {
	var b strings.Builder
	b.WriteString(r.Origin.String())
	b.WriteString(": ")
	b.WriteString(r.ResourceID())
	b.WriteString(": ")
	b.WriteString(r.Policy)
	if r.Rule != "" && r.Rule != r.Policy {
		b.WriteString("/" + r.Rule)
	}
	b.WriteString(": ")
	switch {
	case r.Status == StatusError:
		b.WriteString("error: ")
	case !r.Blocking():
		b.WriteString("warning: ")
	}
	b.WriteString(CleanMessage(r.Message))
	if r.Path != "" {
		b.WriteString(" (at " + r.Path + ")")
	}
	return b.String()
}

// WriteText prints one line per finding, grouped by render target, then duplicates,
// then a one-line summary. In merge-request mode (rep.Changes set) every finding is
// tagged [new] or [unchanged], the fixed findings and the affected targets follow, and
// the summary counts new, fixed and unchanged findings.
func WriteText(w io.Writer, rep *Report) error {
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
		if _, err := fmt.Fprintln(w, baselineTag(r)+FindingLine(r)); err != nil {
			return err
		}
	}
	if c := rep.Changes; c != nil {
		if len(c.Fixed) > 0 {
			if _, err := fmt.Fprintln(w, "# fixed"); err != nil {
				return err
			}
			for _, r := range c.Fixed {
				if _, err := fmt.Fprintln(w, "[fixed] "+FindingLine(r)); err != nil {
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
	_, err := fmt.Fprintln(w, SummaryLine(rep))
	return err
}

// SummaryLine is the one-line summary of a report.
func SummaryLine(rep *Report) string {
	s := rep.Summary
	var b strings.Builder
	if s.Targets > 0 {
		fmt.Fprintf(&b, "%d resources from %d targets, %d policies: ", s.Resources, s.Targets, s.Policies)
	} else {
		fmt.Fprintf(&b, "%d resources in %d files, %d policies: ", s.Resources, s.Files, s.Policies)
	}
	fmt.Fprintf(&b, "%d blocking, %d warnings, %d passed", s.Blocking, s.Fail+s.Warn+s.Error-s.Blocking, s.Pass)
	if s.Error > 0 {
		fmt.Fprintf(&b, ", %d rule errors", s.Error)
	}
	if s.Skip > 0 {
		fmt.Fprintf(&b, ", %d skipped", s.Skip)
	}
	if n := len(rep.Errors); n > 0 {
		fmt.Fprintf(&b, "; %d inputs could not be checked", n)
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
		b.WriteString(ChangesLine(c))
	}
	return b.String()
}

// ChangesLine summarises a merge-request comparison: against main (0123abc): 2 new
// (1 blocking), 1 fixed, 5 unchanged in 3 affected targets.
func ChangesLine(c *Changes) string {
	var b strings.Builder
	b.WriteString("against ")
	b.WriteString(c.Base)
	if c.BaseCommit != "" && c.BaseCommit != c.Base {
		fmt.Fprintf(&b, " (%s)", shortCommit(c.BaseCommit))
	}
	fmt.Fprintf(&b, ": %d new (%d blocking), %d fixed, %d unchanged in %d affected targets", c.New, c.NewBlocking, c.FixedCount, c.Unchanged, len(c.Targets))
	if c.PoliciesChanged {
		b.WriteString(" (policies changed: every target re-evaluated)")
	}
	return b.String()
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// baselineTag is "[new] " or "[unchanged] " for a classified finding, else "".
func baselineTag(r Result) string {
	if r.Baseline == "" {
		return ""
	}
	return "[" + string(r.Baseline) + "] "
}

// targetVerdict says how an affected target changed and what the change does to its
// verdict: "modified, newly failing".
func targetVerdict(t TargetChange) string {
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

// JSONVersion is the apiVersion of the JSON report; see docs/report.md.
const JSONVersion = "gitgate.dev/v1alpha1"

type jsonReport struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Summary    Summary        `json:"summary"`
	Results    []Result       `json:"results"`
	Errors     []jsonError    `json:"errors"`
	Duplicates []Duplicate    `json:"duplicates"`
	Unchecked  map[string]int `json:"notSchemaChecked"`
	Notices    []string       `json:"notices"`
	Changes    *Changes       `json:"changes,omitempty"`
}

type jsonError struct {
	Origin  Origin `json:"origin"`
	Message string `json:"message"`
}

// WriteJSON writes the versioned JSON report (kind CheckReport).
func WriteJSON(w io.Writer, rep *Report) error {
	out := jsonReport{
		APIVersion: JSONVersion,
		Kind:       "CheckReport",
		Summary:    rep.Summary,
		Results:    rep.Results,
		Errors:     []jsonError{},
		Duplicates: rep.Duplicates,
		Unchecked:  rep.Unchecked,
		Notices:    rep.Notices,
	}
	if out.Results == nil {
		out.Results = []Result{}
	}
	if out.Duplicates == nil {
		out.Duplicates = []Duplicate{}
	}
	if out.Notices == nil {
		out.Notices = []string{}
	}
	if c := rep.Changes; c != nil {
		cc := *c
		if cc.Files == nil {
			cc.Files = []string{}
		}
		if cc.Targets == nil {
			cc.Targets = []TargetChange{}
		}
		if cc.Fixed == nil {
			cc.Fixed = []Result{}
		}
		out.Changes = &cc
	}
	for _, err := range rep.Errors {
		je := jsonError{Message: err.Error()}
		var ie *InputError
		if errors.As(err, &ie) {
			je = jsonError{Origin: ie.Origin, Message: ie.Err.Error()}
		}
		out.Errors = append(out.Errors, je)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
