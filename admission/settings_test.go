package admission

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeHonoursActions: serve --repo applies .gitgate.yaml actions: exactly as check
// does. A :latest image under disallow-latest-tag: Audit is a warning, not a denial,
// asked through a real AdmissionReview over HTTP.
func TestServeHonoursActions(t *testing.T) {
	bad := deployment("web", func(pod, c map[string]any) { c["image"] = "registry.example.com/nginx:latest" })
	ask := func(cfg string) (bool, []string, string) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, ".gitgate.yaml"), cfg)
		r := NewReloader(ReloaderOptions{Sources: []Source{RepoSource{Root: root}}})
		if _, err := r.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		srv := serve(t, r.Gate(), DefaultHandlerOptions())
		resp := post(t, srv.URL, review(t, bad, reviewOpts{}))
		msg := ""
		if resp.Result != nil {
			msg = resp.Result.Message
		}
		return resp.Allowed, resp.Warnings, msg
	}
	if ok, _, msg := ask("registries: [registry.example.com]\n"); ok || !strings.Contains(msg, "disallow-latest-tag") {
		t.Fatalf("without actions: allowed=%v msg=%q; want a denial by disallow-latest-tag", ok, msg)
	}
	ok, warnings, msg := ask("registries: [registry.example.com]\nactions:\n  disallow-latest-tag: Audit\n")
	if !ok {
		t.Fatalf("with disallow-latest-tag: Audit the webhook denied: %s", msg)
	}
	if !strings.Contains(strings.Join(warnings, "\n"), "disallow-latest-tag") {
		t.Errorf("with disallow-latest-tag: Audit, want a warning naming it; got %q", warnings)
	}
}
