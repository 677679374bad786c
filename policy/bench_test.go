package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/policy/crdbundle"
)

// BenchmarkCheckCorpus checks a corpus written by ../shared/bench/gencorpus -flat N:
//
//	GITGATE_BENCH_CORPUS=/tmp/corpus/flat1000 go test ./policy -run - -bench CheckCorpus
//
// hack/bench/check.sh runs the whole comparison with Kyverno's CLI.
func BenchmarkCheckCorpus(b *testing.B) {
	dir := os.Getenv("GITGATE_BENCH_CORPUS")
	if dir == "" {
		b.Skip("set GITGATE_BENCH_CORPUS to a gencorpus -flat directory")
	}
	policies := os.Getenv("GITGATE_BENCH_POLICIES")
	if policies == "" {
		policies = "policies"
	}
	set, err := Load(os.DirFS(dir), policies)
	if err != nil {
		b.Fatal(err)
	}
	eng, err := NewEngine(set, Options{})
	if err != nil {
		b.Fatal(err)
	}
	src := Source{FS: os.DirFS(dir), Root: "deployments", Display: filepath.Join(dir, "deployments")}
	b.ResetTimer()
	for b.Loop() {
		rep := eng.Check(context.Background(), []Source{src}, DefaultCheckOptions())
		if len(rep.Errors) > 0 {
			b.Fatal(rep.Errors[0])
		}
		b.ReportMetric(float64(rep.Summary.Resources), "resources/op")
	}
}

// bundledBenchDocs are the shapes of hack/bench/kubeconform.sh: n custom resources of
// three bundled kinds (Argo Rollouts Rollout, cert-manager Certificate, Argo CD
// Application), every tenth invalid: a Rollout with replicass (unknown field), a
// Certificate without secretName (required), an Application with destinaton for
// destination (unknown field and a missing required one). invalid are the names of the
// invalid objects.
func bundledBenchDocs(n int) (yamlDocs string, invalid map[string]bool) {
	var sb strings.Builder
	invalid = map[string]bool{}
	for i := 1; i <= n; i++ {
		bad := i%10 == 0
		sb.WriteString("---\n")
		switch i % 3 {
		case 0:
			replicas := "replicas"
			if bad {
				replicas = "replicass"
			}
			fmt.Fprintf(&sb, `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: r%[1]d, namespace: shop}
spec:
  %[2]s: 2
  selector: {matchLabels: {app: r%[1]d}}
  template:
    metadata: {labels: {app: r%[1]d}}
    spec:
      containers: [{name: c, image: "registry.example.com/web:1", ports: [{containerPort: 8080}]}]
  strategy: {canary: {steps: [{setWeight: 20}, {pause: {duration: 1m}}]}}
`, i, replicas)
			if bad {
				invalid[fmt.Sprintf("r%d", i)] = true
			}
		case 1:
			secret := fmt.Sprintf("\n  secretName: c%d-tls", i)
			if bad {
				secret = ""
				invalid[fmt.Sprintf("c%d", i)] = true
			}
			fmt.Fprintf(&sb, `apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: c%[1]d, namespace: shop}
spec:%[2]s
  dnsNames: [c%[1]d.example.com]
  issuerRef: {name: letsencrypt, kind: ClusterIssuer}
`, i, secret)
		default:
			dest := "destination"
			if bad {
				dest = "destinaton"
				invalid[fmt.Sprintf("a%d", i)] = true
			}
			fmt.Fprintf(&sb, `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: a%[1]d, namespace: argocd}
spec:
  project: default
  source: {repoURL: "https://git.example.com/x.git", path: apps/a%[1]d, targetRevision: HEAD}
  %[2]s: {server: "https://kubernetes.default.svc", namespace: a%[1]d}
`, i, dest)
		}
	}
	return sb.String(), invalid
}

// withBundledCRDs sets BundledCRD to the embedded bundle for the test.
func withBundledCRDs(t testing.TB) {
	old := BundledCRD
	BundledCRD = crdbundle.Lookup
	t.Cleanup(func() { BundledCRD = old })
}

// BenchmarkCRDBundled validates the custom resources of hack/bench/kubeconform.sh (3,000
// an operation) against the bundled CRDs with CRDSet.Validate, one after the other; the
// CRDs are compiled before the timer starts. Profile it with
//
//	go test ./policy -run - -bench CRDBundled -cpuprofile cpu.out -memprofile mem.out
func BenchmarkCRDBundled(b *testing.B) {
	withBundledCRDs(b)
	docs, invalid := bundledBenchDocs(3000)
	rs, err := Decode("bench.yaml", []byte(docs))
	if err != nil {
		b.Fatal(err)
	}
	set := NewCRDSet()
	ctx := context.Background()
	for _, r := range rs[:3] {
		set.Validate(ctx, r)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		bad := 0
		for _, r := range rs {
			res, checked := set.Validate(ctx, r)
			if !checked {
				b.Fatalf("%s not checked", r.Object.GetName())
			}
			if len(res) > 0 {
				bad++
			}
		}
		if bad != len(invalid) {
			b.Fatalf("%d invalid objects, want %d", bad, len(invalid))
		}
	}
	b.ReportMetric(float64(len(rs)), "objects/op")
}
