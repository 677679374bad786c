package policy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
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

// minBareSecret is the length under which a Secret value is masked in text only where
// it stands alone (not inside a longer word): a value such as "1" or "yes" would
// otherwise mask every digit or word of a message while hiding next to nothing.
const minBareSecret = 4

// SecretValues are the strings that would reveal the values of the Secrets among objs
// (others are ignored): each data value as written (base64) and decoded, each
// stringData value as written and base64-encoded, JSON-escaped where that differs, and
// kubectl's last-applied annotation. Longest first, so a value containing another is
// replaced whole.
func SecretValues(objs ...map[string]any) []string {
	// Every evaluated object comes through here (MaskResults): most are not Secrets,
	// and they cost one kind check, no allocation.
	if !slices.ContainsFunc(objs, func(o map[string]any) bool { return o != nil && IsSecret(o) }) {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s == "" || seen[s] {
			return
		}
		seen[s] = true
		out = append(out, s)
		if b, err := json.Marshal(s); err == nil { // as a JSON string prints it
			if esc := string(b[1 : len(b)-1]); esc != s && !seen[esc] {
				seen[esc] = true
				out = append(out, esc)
			}
		}
	}
	for _, obj := range objs {
		if obj == nil || !IsSecret(obj) {
			continue
		}
		if m, ok := obj["data"].(map[string]any); ok {
			for _, v := range m {
				s, ok := v.(string)
				if !ok {
					continue
				}
				add(s)
				if d, err := base64.StdEncoding.DecodeString(s); err == nil {
					add(string(d))
				}
			}
		}
		if m, ok := obj["stringData"].(map[string]any); ok {
			for _, v := range m {
				s, ok := v.(string)
				if !ok {
					continue
				}
				add(s)
				add(base64.StdEncoding.EncodeToString([]byte(s)))
			}
		}
		meta, _ := obj["metadata"].(map[string]any)
		ann, _ := meta["annotations"].(map[string]any)
		if s, ok := ann[lastApplied].(string); ok {
			add(s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i]) != len(out[j]) {
			return len(out[i]) > len(out[j])
		}
		return out[i] < out[j]
	})
	return out
}

// MaskText replaces every occurrence of the values (SecretValues) in s with
// MaskValue's shape, so text that quotes a Secret (a policy message with
// {{request.object.stringData.token}}, an error) shows a digest, never the value.
func MaskText(s string, values []string) string {
	for _, v := range values {
		if !strings.Contains(s, v) {
			continue
		}
		if len(v) >= minBareSecret {
			s = strings.ReplaceAll(s, v, MaskValue(v))
			continue
		}
		s = replaceWord(s, v, MaskValue(v))
	}
	return s
}

// replaceWord replaces v in s where it is not part of a longer run of letters and
// digits.
func replaceWord(s, v, with string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, v)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(v)
		alone := (i == 0 || !isWordByte(s[i-1])) && (end == len(s) || !isWordByte(s[end]))
		b.WriteString(s[:i])
		if alone {
			b.WriteString(with)
		} else {
			b.WriteString(v)
		}
		s = s[end:]
	}
}

func isWordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

// MaskResults masks, in place, the Secret values of objs (the evaluated object and, in
// an admission request, the old one) wherever a result's text may quote them: its
// message and its exception/waiver note. It is applied where results are made
// (Engine.Evaluate and the schema check), so every output format, the webhook's deny
// message and sync/report see masked text.
func MaskResults(rs []Result, objs ...map[string]any) []Result {
	values := SecretValues(objs...)
	if len(values) == 0 {
		return rs
	}
	for i := range rs {
		rs[i].Message = MaskText(rs[i].Message, values)
		rs[i].Exception = MaskText(rs[i].Exception, values)
	}
	return rs
}

// maskedError is an error whose text has Secret values masked; it still unwraps to the
// original (an *InputError keeps its origin, which callers may rewrite: the text is
// masked when printed, not when wrapped).
type maskedError struct {
	err    error
	values []string
}

func (e *maskedError) Error() string { return MaskText(e.err.Error(), e.values) }
func (e *maskedError) Unwrap() error { return e.err }

// MaskErrors masks the Secret values of resources in the text of errs (errors about
// those resources, or about the target that rendered them).
func MaskErrors(errs []error, resources []Resource) []error {
	if len(errs) == 0 {
		return errs
	}
	var objs []map[string]any
	for _, r := range resources {
		if r.Object != nil && IsSecret(r.Object.Object) {
			objs = append(objs, r.Object.Object)
		}
	}
	values := SecretValues(objs...)
	if len(values) == 0 {
		return errs
	}
	out := make([]error, len(errs))
	for i, err := range errs {
		out[i] = &maskedError{err: err, values: values}
	}
	return out
}

// SplitInputError is an error as a report shows it apart from its position: the
// *InputError's origin and its message without it, with the Secret values MaskErrors
// masked still masked. ok is false for an error that is not an *InputError.
func SplitInputError(err error) (origin Origin, msg string, ok bool) {
	var ie *InputError
	if !errors.As(err, &ie) {
		return Origin{}, "", false
	}
	msg = ie.Err.Error()
	var m *maskedError
	if errors.As(err, &m) {
		msg = MaskText(msg, m.values)
	}
	return ie.Origin, msg, true
}
