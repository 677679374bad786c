package reconcile

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/policy"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// FieldDiff is one field that differs between what Git wants (after a server-side dry-run
// apply, so API defaults agree) and what the cluster holds.
type FieldDiff struct {
	// Path is a JSON pointer: /spec/replicas.
	Path string `json:"path"`
	// Desired and Live are the values (absent: nil, with the *Set flag false). Secret data
	// is masked (policy.MaskValue).
	Desired    any  `json:"desired,omitempty"`
	Live       any  `json:"live,omitempty"`
	DesiredSet bool `json:"desiredSet"`
	LiveSet    bool `json:"liveSet"`
	// Managers are the field managers that own the live field (kubectl, kube-controller-manager).
	Managers []string `json:"managers,omitempty"`
}

func (d FieldDiff) String() string {
	show := func(v any, set bool) string {
		if !set {
			return "(absent)"
		}
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // a masked value reads <masked 1a2b3c4d>, not \u003cmasked
		_ = enc.Encode(v)
		s := strings.TrimSuffix(b.String(), "\n")
		if len(s) > 80 {
			s = s[:77] + "..."
		}
		return s
	}
	s := fmt.Sprintf("%s: %s -> live %s", d.Path, show(d.Desired, d.DesiredSet), show(d.Live, d.LiveSet))
	if len(d.Managers) > 0 {
		s += " (changed by " + strings.Join(d.Managers, ", ") + ")"
	}
	return s
}

// volatile are fields the API server owns; they never count as drift.
var volatile = [][]string{
	{"metadata", "managedFields"}, {"metadata", "resourceVersion"}, {"metadata", "generation"},
	{"metadata", "creationTimestamp"}, {"metadata", "uid"}, {"metadata", "selfLink"},
	{"metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"},
	{"metadata", "annotations", "deployment.kubernetes.io/revision"}, {"status"},
}

// normalize copies an object without the fields the API server owns.
func normalize(u *unstructured.Unstructured) map[string]any {
	m := u.DeepCopy().Object
	for _, p := range volatile {
		unstructured.RemoveNestedField(m, p...)
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		for _, k := range []string{"annotations", "labels"} {
			if a, ok := md[k].(map[string]any); ok && len(a) == 0 {
				delete(md, k)
			}
		}
	}
	return m
}

// removePointer deletes the field at a JSON pointer, if present.
func removePointer(m map[string]any, ptr string) {
	parts := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for i := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(parts[i], "~1", "/"), "~0", "~")
	}
	var cur any = m
	for i, p := range parts {
		last := i == len(parts)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				delete(c, p)
				return
			}
			cur = c[p]
		case []any:
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n >= len(c) {
				return
			}
			if last {
				c[n] = nil // keep indexes stable; both sides get the same treatment
				return
			}
			cur = c[n]
		default:
			return
		}
	}
}

func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// diffValues lists the leaves that differ between desired and live.
func diffValues(p string, desired, live any, dSet, lSet bool, out *[]FieldDiff) {
	dm, dok := desired.(map[string]any)
	lm, lok := live.(map[string]any)
	if dok && lok {
		keys := map[string]bool{}
		for k := range dm {
			keys[k] = true
		}
		for k := range lm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			dv, dIn := dm[k]
			lv, lIn := lm[k]
			diffValues(p+"/"+escape(k), dv, lv, dIn, lIn, out)
		}
		return
	}
	dl, dok := desired.([]any)
	ll, lok := live.([]any)
	if dok && lok && len(dl) == len(ll) {
		for i := range dl {
			diffValues(p+"/"+strconv.Itoa(i), dl[i], ll[i], true, true, out)
		}
		return
	}
	if dSet == lSet && reflect.DeepEqual(desired, live) {
		return
	}
	*out = append(*out, FieldDiff{Path: p, Desired: desired, Live: live, DesiredSet: dSet, LiveSet: lSet})
}

// managedPaths lists, per manager, the JSON pointers of the fields it owns in live
// (map fields only; list items are owned as a whole list entry and not resolved).
func managedPaths(live *unstructured.Unstructured) map[string][]string {
	out := map[string][]string{}
	for _, mf := range live.GetManagedFields() {
		if mf.FieldsV1 == nil {
			continue
		}
		var tree map[string]any
		if err := json.Unmarshal(mf.FieldsV1.Raw, &tree); err != nil {
			continue
		}
		var walk func(prefix string, t map[string]any)
		walk = func(prefix string, t map[string]any) {
			for k, v := range t {
				name, ok := strings.CutPrefix(k, "f:")
				if !ok {
					continue
				}
				p := prefix + "/" + escape(name)
				sub, _ := v.(map[string]any)
				leaf := true
				for sk := range sub {
					if strings.HasPrefix(sk, "f:") {
						leaf = false
					}
				}
				if leaf {
					out[mf.Manager] = append(out[mf.Manager], p)
				} else {
					walk(p, sub)
				}
			}
		}
		walk("", tree)
	}
	return out
}

func under(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// Compare is the field-level difference between the object Git wants as the API server
// would store it (the result of a dry-run apply) and the live object. Fields at the
// ignore pointers, and fields owned by the ignored managers, do not count.
func Compare(desired, live *unstructured.Unstructured, ignorePointers, ignoreManagers []string) []FieldDiff {
	d, l := normalize(desired), normalize(live)
	for _, p := range ignorePointers {
		removePointer(d, p)
		removePointer(l, p)
	}
	var diffs []FieldDiff
	diffValues("", d, l, true, true, &diffs)
	if len(diffs) == 0 {
		return nil
	}
	owned := managedPaths(live)
	ignored := map[string]bool{}
	for _, m := range ignoreManagers {
		ignored[m] = true
	}
	out := diffs[:0]
	for _, df := range diffs {
		skip := false
		for mgr, paths := range owned {
			for _, p := range paths {
				if under(df.Path, p) || under(p, df.Path) {
					if ignored[mgr] {
						skip = true
					} else if mgr != FieldManager && !contains(df.Managers, mgr) {
						df.Managers = append(df.Managers, mgr)
					}
				}
			}
		}
		if !skip {
			sort.Strings(df.Managers)
			out = append(out, df)
		}
	}
	if policy.IsSecret(live.Object) || policy.IsSecret(desired.Object) {
		// Compared as they are (a masked digest is short and could collide), shown masked.
		for i := range out {
			if under(out[i].Path, "/data") || under(out[i].Path, "/stringData") {
				if out[i].DesiredSet {
					out[i].Desired = policy.MaskValue(out[i].Desired)
				}
				if out[i].LiveSet {
					out[i].Live = policy.MaskValue(out[i].Live)
				}
			}
		}
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
