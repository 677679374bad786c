package policy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Output is one report to write: a format and where (Path "" or "-" is stdout).
type Output struct {
	Format string
	Path   string
	// Writer writes the format; ParseOutputs sets it from Formats, and a caller may
	// replace it (MarkdownWriter with a link base, say).
	Writer Writer
}

// Stdout reports whether the output goes to standard output.
func (o Output) Stdout() bool { return o.Path == "" || o.Path == "-" }

// ParseOutputs reads -o values, each FORMAT or FORMAT=PATH ("text",
// "sarif=out.sarif", "markdown=comment.md"). No values means text on stdout. An unknown
// format, an empty path, the same file twice, or two formats on stdout is an error.
func ParseOutputs(specs []string) ([]Output, error) {
	if len(specs) == 0 {
		specs = []string{"text"}
	}
	var outs []Output
	var errs []error
	stdout := ""
	paths := map[string]string{}
	for _, spec := range specs {
		name, file, hasPath := strings.Cut(strings.TrimSpace(spec), "=")
		name = strings.ToLower(strings.TrimSpace(name))
		w, ok := Formats[name]
		if !ok {
			errs = append(errs, fmt.Errorf("-o %s: unknown output format %q; the formats are %s (FORMAT or FORMAT=FILE)", spec, name, strings.Join(FormatNames(), ", ")))
			continue
		}
		if hasPath && strings.TrimSpace(file) == "" {
			errs = append(errs, fmt.Errorf("-o %s: no file after =; write %s=FILE, or %s alone for stdout", spec, name, name))
			continue
		}
		o := Output{Format: name, Path: file, Writer: w}
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

// WriteOutputs writes the report in every output: stdout ones to stdout, the others to
// their files (created 0644 or replaced whole: written to a temporary file in the same
// directory and renamed, so a failed write leaves no half report and nothing else is
// touched). All outputs are attempted; the errors are joined.
func WriteOutputs(stdout io.Writer, rep *Report, outs []Output) error {
	var errs []error
	for _, o := range outs {
		w := o.Writer
		if w == nil {
			var ok bool
			if w, ok = Formats[o.Format]; !ok {
				errs = append(errs, fmt.Errorf("output %s: unknown format %q", o.Path, o.Format))
				continue
			}
		}
		if o.Stdout() {
			if err := w.Write(stdout, rep); err != nil {
				errs = append(errs, fmt.Errorf("write %s report to stdout: %w", o.Format, err))
			}
			continue
		}
		if err := writeFile(o.Path, func(f io.Writer) error { return w.Write(f, rep) }); err != nil {
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
