package policy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// maskKey keys the digests that stand for Secret values: random per process, so equal
// values show as equal within one run (a changed value shows as changed) and a digest
// cannot be brute-forced afterwards.
var maskKey = func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}()

// MaskValue is what every output shows instead of a Secret value: "<masked 1a2b3c4d>",
// a digest keyed per run. Equal values give equal digests within one run; the value
// cannot be recovered from it.
func MaskValue(v any) string {
	m := hmac.New(sha256.New, maskKey)
	fmt.Fprint(m, v)
	return "<masked " + hex.EncodeToString(m.Sum(nil))[:8] + ">"
}

// lastApplied is kubectl's annotation holding the whole object as last applied: in a
// Secret it carries the values again.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// IsSecret reports whether obj (an object's fields, as in unstructured.Unstructured) is
// a Secret: kind Secret, in any API group, so a look-alike custom resource is masked
// too rather than printed.
func IsSecret(obj map[string]any) bool {
	k, _ := obj["kind"].(string)
	return k == "Secret"
}

// MaskSecret is the one way a Secret is shown: a copy of obj whose data and stringData
// values, and kubectl's last-applied annotation, are replaced by MaskValue. The keys
// stay, so a diff shows which key was added, removed or changed, never a value. obj is
// not modified (the copy shares the fields it does not mask); anything but a Secret is
// returned as it is.
func MaskSecret(obj map[string]any) map[string]any {
	if !IsSecret(obj) {
		return obj
	}
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		out[k] = v
	}
	for _, field := range []string{"data", "stringData"} {
		if m, ok := obj[field].(map[string]any); ok {
			masked := make(map[string]any, len(m))
			for k, v := range m {
				masked[k] = MaskValue(v)
			}
			out[field] = masked
		}
	}
	meta, _ := obj["metadata"].(map[string]any)
	ann, _ := meta["annotations"].(map[string]any)
	if v, has := ann[lastApplied]; has {
		m := make(map[string]any, len(meta))
		for k, x := range meta {
			m[k] = x
		}
		a := make(map[string]any, len(ann))
		for k, x := range ann {
			a[k] = x
		}
		a[lastApplied] = MaskValue(v)
		m["annotations"] = a
		out["metadata"] = m
	}
	return out
}
