package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/gitgate/gitgate/policy"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type testOptions struct {
	registries []string
	all        bool
}

func (o *testOptions) BindFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&o.registries, "registry", nil, "allowed image registry made available to policies as gitgate.registries (a test's values file can set it too)")
	fs.BoolVar(&o.all, "all", false, "print every row, not only mismatches")
}

func newTestCmd(stdout, stderr io.Writer) *cobra.Command {
	o := &testOptions{}
	cmd := &cobra.Command{
		Use:   "test PATH...",
		Short: "Run Kyverno CLI test manifests (kyverno-test.yaml) so policies are tested like code",
		Long: `Test finds every kyverno-test.yaml (cli.kyverno.io/v1alpha1 Test) under the given
directories (or the given kyverno-test.yaml files) and runs it with gitgate's engine as
'kyverno test' does: the listed policies, resources, exceptions, values and user info;
mutate rules applied first, policy after policy, and validation run on the mutated
object; generate rules run against the test's cloneSourceResource; mutateExisting rules
and MutatingPolicies patch the test's targetResources (rules read them, with its
resources, from an in-memory API). Each expected result
is compared with the actual one, and patchedResources, generatedResource(s) with the
objects mutate and generate rules produced (matched by apiVersion, kind, namespace and
name; empty fields and generate labels ignored, as 'kyverno test' does).

A test stands in for the cluster as 'kyverno test' lets it, offline: apiCallResponses
answer apiCall context entries (by url or urlPath, and method) and the CEL http library;
globalContextEntries answer globalReference entries and CEL globalContext.Get (data,
resources or resourceFiles, with fieldPath and projections); clusterResources (files of
cli.kyverno.io/v1alpha1 ClusterResource: objects and CRDs) are an in-memory API that
apiCall and configMap entries and CEL resource.Get/List read, and where each resource's
Namespace (its labels) must be. A lookup the test does not supply is not loaded, as in
'kyverno test', and nothing is ever contacted (an http call with no canned response is
refused).

ValidatingPolicies of payloads (spec.evaluation.mode JSON, HTTP, Envoy) are evaluated on the
test's jsonPayloads (.json, or .yaml of one document; a JSON-mode policy also judges the
test's resources as raw JSON), httpPayloads and envoyPayloads (an Envoy CheckRequest,
decoded strictly), as 'kyverno test' does; a result names its payload as the test does.

An expectation gitgate did not evaluate is a failing row saying why ("not evaluated:
..."), never a pass: verifyImages rules, policy kinds gitgate does not run
(ImageValidatingPolicy), an HTTP or Envoy policy that calls the CEL http library (its
client would connect), an expected object missing from its file. Test,
values and user info files are decoded strictly: an unknown field is an error at its
file:line.

Exit codes: 0 all pass, 1 a result did not match, 2 a test could not run.`,
		Example: `  gitgate test policies/
  gitgate test --all ./kyverno-policies/pod-security

  # a kyverno-test.yaml answering a policy's apiCall and its global context entry:
  #   apiCallResponses:
  #   - url: https://scanner.example/v1/verdict
  #     method: GET
  #     response: {statusCode: 200, body: {approved: true}}
  #   globalContextEntries:
  #   - name: tier-settings
  #     data: {tiers: [{tier: small, maxReplicas: 3}]}
  #   clusterResources: [cluster.yaml]   # kind: ClusterResource, spec.resources / spec.crds
  gitgate test policies/scanner-gate/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, args, stdout, stderr)
		},
	}
	o.BindFlags(cmd.Flags())
	return cmd
}

func (o *testOptions) run(cmd *cobra.Command, args []string, stdout, stderr io.Writer) error {
	var vars map[string]any
	if regs := policy.RegistryPatterns(o.registries); len(regs) > 0 {
		vars = map[string]any{policy.RegistriesVariable: regs}
	}
	total := &policy.TestOutcome{}
	for _, a := range args {
		src := osSource(a)
		out := policy.RunTests(cmd.Context(), src.FS, src.Root, policy.TestOptions{Variables: vars, Display: src.Display})
		total.Rows = append(total.Rows, out.Rows...)
		total.Errors = append(total.Errors, out.Errors...)
		total.Tests += out.Tests
		total.Warnings = append(total.Warnings, out.Warnings...)
	}
	seen := map[string]bool{}
	for _, w := range total.Warnings {
		if !seen[w] {
			seen[w] = true
			fmt.Fprintf(stderr, "warning: %s\n", w)
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TEST\tPOLICY\tRULE\tRESOURCE\tEXPECTED\tACTUAL\tRESULT")
	for _, r := range total.Rows {
		if r.Pass && !o.all {
			continue
		}
		verdict := "ok"
		if !r.Pass {
			verdict = "MISMATCH: " + r.Message
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Test, r.Policy, r.Rule, r.Resource, r.Expected, r.Actual, verdict)
	}
	tw.Flush()
	for _, e := range total.Errors {
		fmt.Fprintf(stderr, "%v\n", e)
	}
	failed := total.Failed()
	fmt.Fprintf(stdout, "%d tests, %d results: %d passed, %d failed\n", total.Tests, len(total.Rows), len(total.Rows)-failed, failed)
	switch {
	case len(total.Errors) > 0:
		return exitCodeError{exitError}
	case total.Tests == 0:
		fmt.Fprintf(stderr, "gitgate test: no %s found\n", policy.TestFileName)
		return exitCodeError{exitError}
	case failed > 0:
		return exitCodeError{exitViolations}
	}
	return nil
}
