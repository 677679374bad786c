package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCheckKubeVersion: the Kubernetes version comes from --kube-version, else
// kubeVersion in .gitgate.yaml, else the default; a batch/v1beta1 CronJob blocks for a
// cluster that no longer serves it, warns for one that still does, and a version that
// does not parse is exit 2 naming where it was set.
func TestCheckKubeVersion(t *testing.T) {
	t.Setenv("CI", "1")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		".gitgate.yaml": "kubeVersion: '1.23'\n",
		"apps/nightly.yaml": "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: nightly, namespace: shop}\nspec:\n" +
			"  schedule: '0 1 * * *'\n  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}}\n",
	})
	t.Chdir(dir)
	runCheck := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"check", "--no-builtin"}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, stderr := runCheck("apps")
	if code != exitClean || !strings.Contains(out, "apps/nightly.yaml:1:1: CronJob/shop/nightly: api-versions/deprecated: warning: batch/v1beta1 CronJob is deprecated since Kubernetes 1.21 and will no longer be served in Kubernetes 1.25: use batch/v1 CronJob") {
		t.Errorf("kubeVersion 1.23: exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, stderr = runCheck("--kube-version", "v1.30.2", "apps")
	if code != exitViolations || !strings.Contains(out, "api-versions/removed: batch/v1beta1 CronJob is no longer served since Kubernetes 1.25 (the target is 1.30)") {
		t.Errorf("--kube-version 1.30: exit %d\n%s\n%s", code, out, stderr)
	}
	if strings.Contains(out, "not schema-checked") {
		t.Errorf("a removed version counted as not schema-checked:\n%s", out)
	}
	code, _, stderr = runCheck("--kube-version", "latest", "apps")
	if code != exitError || !strings.Contains(stderr, "--kube-version: kubernetes version \"latest\": want MAJOR.MINOR") {
		t.Errorf("--kube-version latest: exit %d\n%s", code, stderr)
	}
	writeFiles(t, dir, map[string]string{".gitgate.yaml": "kubeVersion: '2.1'\n"})
	code, _, stderr = runCheck("apps")
	if code != exitError || !strings.Contains(stderr, ".gitgate.yaml kubeVersion: kubernetes version \"2.1\"") {
		t.Errorf("kubeVersion 2.1: exit %d\n%s", code, stderr)
	}
}
