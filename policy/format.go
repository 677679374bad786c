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
	"text": WriterFunc(WriteText),
	"json": WriterFunc(WriteJSON),
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

// WriteText prints one line per finding, blocking ones first within each file order,
// then duplicates, then a one-line summary.
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
		if _, err := fmt.Fprintln(w, FindingLine(r)); err != nil {
			return err
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
	return b.String()
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
