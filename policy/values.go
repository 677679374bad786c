package policy

import (
	"fmt"
	"io/fs"

	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Values is cluster data supplied offline, in Kyverno's values-file format
// (cli.kyverno.io/v1alpha1 Values): global values, per-policy resource values, per-rule
// values (the results of apiCall and configMap context entries) and namespace labels.
type Values = v1alpha1.ValuesSpec

// LoadValues reads a Kyverno values file.
func LoadValues(fsys fs.FS, name string) (*Values, error) {
	return LoadValuesSource(Source{FS: fsys, Root: name, Display: name})
}

// LoadValuesSource reads the values file src.Root, naming it src.Display in errors.
func LoadValuesSource(src Source) (*Values, error) {
	name := src.Display
	data, err := ReadFileLimit(src.FS, src.Root, src.MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read values file: %w", name, unwrapPathErr(err))
	}
	var v v1alpha1.Values
	if err := yaml.UnmarshalStrict(data, &v); err != nil {
		return nil, fmt.Errorf("%s: values file: %w", name, err)
	}
	switch v.Kind {
	case "", "Values", "Value": // Kyverno's CLI never checks the kind; its own tests use both
	default:
		return nil, fmt.Errorf("%s: values file has kind %q, want Values (cli.kyverno.io/v1alpha1)", name, v.Kind)
	}
	return &v.ValuesSpec, nil
}

// resourceValues are the variables Kyverno's CLI adds for one policy and resource:
// global values, then the policy's values for that resource name.
func resourceValues(v *Values, policy, resource string) map[string]any {
	if v == nil {
		return nil
	}
	out := map[string]any{}
	for k, val := range v.GlobalValues {
		out[k] = val
	}
	for _, p := range v.Policies {
		if p.Name != policy {
			continue
		}
		for _, r := range p.Resources {
			if r.Name == resource {
				for k, val := range r.Values {
					out[k] = val
				}
			}
		}
	}
	return out
}

func ruleValues(v *Values, policy, rule string) map[string]any {
	if v == nil {
		return nil
	}
	for _, p := range v.Policies {
		if p.Name != policy {
			continue
		}
		for _, r := range p.Rules {
			// As Kyverno's CLI: values given for a rule apply to its autogen variants.
			if rule != r.Name && rule != "autogen-"+r.Name && rule != "autogen-cronjob-"+r.Name {
				continue
			}
			vals := map[string]any{}
			for k, v := range r.Values {
				vals[k] = v
			}
			for k, v := range r.ForeachValues {
				if len(v) > 0 {
					vals[k] = v[0] // Kyverno's CLI never advances its foreach element index
				}
			}
			return vals
		}
	}
	return nil
}

// namespaceLabels returns the labels the values file gives a namespace.
func namespaceLabels(v *Values, ns string) map[string]string {
	if v == nil || ns == "" {
		return nil
	}
	for _, n := range v.Namespaces { // as Kyverno's CLI: namespaces: win over namespaceSelector:
		if n.Name == ns {
			return n.Labels
		}
	}
	for _, s := range v.NamespaceSelectors {
		if s.Name == ns {
			return s.Labels
		}
	}
	return nil
}

func namespaceObject(v *Values, ns string) *corev1.Namespace {
	if ns == "" {
		return nil
	}
	if v != nil {
		for i := range v.Namespaces { // the whole object, annotations too, as Kyverno's CLI gives it
			if v.Namespaces[i].Name == ns {
				n := v.Namespaces[i].DeepCopy()
				n.APIVersion, n.Kind = "v1", "Namespace"
				return n
			}
		}
	}
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: namespaceLabels(v, ns)},
	}
}
