// Package crdbundle holds the CustomResourceDefinitions of the projects gitgate's users run
// (Argo CD, Argo Rollouts, Tekton Pipelines, Kyverno, cert-manager, external-secrets),
// embedded in the binary so that their custom resources can be schema-checked offline when
// neither the repository nor --crds brings the CRD (issue 16).
//
// The files under data/ are written by hack/crds.sh from each project's Go module at a
// pinned version; rerun it to update them, never edit them. data/SOURCES names the module,
// the path in it and the checksums of every file; data/INDEX lists each CRD's group, kind,
// plural, scope, versions and where its document lies in the decompressed file:
//
//	project  group  kind  plural  scope  versions(comma-separated)  file.gz  offset  length
//
// Nothing is read at program start: the two small tables are parsed on the first Lookup or
// Kinds call, and a Lookup decompresses only the one file it needs, only up to the end of
// the document it returns. Lookup does not keep what it decompressed: callers build their
// validator from the document once and keep that.
package crdbundle

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"sync"
)

//go:embed data
var data embed.FS

// Kind is one bundled CRD.
type Kind struct {
	Project  string   // "argo-cd", "tekton-pipeline", ...: the directory under data/
	Group    string   // spec.group
	Kind     string   // spec.names.kind
	Plural   string   // spec.names.plural
	Scope    string   // "Namespaced" or "Cluster"
	Versions []string // spec.versions[*].name, in the CRD's order
	// Source says where the CRD comes from, for findings and summaries:
	// "bundled argo-cd v3.6.2 (manifests/crds/application-crd.yaml)".
	Source string
}

type entry struct {
	Kind
	file           string // path under data/ of the gzip-compressed YAML file
	offset, length int64  // the CRD document in the decompressed file
}

type groupKind struct{ group, kind string }

var (
	loadOnce sync.Once
	loaded   *table
	loadErr  error
)

type table struct {
	byGK  map[groupKind]*entry
	kinds []Kind // INDEX order: project, group, kind
}

func load() (*table, error) {
	loadOnce.Do(func() { loaded, loadErr = parseTables(data) })
	return loaded, loadErr
}

// Lookup returns the CRD document (YAML, one document) defining kind in group, and where it
// comes from. ok is false when no bundled CRD defines that group and kind (names are
// case-sensitive, as the API server's are) or when the embedded data cannot be read, which
// TestBundle rules out for every release.
func Lookup(group, kind string) (doc []byte, source string, ok bool) {
	t, err := load()
	if err != nil {
		return nil, "", false
	}
	e := t.byGK[groupKind{group, kind}]
	if e == nil {
		return nil, "", false
	}
	doc, err = e.read(data)
	if err != nil {
		return nil, "", false
	}
	return doc, e.Source, true
}

// Kinds lists every bundled CRD, ordered by project, group and kind. The caller may modify
// the returned slice.
func Kinds() []Kind {
	t, err := load()
	if err != nil {
		return nil
	}
	out := make([]Kind, len(t.kinds))
	for i, k := range t.kinds {
		k.Versions = append([]string(nil), k.Versions...)
		out[i] = k
	}
	return out
}

// read decompresses e.file up to the end of e's document and returns the document.
func (e *entry) read(fsys fs.FS) ([]byte, error) {
	f, err := fsys.Open(path.Join("data", e.file))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("data/%s: %v", e.file, err)
	}
	if _, err := io.CopyN(io.Discard, zr, e.offset); err != nil {
		return nil, fmt.Errorf("data/%s: skipping to byte %d: %v", e.file, e.offset, err)
	}
	doc := make([]byte, e.length)
	if _, err := io.ReadFull(zr, doc); err != nil {
		return nil, fmt.Errorf("data/%s: reading bytes %d-%d: %v", e.file, e.offset, e.offset+e.length, err)
	}
	return doc, nil
}

// parseTables reads data/SOURCES and data/INDEX.
func parseTables(fsys fs.FS) (*table, error) {
	type src struct{ project, version, inModule string }
	sources := map[string]src{}
	err := eachRow(fsys, "data/SOURCES", 7, func(f []string) error {
		_, version, ok := strings.Cut(f[1], "@")
		if !ok {
			return fmt.Errorf("module@version %q has no @", f[1])
		}
		sources[f[4]] = src{f[0], version, f[3]}
		return nil
	})
	if err != nil {
		return nil, err
	}
	t := &table{byGK: map[groupKind]*entry{}}
	err = eachRow(fsys, "data/INDEX", 9, func(f []string) error {
		s, ok := sources[f[6]]
		if !ok {
			return fmt.Errorf("file %s is not in data/SOURCES", f[6])
		}
		if s.project != f[0] {
			return fmt.Errorf("file %s is project %s in data/SOURCES, %s here", f[6], s.project, f[0])
		}
		off, err1 := strconv.ParseInt(f[7], 10, 64)
		n, err2 := strconv.ParseInt(f[8], 10, 64)
		if err1 != nil || err2 != nil || off < 0 || n <= 0 {
			return fmt.Errorf("bad byte range %q %q", f[7], f[8])
		}
		e := &entry{Kind: Kind{Project: f[0], Group: f[1], Kind: f[2], Plural: f[3], Scope: f[4],
			Versions: strings.Split(f[5], ","),
			Source:   fmt.Sprintf("bundled %s %s (%s)", s.project, s.version, s.inModule)},
			file: f[6], offset: off, length: n}
		gk := groupKind{e.Group, e.Kind.Kind}
		if t.byGK[gk] != nil {
			return fmt.Errorf("%s/%s defined twice", e.Group, e.Kind.Kind)
		}
		t.byGK[gk] = e
		t.kinds = append(t.kinds, e.Kind)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// eachRow calls fn with the tab-separated fields of each line of name that is neither
// empty nor a # comment, and names the file and line in its errors.
func eachRow(fsys fs.FS, name string, fields int, fn func([]string) error) error {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return err
	}
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		f := strings.Split(string(line), "\t")
		if len(f) != fields {
			return fmt.Errorf("%s:%d: %d fields, want %d", name, i+1, len(f), fields)
		}
		if err := fn(f); err != nil {
			return fmt.Errorf("%s:%d: %v", name, i+1, err)
		}
	}
	return nil
}
