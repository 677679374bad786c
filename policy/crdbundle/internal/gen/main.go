// Command gen is the part of hack/crds.sh that needs a YAML parser: it reads the files the
// script staged from each project's Go module, keeps those holding an
// apiextensions.k8s.io/v1 CustomResourceDefinition, copies them (unchanged) to the output
// directory, and writes the INDEX that crdbundle.Lookup reads instead of parsing schemas.
//
//	go run ./policy/crdbundle/internal/gen MANIFEST OUTDIR
//
// MANIFEST has one tab-separated line per staged file:
//
//	project  module@version  path-in-module  staged-file
//
// Written to OUTDIR: <project>/<base name of path> for each kept file, INDEX (see
// crdbundle's package doc for its columns) and KEPT (the manifest lines of the kept files,
// in the same order, for the script to compress and checksum). A staged file without a v1
// CRD is named on stderr as skipped; a CRD that does not decode, or two CRDs for one
// group/kind, is an error: the bundle must not answer a Lookup ambiguously.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

type row struct {
	project, group, kind, plural, scope string
	versions                            []string
	file                                string // <project>/<base>, relative to OUTDIR (INDEX names the .gz the script makes of it)
	offset, length                      int
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gen MANIFEST OUTDIR")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "crds gen:", err)
		os.Exit(1)
	}
}

func run(manifest, out string) error {
	mf, err := os.ReadFile(manifest)
	if err != nil {
		return err
	}
	var rows []row
	var kept []string
	seenFile := map[string]string{}
	seenKind := map[string]string{}
	for n, line := range strings.Split(strings.TrimRight(string(mf), "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return fmt.Errorf("%s:%d: want 4 tab-separated fields, got %d", manifest, n+1, len(f))
		}
		project, modver, inModule, staged := f[0], f[1], f[2], f[3]
		data, err := os.ReadFile(staged)
		if err != nil {
			return err
		}
		where := modver + "/" + inModule
		docs, err := crdDocs(data, where)
		if err != nil {
			return err
		}
		if len(docs) == 0 {
			fmt.Fprintf(os.Stderr, "crds: skipped %s: no apiextensions.k8s.io/v1 CustomResourceDefinition\n", where)
			continue
		}
		rel := project + "/" + path.Base(inModule)
		if prev, ok := seenFile[rel]; ok {
			return fmt.Errorf("%s and %s both map to %s", prev, where, rel)
		}
		seenFile[rel] = where
		for _, d := range docs {
			d.project, d.file = project, rel
			key := d.group + "/" + d.kind
			if prev, ok := seenKind[key]; ok {
				return fmt.Errorf("%s: CRD for %s already defined by %s", where, key, prev)
			}
			seenKind[key] = where
			rows = append(rows, d)
		}
		if err := os.MkdirAll(filepath.Join(out, project), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, filepath.FromSlash(rel)), data, 0o644); err != nil {
			return err
		}
		kept = append(kept, line)
	}
	perProject := map[string]int{}
	for _, r := range rows {
		perProject[r.project]++
	}
	for _, line := range strings.Split(strings.TrimRight(string(mf), "\n"), "\n") {
		if p, _, _ := strings.Cut(line, "\t"); perProject[p] == 0 {
			return fmt.Errorf("project %s: no apiextensions.k8s.io/v1 CRD in its files: check its pin in hack/crds.sh", p)
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].project != rows[j].project {
			return rows[i].project < rows[j].project
		}
		if rows[i].group != rows[j].group {
			return rows[i].group < rows[j].group
		}
		return rows[i].kind < rows[j].kind
	})
	var b bytes.Buffer
	b.WriteString("# project\tgroup\tkind\tplural\tscope\tversions\tfile\toffset\tlength\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", r.project, r.group, r.kind, r.plural,
			r.scope, strings.Join(r.versions, ","), r.file+".gz", r.offset, r.length)
	}
	if err := os.WriteFile(filepath.Join(out, "INDEX"), b.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "KEPT"), []byte(strings.Join(kept, "\n")+"\n"), 0o644)
}

// crdDocs splits a YAML stream on its "---" lines and returns the v1 CRDs in it with the
// byte range of each document (comments before it included: they are the project's
// licence header, kept with the text they belong to).
func crdDocs(data []byte, where string) ([]row, error) {
	var rows []row
	start := 0
	flush := func(end int) error {
		doc := data[start:end]
		if len(bytes.TrimSpace(doc)) == 0 {
			return nil
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			// Not YAML we can read (e.g. a Helm template): not a CRD file for the bundle.
			return nil
		}
		if head.Kind != "CustomResourceDefinition" {
			return nil
		}
		if head.APIVersion != "apiextensions.k8s.io/v1" {
			fmt.Fprintf(os.Stderr, "crds: skipped a %s CRD in %s: only apiextensions.k8s.io/v1 is bundled\n", head.APIVersion, where)
			return nil
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(doc, &crd); err != nil {
			return fmt.Errorf("%s (bytes %d-%d): %v", where, start, end, err)
		}
		s := crd.Spec
		if s.Group == "" || s.Names.Kind == "" || s.Names.Plural == "" || len(s.Versions) == 0 {
			return fmt.Errorf("%s (bytes %d-%d): CRD %q lacks group, kind, plural or versions", where, start, end, crd.Name)
		}
		var vs []string
		for _, v := range s.Versions {
			vs = append(vs, v.Name)
		}
		rows = append(rows, row{group: s.Group, kind: s.Names.Kind, plural: s.Names.Plural,
			scope: string(s.Scope), versions: vs, offset: start, length: end - start})
		return nil
	}
	pos := 0
	for {
		adv, tok, err := bufio.ScanLines(data[pos:], true)
		if err != nil {
			return nil, err
		}
		if adv == 0 {
			break
		}
		if strings.TrimRight(string(tok), " \t") == "---" {
			if err := flush(pos); err != nil {
				return nil, err
			}
			start = pos + adv
		}
		pos += adv
	}
	if err := flush(len(data)); err != nil {
		return nil, err
	}
	return rows, nil
}
