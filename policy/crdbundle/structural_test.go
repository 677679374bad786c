package crdbundle

import (
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// Every version of every bundled CRD has a structural schema, as the API server requires of
// apiextensions.k8s.io/v1 CRDs: the schema a custom resource is validated against can be
// built from each of them.
func TestEverySchemaIsStructural(t *testing.T) {
	for _, k := range Kinds() {
		doc, source, ok := Lookup(k.Group, k.Kind)
		if !ok {
			t.Errorf("%s/%s: not found", k.Group, k.Kind)
			continue
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(doc, &crd); err != nil {
			t.Errorf("%s: %v", source, err)
			continue
		}
		for i, v := range crd.Spec.Versions {
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				t.Errorf("%s: version %s has no schema", source, v.Name)
				continue
			}
			var internal apiextensions.JSONSchemaProps
			if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
				t.Errorf("%s: version %s: %v", source, v.Name, err)
				continue
			}
			s, err := structuralschema.NewStructural(&internal)
			if err != nil {
				t.Errorf("%s: version %s: %v", source, v.Name, err)
				continue
			}
			path := field.NewPath("spec", "versions").Index(i).Child("schema", "openAPIV3Schema")
			if errs := structuralschema.ValidateStructural(path, s); len(errs) > 0 {
				t.Errorf("%s: version %s is not structural: %v", source, v.Name, errs.ToAggregate())
			}
		}
	}
}
