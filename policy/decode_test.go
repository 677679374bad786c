package policy

import (
	"errors"
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
