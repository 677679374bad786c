// Package report writes gitgate's reports in every output format, for every command
// that has an -o flag: check's policy.Report (text, json, sarif, junit, codequality,
// markdown), report's reconcile.DriftReport (text, json, markdown, html) and sync's
// reconcile.SyncResult (text, json). kubeconform's pkg/output is the model: one Writer
// interface, one constructor (Formats.New), the format names from the same place, no
// registry anyone can change. -o FORMAT[=FILE] is parsed, validated and written
// (atomically) by one piece of code, Formats.Parse and Write, parameterised by the
// command's formats.
//
// It is a top-level package rather than policy/output because it formats the
// reconciler's reports too: a package under policy/ importing reconcile would turn the
// arrows of ARCHITECTURE.md around. It imports policy and reconcile; neither imports it.
package report

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/reconcile"
)

// Writer writes a report of type R in one format.
type Writer[R any] interface {
	Write(w io.Writer, rep R) error
}

// writerFunc adapts a function to Writer.
type writerFunc[R any] func(w io.Writer, rep R) error

func (f writerFunc[R]) Write(w io.Writer, rep R) error { return f(w, rep) }

// Options configure the formats that take options; the others ignore them.
type Options struct {
	// Markdown configures check's markdown format; the zero value is a GitHub comment
	// with links relative to the repository.
	Markdown MarkdownOptions
}

// Formats are one command's output formats. The values are fixed when the package
// loads: CheckFormats, DriftFormats and SyncFormats.
type Formats[R any] struct {
	names []string // sorted
	make  map[string]func(Options) Writer[R]
}

func newFormats[R any](m map[string]func(Options) Writer[R]) *Formats[R] {
	f := &Formats[R]{make: m}
	for n := range m {
		f.names = append(f.names, n)
	}
	slices.Sort(f.names)
	return f
}

// plain is a format without options.
func plain[R any](write func(io.Writer, R) error) func(Options) Writer[R] {
	return func(Options) Writer[R] { return writerFunc[R](write) }
}

var (
	checkFormats = newFormats(map[string]func(Options) Writer[*policy.Report]{
		"text":        plain(writeText),
		"json":        plain(writeJSON),
		"sarif":       plain(writeSARIF),
		"junit":       plain(writeJUnit),
		"codequality": plain(writeCodeQuality),
		"markdown": func(o Options) Writer[*policy.Report] {
			return writerFunc[*policy.Report](func(w io.Writer, rep *policy.Report) error {
				_, err := io.WriteString(w, markdown(rep, o.Markdown))
				return err
			})
		},
	})
	driftFormats = newFormats(map[string]func(Options) Writer[*reconcile.DriftReport]{
		"text":     plain(writeReportText),
		"json":     plain(writeReportJSON),
		"markdown": plain(writeReportMarkdown),
		"html":     plain(writeReportHTML),
	})
	syncFormats = newFormats(map[string]func(Options) Writer[*reconcile.SyncResult]{
		"text": plain(writeSyncText),
		"json": plain(writeSyncJSON),
	})
)

// CheckFormats are gitgate check's formats.
func CheckFormats() *Formats[*policy.Report] { return checkFormats }

// DriftFormats are gitgate report's formats.
func DriftFormats() *Formats[*reconcile.DriftReport] { return driftFormats }

// SyncFormats are gitgate sync's formats.
func SyncFormats() *Formats[*reconcile.SyncResult] { return syncFormats }

// Names lists the formats, sorted.
func (f *Formats[R]) Names() []string { return slices.Clone(f.names) }

// New is the writer of one format, or an error naming the formats there are.
func (f *Formats[R]) New(format string, opts Options) (Writer[R], error) {
	mk, ok := f.make[format]
	if !ok {
		return nil, fmt.Errorf("unknown output format %q; the formats are %s (FORMAT or FORMAT=FILE)", format, strings.Join(f.names, ", "))
	}
	return mk(opts), nil
}

// Output is one report to write: a format and where (Path "" or "-" is stdout).
type Output[R any] struct {
	Format string
	Path   string
	Writer Writer[R]
}

// Stdout reports whether the output goes to standard output.
func (o Output[R]) Stdout() bool { return o.Path == "" || o.Path == "-" }

// Parse reads -o values, each FORMAT or FORMAT=PATH ("text", "sarif=out.sarif",
// "html=drift.html"). No values means text on stdout. An unknown format, an empty path,
// the same file twice, or two formats on stdout is an error.
func (f *Formats[R]) Parse(specs []string, opts Options) ([]Output[R], error) {
	if len(specs) == 0 {
		specs = []string{"text"}
	}
	var outs []Output[R]
	var errs []error
	stdout := ""
	paths := map[string]string{}
	for _, spec := range specs {
		name, file, hasPath := strings.Cut(strings.TrimSpace(spec), "=")
		name = strings.ToLower(strings.TrimSpace(name))
		w, err := f.New(name, opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("-o %s: %w", spec, err))
			continue
		}
		if hasPath && strings.TrimSpace(file) == "" {
			errs = append(errs, fmt.Errorf("-o %s: no file after =; write %s=FILE, or %s alone for stdout", spec, name, name))
			continue
		}
		o := Output[R]{Format: name, Path: file, Writer: w}
		if o.Stdout() {
			if stdout != "" {
				errs = append(errs, fmt.Errorf("-o %s: %s already goes to stdout; give one of them a file (%s=FILE)", spec, stdout, name))
				continue
			}
			stdout = name
		} else {
			key := filepath.Clean(file)
			if prev, dup := paths[key]; dup {
				errs = append(errs, fmt.Errorf("-o %s: %s is already written by -o %s; give each format its own file", spec, file, prev))
				continue
			}
			paths[key] = name
		}
		outs = append(outs, o)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return outs, nil
}

// Write writes the report in every output: stdout ones to stdout, the others to their
// files (created 0644 or replaced whole: written to a temporary file in the same
// directory and renamed, so a failed write leaves no half report and nothing else is
// touched). All outputs are attempted; the errors are joined.
func Write[R any](stdout io.Writer, rep R, outs []Output[R]) error {
	var errs []error
	for _, o := range outs {
		if o.Writer == nil {
			errs = append(errs, fmt.Errorf("output %s: no writer for format %q", o.Path, o.Format))
			continue
		}
		if o.Stdout() {
			if err := o.Writer.Write(stdout, rep); err != nil {
				errs = append(errs, fmt.Errorf("write %s report to stdout: %w", o.Format, err))
			}
			continue
		}
		if err := writeFile(o.Path, func(f io.Writer) error { return o.Writer.Write(f, rep) }); err != nil {
			errs = append(errs, fmt.Errorf("write %s report to %s: %w", o.Format, o.Path, err))
		}
	}
	return errors.Join(errs...)
}

// writeFile replaces path with what write produces, atomically, mode 0644.
func writeFile(path string, write func(io.Writer) error) error {
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("%s exists and is not a regular file; name a file", path)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create the report in %s (does the directory exist?): %w", dir, err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		done = true
		return err
	}
	done = true
	return nil
}
