package policy

import "testing"

func TestIsRemoteFile(t *testing.T) {
	for file, want := range map[string]bool{
		"web@1.2.9:templates/deploy.yaml":                              true,
		"http://127.0.0.1:8080/repo.git@0123456789ab:app/cm.yaml":      true,
		"git@github.com:org/repo@0123456789ab:base/kustomization.yaml": true,
		"apps/web/deploy.yaml":                                         false,
		"apps/a@b/c.yaml":                                              false,
	} {
		if got := IsRemoteFile(file); got != want {
			t.Errorf("IsRemoteFile(%q) = %v", file, got)
		}
	}
}
