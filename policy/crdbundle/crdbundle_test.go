package crdbundle

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

func TestMain(m *testing.M) {
	// Nothing may be parsed at program start: the package's init must leave the tables
	// unread until the first Lookup or Kinds call.
	if loaded != nil || loadErr != nil {
		fmt.Fprintln(os.Stderr, "crdbundle: tables were parsed before the first Lookup")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func TestTablesParse(t *testing.T) {
	if _, err := load(); err != nil {
		t.Fatal(err)
	}
	if len(Kinds()) == 0 {
		t.Fatal("no bundled CRDs")
	}
}

// Every indexed CRD decodes, strictly, as an apiextensions.k8s.io/v1
// CustomResourceDefinition whose group, kind, plural, scope and versions are the index's,
// and Lookup returns exactly that one document.
func TestEveryCRDDecodes(t *testing.T) {
	srcRE := regexp.MustCompile(`^bundled ([a-z-]+) (v[0-9][^ ]*) \(([^()]+\.ya?ml)\)$`)
	for _, k := range Kinds() {
		t.Run(k.Group+"/"+k.Kind, func(t *testing.T) {
			doc, source, ok := Lookup(k.Group, k.Kind)
			if !ok {
				t.Fatalf("Lookup(%q, %q) not found although Kinds lists it", k.Group, k.Kind)
			}
			if source != k.Source {
				t.Errorf("Lookup source %q, Kinds source %q", source, k.Source)
			}
			if m := srcRE.FindStringSubmatch(source); m == nil || m[1] != k.Project {
				t.Errorf("source %q: want \"bundled %s vX.Y.Z (path/in/module.yaml)\"", source, k.Project)
			}
			if n := countDocs(t, doc); n != 1 {
				t.Fatalf("Lookup returned %d YAML documents, want 1", n)
			}
			var crd apiextensionsv1.CustomResourceDefinition
			if err := yaml.UnmarshalStrict(doc, &crd); err != nil {
				t.Fatalf("%s: %v", source, err)
			}
			if crd.APIVersion != "apiextensions.k8s.io/v1" || crd.Kind != "CustomResourceDefinition" {
				t.Fatalf("%s: %s %s, want apiextensions.k8s.io/v1 CustomResourceDefinition", source, crd.APIVersion, crd.Kind)
			}
			s := crd.Spec
			if s.Group != k.Group || s.Names.Kind != k.Kind || s.Names.Plural != k.Plural || string(s.Scope) != k.Scope {
				t.Errorf("%s: CRD says %s/%s plural %s scope %s; index says %s/%s plural %s scope %s", source,
					s.Group, s.Names.Kind, s.Names.Plural, s.Scope, k.Group, k.Kind, k.Plural, k.Scope)
			}
			if want := s.Names.Plural + "." + s.Group; crd.Name != want {
				t.Errorf("%s: metadata.name %q, want %q", source, crd.Name, want)
			}
			var vs []string
			for _, v := range s.Versions {
				vs = append(vs, v.Name)
				if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
					t.Errorf("%s: version %s has no openAPIV3Schema: nothing to validate against", source, v.Name)
				}
			}
			if !slices.Equal(vs, k.Versions) {
				t.Errorf("%s: versions %v, index says %v", source, vs, k.Versions)
			}
		})
	}
}

// The index is complete: every CRD in every embedded file (split by apimachinery's YAML
// reader, not the generator's splitter) is indexed, and every file is in SOURCES.
func TestEveryEmbeddedCRDIndexed(t *testing.T) {
	indexed := map[string]string{} // group/kind -> file
	for _, k := range Kinds() {
		e := loaded.byGK[groupKind{k.Group, k.Kind}]
		indexed[k.Group+"/"+k.Kind] = e.file
	}
	files := 0
	err := fs.WalkDir(data, "data", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".gz") {
			return err
		}
		files++
		rel := strings.TrimPrefix(p, "data/")
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(gunzip(t, p))))
		crds := 0
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("%s: %v", p, err)
				break
			}
			var head struct {
				Kind string `json:"kind"`
				Spec struct {
					Group string `json:"group"`
					Names struct {
						Kind string `json:"kind"`
					} `json:"names"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Errorf("%s: %v", p, err)
				continue
			}
			if head.Kind != "CustomResourceDefinition" {
				continue
			}
			crds++
			gk := head.Spec.Group + "/" + head.Spec.Names.Kind
			if got, ok := indexed[gk]; !ok {
				t.Errorf("%s defines %s, which data/INDEX does not list", p, gk)
			} else if got != rel {
				t.Errorf("%s defines %s, which data/INDEX places in %s", p, gk, got)
			}
		}
		if crds == 0 {
			t.Errorf("%s holds no CustomResourceDefinition: hack/crds.sh should not have kept it", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no .gz file embedded")
	}
}

// The kinds issue 16 names are all bundled.
func TestRequiredKinds(t *testing.T) {
	required := []struct{ project, group, kind string }{
		{"argo-cd", "argoproj.io", "Application"},
		{"argo-cd", "argoproj.io", "ApplicationSet"},
		{"argo-cd", "argoproj.io", "AppProject"},
		{"argo-rollouts", "argoproj.io", "Rollout"},
		{"argo-rollouts", "argoproj.io", "AnalysisTemplate"},
		{"tekton-pipeline", "tekton.dev", "Task"},
		{"tekton-pipeline", "tekton.dev", "Pipeline"},
		{"tekton-pipeline", "tekton.dev", "TaskRun"},
		{"tekton-pipeline", "tekton.dev", "PipelineRun"},
		{"kyverno", "kyverno.io", "ClusterPolicy"},
		{"kyverno", "kyverno.io", "Policy"},
		{"kyverno", "kyverno.io", "PolicyException"},
		{"kyverno", "policies.kyverno.io", "PolicyException"},
		{"kyverno", "policies.kyverno.io", "ValidatingPolicy"},
		{"cert-manager", "cert-manager.io", "Certificate"},
		{"cert-manager", "cert-manager.io", "Issuer"},
		{"cert-manager", "cert-manager.io", "ClusterIssuer"},
		{"external-secrets", "external-secrets.io", "ExternalSecret"},
		{"external-secrets", "external-secrets.io", "SecretStore"},
		{"external-secrets", "external-secrets.io", "ClusterSecretStore"},
	}
	for _, r := range required {
		doc, source, ok := Lookup(r.group, r.kind)
		if !ok {
			t.Errorf("%s/%s (%s) is not bundled", r.group, r.kind, r.project)
			continue
		}
		if !strings.HasPrefix(source, "bundled "+r.project+" ") {
			t.Errorf("%s/%s: source %q, want one from %s", r.group, r.kind, source, r.project)
		}
		if !bytes.Contains(doc, []byte("kind: "+r.kind+"\n")) {
			t.Errorf("%s/%s: returned document does not name the kind", r.group, r.kind)
		}
	}
}

func TestLookupMisses(t *testing.T) {
	for _, gk := range [][2]string{
		{"argoproj.io", "application"},   // kinds are case-sensitive
		{"example.com", "Application"},   // right kind, wrong group
		{"", "Deployment"},               // a built-in kind is not a bundled CRD
		{"apps", "Deployment"},           //
		{"argoproj.io", "NoSuchKind"},    //
		{"cert-manager.io", "Challenge"}, // Challenge is acme.cert-manager.io's
	} {
		if doc, source, ok := Lookup(gk[0], gk[1]); ok || doc != nil || source != "" {
			t.Errorf("Lookup(%q, %q) = %d bytes, %q, %v; want nothing", gk[0], gk[1], len(doc), source, ok)
		}
	}
}

// Lookup's document is the caller's: changing it does not change the next Lookup.
func TestLookupReturnsACopy(t *testing.T) {
	a, _, ok := Lookup("cert-manager.io", "Certificate")
	if !ok {
		t.Fatal("Certificate not bundled")
	}
	want := string(a)
	for i := range a {
		a[i] = 'x'
	}
	b, _, _ := Lookup("cert-manager.io", "Certificate")
	if string(b) != want {
		t.Fatal("a caller's change to a returned document reached the next Lookup")
	}
}

// data/SOURCES: every embedded file has one row, every row's file is embedded, and both
// checksums (the compressed file and its YAML) match.
func TestSourcesChecksums(t *testing.T) {
	b, err := fs.ReadFile(data, "data/SOURCES")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	projects := map[string]string{}
	hexRE := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for i, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 7 {
			t.Errorf("SOURCES:%d: %d fields, want 7", i+1, len(f))
			continue
		}
		project, modver, sum, inModule, file, yamlSHA, gzSHA := f[0], f[1], f[2], f[3], f[4], f[5], f[6]
		where := fmt.Sprintf("SOURCES:%d (%s)", i+1, file)
		if rows[file] {
			t.Errorf("%s: file listed twice", where)
		}
		rows[file] = true
		if prev, ok := projects[project]; ok && prev != modver {
			t.Errorf("%s: project %s from both %s and %s", where, project, prev, modver)
		}
		projects[project] = modver
		if !strings.HasPrefix(sum, "h1:") {
			t.Errorf("%s: module sum %q is not a go.sum h1: hash", where, sum)
		}
		if !strings.HasPrefix(file, project+"/") || path.Base(file) != path.Base(inModule)+".gz" {
			t.Errorf("%s: file %s does not match project %s and path %s", where, file, project, inModule)
		}
		if !hexRE.MatchString(yamlSHA) || !hexRE.MatchString(gzSHA) {
			t.Errorf("%s: checksums %q %q are not sha256 hex", where, yamlSHA, gzSHA)
		}
		gz, err := fs.ReadFile(data, "data/"+file)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		if got := sha256hex(gz); got != gzSHA {
			t.Errorf("%s: sha256 of the .gz is %s, SOURCES says %s", where, got, gzSHA)
		}
		if got := sha256hex(gunzip(t, "data/"+file)); got != yamlSHA {
			t.Errorf("%s: sha256 of the YAML is %s, SOURCES says %s", where, got, yamlSHA)
		}
	}
	err = fs.WalkDir(data, "data", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "data/SOURCES" || p == "data/INDEX" {
			return err
		}
		if !rows[strings.TrimPrefix(p, "data/")] {
			t.Errorf("%s is embedded but not in data/SOURCES", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"argo-cd", "argo-rollouts", "tekton-pipeline", "kyverno", "cert-manager", "external-secrets"} {
		if projects[p] == "" {
			t.Errorf("project %s has no file in SOURCES", p)
		}
	}
}

// Kinds hands out copies: a caller changing them does not change the bundle.
func TestKindsIsACopy(t *testing.T) {
	ks := Kinds()
	if len(ks) == 0 || len(ks[0].Versions) == 0 {
		t.Fatal("no kinds")
	}
	want := ks[0].Versions[0]
	ks[0].Versions[0] = "changed"
	ks[0].Group = "changed"
	if again := Kinds(); again[0].Versions[0] != want || again[0].Group == "changed" {
		t.Fatal("a caller's change to Kinds' result reached the bundle")
	}
}

func countDocs(t *testing.T, doc []byte) int {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(doc)))
	n := 0
	for {
		d, err := r.Read()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			n++
		}
	}
}

func stripComments(b []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

func gunzip(t testing.TB, name string) []byte {
	t.Helper()
	f, err := data.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// The bundled Kyverno CRDs come from the Kyverno module gitgate's engine is built from, so
// that a policy the bundle accepts is one the engine reads: bumping kyverno in go.mod
// without rerunning hack/crds.sh fails here.
func TestKyvernoPinMatchesGoMod(t *testing.T) {
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/kyverno/kyverno (v\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod does not require github.com/kyverno/kyverno")
	}
	doc, source, ok := Lookup("kyverno.io", "ClusterPolicy")
	if !ok || doc == nil {
		t.Fatal("kyverno.io/ClusterPolicy not bundled")
	}
	if want := "bundled kyverno " + string(m[1]) + " "; !strings.HasPrefix(source, want) {
		t.Errorf("bundled Kyverno CRDs: %q; go.mod builds the engine from %s: rerun hack/crds.sh with that pin", source, m[1])
	}
}
