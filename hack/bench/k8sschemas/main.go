//go:build ignore

// k8sschemas writes kubeconform's JSON schemas of the built-in kinds from the real API
// server's OpenAPI, offline: it starts kube-apiserver and etcd as the integration tests
// do (controller-runtime's envtest, binaries from hack/envtest.sh), fetches /openapi/v2
// and converts every definition with x-kubernetes-group-version-kind as
// `openapi2jsonschema --expanded --kubernetes --strict` does for kubeconform's default
// catalog (yannh/kubernetes-json-schema): $refs inlined, format int-or-string made
// oneOf string/integer, optional fields' types nullable, additionalProperties: false on
// every object with properties below the root. Files are named as kubeconform looks
// them up: {kind}-{group's first label}-{version}.json ({kind}-{version}.json for the
// core group), lower case. Used by hack/bench/kubeconform.sh; never committed output.
//
//	KUBEBUILDER_ASSETS=$(hack/envtest.sh) go run hack/bench/k8sschemas/main.go OUTDIR
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: KUBEBUILDER_ASSETS=$(hack/envtest.sh) go run hack/bench/k8sschemas/main.go OUTDIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "k8sschemas:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("start the API server (KUBEBUILDER_ASSETS=$(hack/envtest.sh)): %w", err)
	}
	defer env.Stop()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	ver, err := dc.ServerVersion()
	if err != nil {
		return err
	}
	raw, err := dc.RESTClient().Get().AbsPath("/openapi/v2").SetHeader("Accept", "application/json").DoRaw(context.Background())
	if err != nil {
		return fmt.Errorf("GET /openapi/v2: %w", err)
	}
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "openapi-v2.json"), raw, 0o644); err != nil {
		return err
	}
	n := 0
	for name, def := range doc.Definitions {
		gvks, _ := def["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			gvk := g.(map[string]any)
			group, version, kind := gvk["group"].(string), gvk["version"].(string), gvk["kind"].(string)
			file := strings.ToLower(kind)
			if group != "" {
				file += "-" + strings.ToLower(strings.Split(group, ".")[0])
			}
			file += "-" + strings.ToLower(version) + ".json"
			s := expand(def, doc.Definitions, map[string]bool{name: true})
			s = nullable(s, nil, nil).(map[string]any)
			strict(s, true)
			data, err := json.Marshal(s)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if err := os.WriteFile(filepath.Join(out, file), data, 0o644); err != nil {
				return err
			}
			n++
		}
	}
	fmt.Fprintf(os.Stderr, "k8sschemas: %d schemas of kube-apiserver %s in %s\n", n, ver.GitVersion, out)
	return nil
}

// expand inlines every "$ref": "#/definitions/X" (a definition already being expanded
// above, a recursive one such as JSONSchemaProps, becomes {}), and makes format
// int-or-string oneOf string/integer.
func expand(v any, defs map[string]map[string]any, stack map[string]bool) any {
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/definitions/")
			if stack[name] || defs[name] == nil {
				return map[string]any{}
			}
			stack[name] = true
			out := expand(defs[name], defs, stack)
			delete(stack, name)
			if m, ok := out.(map[string]any); ok {
				for k, x := range v { // siblings of $ref (description) kept
					if k != "$ref" {
						m[k] = x
					}
				}
			}
			return out
		}
		if v["format"] == "int-or-string" {
			return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
		}
		out := make(map[string]any, len(v))
		for k, x := range v {
			if k == "x-kubernetes-group-version-kind" || k == "description" {
				continue
			}
			out[k] = expand(x, defs, stack)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = expand(x, defs, stack)
		}
		return out
	}
	return v
}

// nullable is openapi2jsonschema's allow_null_optional_fields (--kubernetes): a "type"
// string becomes [type, "null"] unless the map holding the property has "required".
func nullable(v any, parent, grand any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			if s, ok := x.(string); ok && k == "type" && s != "null" {
				if g, ok := grand.(map[string]any); !ok || g["required"] == nil {
					out[k] = []any{s, "null"}
					continue
				}
			}
			out[k] = nullable(x, v, parent)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = nullable(x, v, parent)
		}
		return out
	}
	return v
}

// strict is --strict: additionalProperties false on every object with properties, the
// root left open (as without DENY_ROOT_ADDITIONAL_PROPERTIES).
func strict(v any, root bool) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["properties"]; ok && !root {
			if _, ok := v["additionalProperties"]; !ok {
				v["additionalProperties"] = false
			}
		}
		for _, x := range v {
			strict(x, false)
		}
	case []any:
		for _, x := range v {
			strict(x, false)
		}
	}
}
