package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string // ID@line:col
	}{
		{
			name:  "multi-document with empty documents",
			input: "---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n# only a comment\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\n  namespace: ns\n",
			want:  []string{"ConfigMap/a@3:1", "Service/ns/b@10:1"},
		},
		{
			name:  "List expanded with item positions",
			input: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: x}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: y}\n",
			want:  []string{"ConfigMap/x@4:3", "ConfigMap/y@7:3"},
		},
		{
			name:  "documents without kind are not objects",
			input: "replicaCount: 2\nimage: {tag: 1.0}\n",
			want:  nil,
		},
		{
			name:  "JSON",
			input: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"prod"}}`,
			want:  []string{"Namespace/prod@1:1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := Decode("f.yaml", []byte(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				got = append(got, r.ID()+"@"+strings.TrimPrefix(r.Origin.String(), "f.yaml:"))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestDecodeNormalisesNumbers(t *testing.T) {
	rs, err := Decode("f.yaml", []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
  annotations: {when: 2024-01-01}
spec:
  replicas: 3
  ratio: 0.5
  big: 0x10
  flag: true
  none: null
  base: &b {x: 1}
  merged:
    <<: *b
    y: 2
`))
	if err != nil {
		t.Fatal(err)
	}
	spec := rs[0].Object.Object["spec"].(map[string]any)
	want := map[string]any{
		"replicas": int64(3), "ratio": 0.5, "big": int64(16), "flag": true, "none": nil,
		"base":   map[string]any{"x": int64(1)},
		"merged": map[string]any{"x": int64(1), "y": int64(2)},
	}
	if diff := cmp.Diff(want, spec); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if got := rs[0].Object.GetAnnotations()["when"]; got != "2024-01-01" {
		t.Errorf("timestamp kept as %q, want the string", got)
	}
	// DeepCopy panics on Go int ("cannot deep copy int"): this is what Kyverno needs.
	_ = rs[0].Object.DeepCopy()
}

func TestDecodeMalformedNamesLine(t *testing.T) {
	input := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n"
	rs, err := Decode("bad.yaml", []byte(input))
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("want *InputError, got %v", err)
	}
	if ie.Origin.File != "bad.yaml" || ie.Origin.Line == 0 {
		t.Errorf("error %q does not name file and line", err)
	}
	if len(rs) != 1 || rs[0].Object.GetName() != "ok" {
		t.Errorf("documents before the error are kept: got %d", len(rs))
	}
}

func TestDecodeRefusesAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\na0: &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n")
	for i := 1; i < 12; i++ {
		prev := "*a" + string(rune('0'+i-1))
		if i > 9 {
			prev = "*a" + string(rune('a'+i-10))
		}
		name := string(rune('0' + i))
		if i > 9 {
			name = string(rune('a' + i - 10))
		}
		b.WriteString("a" + name + ": &a" + name + " [" + strings.Repeat(prev+",", 8) + prev + "]\n")
	}
	start := time.Now()
	_, err := Decode("bomb.yaml", []byte(b.String()))
	if !errors.Is(err, ErrAliasExpansion) {
		t.Fatalf("want ErrAliasExpansion, got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusing the bomb took %v", d)
	}
}

func TestLocate(t *testing.T) {
	rs, err := Decode("d.yaml", []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
spec:
  template:
    metadata:
      labels:
        app.kubernetes.io/name: x
    spec:
      containers:
      - name: a
        image: nginx
`))
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	for path, want := range map[string]string{
		"/spec/template/spec/containers/0/image/":                "d.yaml:13:9",
		"/spec/template/metadata/labels/app.kubernetes.io/name/": "d.yaml:9:9",
		"/spec/template/spec/containers/0/securityContext/":      "d.yaml:12:9", // deepest existing: the container
		"": "d.yaml:1:1",
	} {
		if got := r.position(path).String(); got != want {
			t.Errorf("position(%q) = %s, want %s", path, got, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("- [x, {<<: [], y: !!binary aGk=}]\n---\n{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [1]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, _ := Decode("fuzz.yaml", data)
		for _, r := range rs {
			_ = r.Object.DeepCopy() // panics if a Go int slipped through
			_ = r.position("/spec/x/0/")
		}
	})
}

// A key named twice in one mapping is an error at the second key's line (kubectl and
// the API server refuse such a document); the file's other documents still decode, and
// a merge key's pairs overridden by explicit keys are not duplicates.
func TestDecodeDuplicateKeys(t *testing.T) {
	var big strings.Builder
	big.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n")
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&big, "  k%d: v\n", i)
	}
	big.WriteString("  k7: again\n") // line 46 of this document, 61 of the file
	src := `apiVersion: v1
kind: ConfigMap
metadata:
  name: one
  name: two
---
base: &base {a: 1, b: 2}
apiVersion: v1
kind: ConfigMap
metadata:
  name: merged
data:
  <<: *base
  a: "3"
---
` + big.String()
	rs, err := Decode("x.yaml", []byte(src))
	if len(rs) != 1 || rs[0].Object.GetName() != "merged" {
		t.Fatalf("decoded %d objects, want only the merge-key one", len(rs))
	}
	if got := rs[0].Object.Object["data"].(map[string]any)["a"]; got != "3" {
		t.Errorf("explicit key after a merge key: a = %v, want 3", got)
	}
	var ies []*InputError
	for _, e := range unjoin(err) {
		var ie *InputError
		if errors.As(e, &ie) {
			ies = append(ies, ie)
		}
	}
	if len(ies) != 2 {
		t.Fatalf("errors %v, want two InputErrors", err)
	}
	for i, want := range []struct {
		line int
		msg  string
	}{{5, `key "name" is defined twice in the same mapping (first at line 4)`}, {61, `key "k7" is defined twice in the same mapping (first at line 28)`}} {
		if ies[i].Origin.Line != want.line || !strings.Contains(ies[i].Error(), want.msg) {
			t.Errorf("error %d = %v (line %d), want line %d and %q", i, ies[i], ies[i].Origin.Line, want.line, want.msg)
		}
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
