package policy

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestCheckSchema(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		checked bool
		want    []string // path: message fragment
	}{
		{
			name:    "valid Deployment",
			doc:     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, labels: {a: b}}\nspec:\n  replicas: 2\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n      - name: c\n        image: x:1\n        ports: [{containerPort: 80}]\n        resources: {limits: {cpu: 500m, memory: 128Mi}}\n        livenessProbe: {httpGet: {path: /, port: http}}\n",
			checked: true,
		},
		{
			name:    "unknown field and wrong type",
			doc:     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: \"2\"\n  template:\n    spec:\n      containers:\n      - name: c\n        imagePullPolice: Always\n",
			checked: true,
			want:    []string{"spec.replicas: must be an integer", "spec.template.spec.containers[0].imagePullPolice: unknown field"},
		},
		{
			name:    "bad quantity",
			doc:     "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    resources: {limits: {memory: lots}}\n",
			checked: true,
			want:    []string{"spec.containers[0].resources.limits.memory: is not a quantity"},
		},
		{
			name:    "Secret data that is not base64",
			doc:     "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  good: aGVsbG8=\n  wrapped: \"aGVs\\nbG8=\"\n  bad: \"hunter2!\"\nstringData: {plain: \"not base64!\"}\n",
			checked: true,
			want:    []string{"data.bad: is not valid base64"},
		},
		{
			name:    "CRD is not schema-checked",
			doc:     "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec: {anything: 1}\n",
			checked: false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustResource(t, tc.doc)
			res, checked := CheckSchema(r)
			if checked != tc.checked {
				t.Fatalf("checked = %v, want %v", checked, tc.checked)
			}
			var got []string
			for _, x := range res {
				frag := x.Message
				if strings.HasPrefix(frag, "unknown field") {
					frag = "unknown field"
				} else if i := strings.Index(frag, " must be"); i >= 0 {
					frag = strings.Split(frag[i+1:], ",")[0]
				} else if strings.Contains(frag, "is not a quantity") {
					frag = "is not a quantity"
				} else if strings.Contains(frag, "is not valid base64") {
					if strings.Contains(frag, "hunter2") {
						t.Errorf("the message holds the value: %s", frag)
					}
					frag = "is not valid base64"
				}
				got = append(got, x.Path+": "+frag)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			if tc.checked {
				if (strictDecodeError(r) == nil) != (len(res) == 0) {
					t.Errorf("disagrees with strict decoding: %v vs %d findings", strictDecodeError(r), len(res))
				}
			}
		})
	}
}

// TestSchemaAgreesWithStrictDecoding compares the shape walker with converting into the
// Go types, on every manifest of the repository's test data.
func TestSchemaAgreesWithStrictDecoding(t *testing.T) {
	n := 0
	for _, dir := range []string{"../testdata", "../policies"} {
		jobs, _, _ := walk(Source{FS: os.DirFS(dir), Root: ".", Display: dir}, nil)
		for _, j := range jobs {
			rs, _ := readJobAll(j, DefaultMaxFileSize)
			for _, r := range rs {
				res, checked := CheckSchema(r)
				if !checked {
					continue
				}
				n++
				if err := strictDecodeError(r); (err == nil) != (len(res) == 0) {
					t.Errorf("%s %s: strict decoding says %v, shape check found %d: %v", r.Origin, r.ID(), err, len(res), res)
				}
			}
		}
	}
	if n < 20 {
		t.Errorf("compared only %d objects", n)
	}
}

// strictDecodeError is the slow reference check: converting into the Go type with
// field validation. Tests compare it with CheckSchema.
func strictDecodeError(r Resource) error {
	typed, err := builtinScheme.New(r.Object.GroupVersionKind())
	if err != nil {
		return nil
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(r.Object.Object, typed, true)
}
