package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// check, report and sync parse -o the same way (report.Formats.Parse): each with its
// own formats, the same errors, before anything is read or contacted.
func TestOutputFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"report", "-o", "sarif"}, `-o sarif: unknown output format "sarif"; the formats are html, json, markdown, text`},
		{[]string{"report", "-o", "html", "-o", "text"}, "-o text: html already goes to stdout"},
		{[]string{"report", "-o", "html=r.html", "-o", "json=./r.html"}, "r.html is already written by -o html"},
		{[]string{"report", "-o", "html="}, "-o html=: no file after ="},
		{[]string{"sync", "-o", "html"}, `unknown output format "html"; the formats are json, text`},
		{[]string{"sync", "-o", "json", "-o", "text"}, "-o text: json already goes to stdout"},
		{[]string{"check", "-o", "html", "."}, `unknown output format "html"; the formats are codequality, json, junit, markdown, sarif, text`},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tt.args, &stdout, &stderr)
		if code != exitError || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tt.args, code, stderr.String(), exitError, tt.want)
		}
	}
}
