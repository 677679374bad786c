package policy

import (
	"regexp"
	"strings"
)

var (
	kyvernoPrefix = regexp.MustCompile(`^(?:validation (?:error|failure): )+`)
	kyvernoSuffix = regexp.MustCompile(`\.?\s*rule [^ ]+ failed at path /\S*`)
)

// CleanMessage drops Kyverno's "validation error:" prefix and "rule X failed at path"
// tail: the text output says both in its own columns.
func CleanMessage(msg string) string {
	msg = kyvernoPrefix.ReplaceAllString(msg, "")
	msg = kyvernoSuffix.ReplaceAllString(msg, "")
	return strings.TrimSpace(msg)
}

// FindingLine formats one finding the way the Go toolchain prints errors:
// file:line:col: Kind/namespace/name: policy/rule: message (at field).
func FindingLine(r Result) string {
	var b strings.Builder
	b.WriteString(r.Origin.String())
	b.WriteString(": ")
	b.WriteString(r.ResourceID())
	b.WriteString(": ")
	b.WriteString(r.Policy)
	if r.Rule != "" && r.Rule != r.Policy {
		b.WriteString("/" + r.Rule)
	}
	b.WriteString(": ")
	switch {
	case r.Status == StatusError:
		b.WriteString("error: ")
	case !r.Blocking():
		b.WriteString("warning: ")
	}
	b.WriteString(CleanMessage(r.Message))
	if r.Path != "" {
		b.WriteString(" (at " + r.Path)
		if len(r.ValuesFrom) > 0 {
			b.WriteString("; value from " + ValuesFromText(r.ValuesFrom))
		}
		b.WriteString(")")
	}
	return b.String()
}

// ValuesFromText lists where a value was set: "values/prod.yaml:4:8 (image.tag)", joined
// by " and ".
func ValuesFromText(vs []ValueOrigin) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.Origin.String()
		if v.Key != "" {
			parts[i] += " (" + v.Key + ")"
		}
	}
	return strings.Join(parts, " and ")
}
