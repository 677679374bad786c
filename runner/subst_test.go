package runner

import (
	"strings"
	"testing"
)

func TestSubstitute(t *testing.T) {
	v := &vars{
		params: map[string]ParamValue{
			"s":    {Type: ParamTypeString, StringVal: "val"},
			"a.b":  {Type: ParamTypeString, StringVal: "dotted"},
			"list": {Type: ParamTypeArray, ArrayVal: []string{"x", "y"}},
			"obj":  {Type: ParamTypeObject, ObjectVal: map[string]string{"k": "v"}},
		},
		results:    map[string]string{"r": "/res/r"},
		workspaces: map[string]wsVar{"w": {path: "/ws", bound: true}, "opt": {}},
		context:    map[string]string{"pipelineRun.name": "run-1"},
	}
	for _, tc := range []struct{ in, want, err string }{
		{in: "plain", want: "plain"},
		{in: "$(params.s)-$(params.s)", want: "val-val"},
		{in: `$(params["a.b"]) $(params['a.b'])`, want: "dotted dotted"},
		{in: "$(params.list[1])", want: "y"},
		{in: "$(params.obj.k)", want: "v"},
		{in: "$(workspaces.w.path) $(workspaces.opt.bound) $(workspaces.w.bound)", want: "/ws false true"},
		{in: "$(context.pipelineRun.name)", want: "run-1"},
		// The shell's own $(...) is left alone; a Tekton variable inside it is not.
		{in: "DIGEST=$(cat $(results.r.path)) $(date +%s) $(x)", want: "DIGEST=$(cat /res/r) $(date +%s) $(x)"},
		{in: "$(params.nope)", err: `unknown param "nope"`},
		{in: "$(params.list)", err: "param list is an array"},
		{in: "$(params.list[*])", err: "can only be expanded as a whole element"},
		{in: "$(params.obj.missing)", err: `object param obj has no key "missing"`},
		{in: "$(results.r)", err: "write a result to $(results.<name>.path)"},
		{in: "$(tasks.t.results.r)", err: "a Task cannot name pipeline tasks"},
		{in: "$(steps.s.exitCode.path)", err: "not supported by gitgate run"},
		{in: "$(params.s[x])", err: "malformed variable"},
	} {
		got, err := substitute(tc.in, v.resolve)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("substitute(%q): error %v, want one containing %q", tc.in, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("substitute(%q): %v", tc.in, err)
		case tc.err == "" && got != tc.want:
			t.Errorf("substitute(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	got, err := substituteList([]string{"-a", "$(params.list[*])", "pre-$(params.s)"}, v.resolve, v.array)
	if err != nil || strings.Join(got, "|") != "-a|x|y|pre-val" {
		t.Errorf("substituteList = %q, %v", got, err)
	}
}

// FuzzSubstitute: any string substitutes without panicking, and a string with no
// Tekton variable comes back unchanged.
func FuzzSubstitute(f *testing.F) {
	for _, s := range []string{"$(params.s)", "$(params.list[*])", `$(params["a.b"])`, "$(cat $(results.r.path))", "$(", "$(params.[", "$(params.x[99999999999999999999])"} {
		f.Add(s)
	}
	v := &vars{params: map[string]ParamValue{"s": {StringVal: "v"}, "list": {Type: ParamTypeArray, ArrayVal: []string{"a"}}}, results: map[string]string{"r": "/r"}}
	f.Fuzz(func(t *testing.T, s string) {
		out, _ := substitute(s, v.resolve)
		if refs, err := findRefs(s); err == nil && len(refs) == 0 && out != s {
			t.Errorf("substitute(%q) = %q with no variable in it", s, out)
		}
		_, _ = substituteList([]string{s}, v.resolve, v.array)
	})
}

// FuzzLoad: any bytes load (or fail) without panicking.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(okTask))
	f.Add([]byte(finallyPipeline))
	f.Add([]byte("apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: p}\nspec: {tasks: [{name: a, params: [{name: x, value: {k: 1}}]}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Load([]File{{Name: "f.yaml", Data: data}})
		if err != nil {
			return
		}
		_, _ = b.Plan(PlanOptions{})
	})
}

func TestShebang(t *testing.T) {
	for in, want := range map[string]string{
		"#!/bin/sh\nset -e\n":           "/bin/sh",
		"#!/usr/bin/env sh\necho":       "/usr/bin/env|sh",
		"#! /bin/bash -eu  \n":          "/bin/bash|-eu",
		"#!/usr/bin/env python3 -u x\n": "/usr/bin/env|python3 -u x",
	} {
		if got := strings.Join(shebang(in), "|"); got != want {
			t.Errorf("shebang(%q) = %q, want %q", in, got, want)
		}
	}
}
