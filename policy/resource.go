// Package policy is gitgate's gate: the Resource every producer hands in, policy
// loading, evaluation with Kyverno's engine, exceptions, the Report and its formats.
//
// It is the domain root of the module: render, admission, reconcile, runner and cmd
// import it; it imports none of them.
package policy

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Origin says where a resource, or a field of it, came from.
type Origin struct {
	// File is the path of the source file, slash-separated, as the user named it.
	File string `json:"file,omitempty"`
	// Line and Col are 1-based; 0 means unknown.
	Line int `json:"line,omitempty"`
	Col  int `json:"column,omitempty"`
	// Target is the render target that produced the resource (empty for plain files).
	Target string `json:"target,omitempty"`
}

// String formats the origin the way the Go toolchain prints positions: file:line:col.
func (o Origin) String() string {
	var b strings.Builder
	b.WriteString(o.File)
	if o.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(o.Line))
		if o.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(o.Col))
		}
	}
	return b.String()
}

// Locator maps a field path of a resource (segments such as "spec", "containers", "0")
// to the position of that field in its source.
type Locator interface {
	Locate(path []string) (line, col int, ok bool)
}

// FileLocator is a Locator that may place a field in another file than the resource's,
// such as the overlay that changed a value of its base.
type FileLocator interface {
	LocateFile(path []string) (file string, line, col int, ok bool)
}

// ValueLocator tells where the value of a field was set when that is another file than
// the resource's: the values-file lines behind a field of an object a Helm chart
// rendered.
type ValueLocator interface {
	LocateValue(path []string) []ValueOrigin
}

// ValueOrigin is a place a field's value was set, and the key that set it there
// (image.tag).
type ValueOrigin struct {
	Origin Origin `json:"origin"`
	Key    string `json:"key,omitempty"`
}

// Resource is one Kubernetes object and where it came from. Object holds JSON-normalised
// values only (map[string]any, []any, string, bool, int64, float64, nil), which is what
// Kyverno's engine requires.
type Resource struct {
	Object *unstructured.Unstructured
	Origin Origin
	// Fields, when set, locates fields of Object in the source so findings can point at
	// the offending line instead of the document start.
	Fields Locator
	// Values, when set, tells where field values were set (see ValueLocator).
	Values ValueLocator
}

// ID returns the resource's identity as Kind/namespace/name (Kind/name when cluster-scoped).
func (r Resource) ID() string {
	return FormatID(r.Object.GetKind(), r.Object.GetNamespace(), r.name())
}

// name is the object's name, or for one the API server names (metadata.generateName,
// as Helm hooks and Argo CD sync Jobs use) its prefix and "*".
func (r Resource) name() string {
	if n := r.Object.GetName(); n != "" {
		return n
	}
	if g := r.Object.GetGenerateName(); g != "" {
		return g + "*"
	}
	return ""
}

// key is the identity used to detect duplicates: apiVersion's group, kind, namespace, name.
func (r Resource) key() string {
	gvk := r.Object.GroupVersionKind()
	return gvk.Group + "|" + FormatID(gvk.Kind, r.Object.GetNamespace(), r.Object.GetName())
}

// FormatID formats Kind/namespace/name, omitting an empty namespace.
func FormatID(kind, namespace, name string) string {
	if namespace == "" {
		return kind + "/" + name
	}
	return kind + "/" + namespace + "/" + name
}

// position returns the origin of the field at path (Kyverno's "/a/b/0/" form), falling
// back to the deepest field of the path that exists, then to the resource itself.
func (r Resource) position(path string) Origin {
	if path == "" {
		return r.Origin
	}
	return r.FieldOrigin(splitPath(path))
}

// FieldOrigin is where the field at segs ("spec", "containers", "0", ...) comes from:
// the field itself when the locator knows it (possibly in another file, see
// FileLocator), else the deepest known field of the path, else the resource.
func (r Resource) FieldOrigin(segs []string) Origin {
	o := r.Origin
	if r.Fields == nil {
		return o
	}
	if fl, ok := r.Fields.(FileLocator); ok {
		if file, line, col, ok := fl.LocateFile(segs); ok {
			o.File, o.Line, o.Col = file, line, col
			return o
		}
	}
	for n := len(segs); n > 0; n-- {
		if line, col, ok := r.Fields.Locate(segs[:n]); ok {
			o.Line, o.Col = line, col
			return o
		}
	}
	return o
}

func splitPath(path string) []string {
	path = strings.Trim(path, "/")
	if path == "" {
		return nil
	}
	return strings.Split(path, "/")
}

// fieldPath turns Kyverno's "/spec/containers/0/image/" into "spec.containers[0].image".
func fieldPath(path string) string { return FieldPath(splitPath(path)) }

// FieldPath prints a field path the way users write it: ("spec", "containers", "0",
// "image") is spec.containers[0].image.
func FieldPath(segs []string) string {
	var b strings.Builder
	for _, s := range segs {
		if _, err := strconv.Atoi(s); err == nil {
			fmt.Fprintf(&b, "[%s]", s)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// clusterScoped are the built-in and common kinds that have no namespace.
var clusterScoped = map[string]bool{
	"Namespace": true, "Node": true, "PersistentVolume": true, "ClusterRole": true,
	"ClusterRoleBinding": true, "CustomResourceDefinition": true, "StorageClass": true,
	"PriorityClass": true, "ValidatingWebhookConfiguration": true, "MutatingWebhookConfiguration": true,
	"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
	"MutatingAdmissionPolicy": true, "MutatingAdmissionPolicyBinding": true, "APIService": true,
	"CSIDriver": true, "CSINode": true, "VolumeAttachment": true, "IngressClass": true,
	"RuntimeClass": true, "PodSecurityPolicy": true, "CertificateSigningRequest": true,
	"ComponentStatus": true, "FlowSchema": true, "PriorityLevelConfiguration": true,
	"ClusterPolicy": true, "ClusterPolicyReport": true, "ClusterCleanupPolicy": true,
	"ValidatingPolicy": true, "ClusterReport": true, "ClusterIssuer": true, "ClusterSecretStore": true,
}

// ClusterScoped reports whether objects of a kind have no namespace.
func ClusterScoped(kind string) bool { return clusterScoped[kind] }

// IsRemoteFile reports whether an origin's file is in a remote source: chart@version:file
// (a fetched chart) or url@commit:file (another Git repository), not this repository.
func IsRemoteFile(file string) bool {
	colon := strings.LastIndex(file, ":")
	if colon < 0 {
		return false
	}
	at := strings.LastIndex(file[:colon], "@")
	return at > 0 && !strings.Contains(file[at:colon], "/")
}
