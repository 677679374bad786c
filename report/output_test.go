package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseOutputs(t *testing.T) {
	tests := []struct {
		name    string
		specs   []string
		want    []string // format=path
		wantErr []string // substrings of the error
	}{
		{name: "default is text on stdout", specs: nil, want: []string{"text="}},
		{name: "two formats on stdout", specs: []string{"text", "sarif=out.sarif", "markdown=comment.md", "junit=-"},
			want: nil, wantErr: []string{`-o junit=-: text already goes to stdout`}},
		{name: "one stdout and files", specs: []string{"json", "sarif=out.sarif", "codequality=gl-code-quality.json", "JUnit=reports/junit.xml"},
			want: []string{"json=", "sarif=out.sarif", "codequality=gl-code-quality.json", "junit=reports/junit.xml"}},
		{name: "unknown format names the known ones", specs: []string{"sarf=x.sarif"},
			wantErr: []string{`-o sarf=x.sarif: unknown output format "sarf"; the formats are codequality, json, junit, markdown, sarif, text`}},
		{name: "empty path", specs: []string{"sarif="}, wantErr: []string{"-o sarif=: no file after ="}},
		{name: "same file twice", specs: []string{"sarif=out", "json=./out"}, wantErr: []string{"out is already written by -o sarif"}},
		{name: "drift formats are not check's", specs: []string{"html=r.html"}, wantErr: []string{`unknown output format "html"`}},
		{name: "every error at once", specs: []string{"a", "b=x"}, wantErr: []string{`unknown output format "a"`, `unknown output format "b"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outs, err := CheckFormats().Parse(tt.specs, Options{})
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, got %v", outs)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range outs {
				got = append(got, o.Format+"="+o.Path)
				if o.Writer == nil {
					t.Errorf("%s has no writer", o.Format)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("outputs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "keep.txt")
	if err := os.WriteFile(other, []byte("untouched"), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "out.sarif")
	if err := os.WriteFile(stale, bytes.Repeat([]byte("old "), 100000), 0o600); err != nil {
		t.Fatal(err)
	}
	outs, err := CheckFormats().Parse([]string{"text", "sarif=" + stale, "markdown=" + filepath.Join(dir, "comment.md"), "codequality=" + filepath.Join(dir, "cq.json")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := mrReport(0)
	var stdout bytes.Buffer
	if err := Write(&stdout, rep, outs); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(render(t, "text", rep)), stdout.String()); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	for file, format := range map[string]string{"out.sarif": "sarif", "comment.md": "markdown", "cq.json": "codequality"} {
		p := filepath.Join(dir, file)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(render(t, format, rep)), string(data)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", file, diff)
		}
		st, _ := os.Stat(p)
		if st.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v, want 0644", file, st.Mode().Perm())
		}
	}
	if data, _ := os.ReadFile(other); string(data) != "untouched" {
		t.Errorf("another file changed: %q", data)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v: a temporary file was left behind", names)
	}
	var sarif map[string]any
	if data, _ := os.ReadFile(stale); json.Unmarshal(data, &sarif) != nil {
		t.Error("the old, longer file was not replaced whole")
	}
}

func TestWriteOutputsErrors(t *testing.T) {
	dir := t.TempDir()
	outs, err := CheckFormats().Parse([]string{"json=" + filepath.Join(dir, "missing", "r.json"), "sarif=" + dir, "junit=" + filepath.Join(dir, "ok.xml")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = Write(&bytes.Buffer{}, plainReport(0), outs)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"write json report to " + filepath.Join(dir, "missing", "r.json"), "does the directory exist?", "write sarif report to " + dir, "is not a regular file"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ok.xml")); err != nil {
		t.Errorf("one failing output stopped the others: %v", err)
	}
}
