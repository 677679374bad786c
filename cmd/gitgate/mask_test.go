package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/report"
)

// TestSecretInPolicyMessageMaskedInEveryFormat: a policy message quoting a Secret's
// value ({{request.object.stringData.token}}), a base64 data value in another, and a
// Secret that fails the schema check: in every -o format of check the values appear only
// masked, and the finding itself is still there.
func TestSecretInPolicyMessageMaskedInEveryFormat(t *testing.T) {
	dir := t.TempDir()
	const token, data = "TOPSECRET-9x7", "QU5PVEhFUi1TRUNSRVQtMQ==" // base64 of ANOTHER-SECRET-1
	files := map[string]string{
		"pol.yaml": `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: leak}
spec:
  rules:
  - name: leak
    match: {any: [{resources: {kinds: [Secret]}}]}
    validate:
      failureAction: Enforce
      message: "token is {{request.object.stringData.token}}, data is {{request.object.data.other}}"
      pattern: {metadata: {labels: {team: "?*"}}}
`,
		"s.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: d}\nstringData: {token: " + token + "}\ndata: {other: " + data + "}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	t.Setenv("CI", "1")
	for _, format := range report.CheckFormats().Names() {
		t.Run(format, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"check", "--no-builtin", "--policies", "pol.yaml", "-o", format, "s.yaml"}, &out, &errb)
			if code != 1 {
				t.Fatalf("exit %d, want 1 (the finding): %s", code, errb.String())
			}
			all := out.String() + errb.String()
			for _, secret := range []string{token, data, "ANOTHER-SECRET-1"} {
				if strings.Contains(all, secret) {
					t.Errorf("%s output shows %q", format, secret)
				}
			}
			if !strings.Contains(all, "leak") || !strings.Contains(all, "masked") {
				t.Errorf("%s output lacks the finding with its masked value:\n%s", format, all)
			}
		})
	}
}
