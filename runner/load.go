package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/policy"
	"sigs.k8s.io/yaml"
)

// File is one input file: its name as the user gave it and its bytes.
type File struct {
	Name string
	Data []byte
}

// ReadFiles reads the named files, and the .yaml/.yml/.json files under the named
// directories (sorted, hidden directories skipped).
func ReadFiles(paths []string) ([]File, error) {
	var out []File
	seen := map[string]bool{}
	add := func(name string, data []byte) {
		abs, err := filepath.Abs(name)
		if err != nil {
			abs = name
		}
		if !seen[abs] { // a file named twice (-f dir -f dir/file) is read once
			seen[abs] = true
			out = append(out, File{Name: filepath.ToSlash(name), Data: data})
		}
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, unwrapPathErr(err))
		}
		if !st.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", p, unwrapPathErr(err))
			}
			add(p, data)
			continue
		}
		var names []string
		err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if q != p && strings.HasPrefix(d.Name(), ".") {
					return fs.SkipDir
				}
				return nil
			}
			switch filepath.Ext(q) {
			case ".yaml", ".yml", ".json":
				names = append(names, q)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		sort.Strings(names)
		for _, n := range names {
			data, err := os.ReadFile(n)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", n, unwrapPathErr(err))
			}
			add(n, data)
		}
	}
	return out, nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// LoadedPipeline is a Pipeline and the document it came from.
type LoadedPipeline struct {
	Pipeline
	// Resource is the document as the gate sees it, with positions.
	Resource policy.Resource
}

// LoadedTask is a Task and the document it came from.
type LoadedTask struct {
	Task
	Resource policy.Resource
}

// Bundle is everything the input files define.
type Bundle struct {
	Pipelines []*LoadedPipeline
	// Tasks by metadata.name.
	Tasks map[string]*LoadedTask
	// Notices are documents the runner skipped (other kinds).
	Notices []string
}

// Load decodes the Pipelines and Tasks of the files. Documents are decoded strictly:
// an unknown field is an error naming the file, line and field. Documents of other kinds
// are skipped with a notice; other Tekton API versions are errors.
func Load(files []File) (*Bundle, error) {
	b := &Bundle{Tasks: map[string]*LoadedTask{}}
	var errs []error
	pipelines := map[string]*LoadedPipeline{}
	for _, f := range files {
		resources, err := policy.Decode(f.Name, f.Data)
		if err != nil {
			errs = append(errs, err)
		}
		for _, r := range resources {
			apiVersion, kind, name := r.Object.GetAPIVersion(), r.Object.GetKind(), r.Object.GetName()
			group := r.Object.GroupVersionKind().Group
			if group != "tekton.dev" || (kind != "Pipeline" && kind != "Task") {
				b.Notices = append(b.Notices, fmt.Sprintf("%s: %s skipped: gitgate run reads tekton.dev/v1 Pipelines and Tasks", r.Origin, r.ID()))
				continue
			}
			if apiVersion != APIVersion {
				errs = append(errs, inputErr(r.Origin, fmt.Errorf("%s: apiVersion %s is not supported; convert it to %s (tkn or Tekton's conversion webhook does)", r.ID(), apiVersion, APIVersion)))
				continue
			}
			if name == "" {
				errs = append(errs, inputErr(r.Origin, fmt.Errorf("%s has no metadata.name", kind)))
				continue
			}
			data, err := json.Marshal(r.Object.Object)
			if err != nil {
				errs = append(errs, inputErr(r.Origin, err))
				continue
			}
			switch kind {
			case "Pipeline":
				p := &LoadedPipeline{Resource: r}
				if err := yaml.UnmarshalStrict(data, &p.Pipeline); err != nil {
					errs = append(errs, decodeErr(r, err))
					continue
				}
				if prev, ok := pipelines[name]; ok {
					errs = append(errs, inputErr(r.Origin, fmt.Errorf("Pipeline %s is defined twice (also at %s)", name, prev.Resource.Origin)))
					continue
				}
				pipelines[name] = p
				b.Pipelines = append(b.Pipelines, p)
			case "Task":
				t := &LoadedTask{Resource: r}
				if err := yaml.UnmarshalStrict(data, &t.Task); err != nil {
					errs = append(errs, decodeErr(r, err))
					continue
				}
				if prev, ok := b.Tasks[name]; ok {
					errs = append(errs, inputErr(r.Origin, fmt.Errorf("Task %s is defined twice (also at %s)", name, prev.Resource.Origin)))
					continue
				}
				b.Tasks[name] = t
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b, nil
}

func inputErr(o policy.Origin, err error) error { return &policy.InputError{Origin: o, Err: err} }

var unknownField = regexp.MustCompile(`unknown field "([^"]+)"`)

// decodeErr is a strict-decode error of r. The JSON decoder names an unknown field
// without its path; the field is looked up in the document so the error names its
// path and points at its line.
func decodeErr(r policy.Resource, err error) error {
	msg := err.Error()
	for _, p := range []string{"error unmarshaling JSON: ", "while decoding JSON: ", "json: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	o := r.Origin
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		if path := findKey(r.Object.Object, m[1], nil); path != nil {
			o = r.FieldOrigin(path)
			msg = fmt.Sprintf("unknown field %q", policy.FieldPath(path))
		}
		msg += " (not a tekton.dev/v1 field, or one gitgate run does not support)"
	}
	return inputErr(o, fmt.Errorf("%s: %s", r.ID(), msg))
}

// findKey is the path of the first mapping key named key, depth first in key order.
func findKey(v any, key string, path []string) []string {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x[key]; ok {
			return append(append([]string{}, path...), key)
		}
		for _, k := range sortedKeys(x) {
			if p := findKey(x[k], key, append(path, k)); p != nil {
				return p
			}
		}
	case []any:
		for i, e := range x {
			if p := findKey(e, key, append(path, strconv.Itoa(i))); p != nil {
				return p
			}
		}
	}
	return nil
}
