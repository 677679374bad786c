package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/internal/git/gittest"
)

// TestCheckRemoteSSH is a remote Git source over ssh end to end through the CLI, against
// an ssh server on 127.0.0.1 (gittest.SSHServer): an Argo CD Application whose repoURL
// is the ssh:// URL at a tag and a kustomize remote base in the ssh:// form at a commit
// render with --ssh-key and --known-hosts, the Application's finding at url@commit:file;
// --offline from the same cache opens no connection; a known_hosts without the server
// refuses it (exit 2) saying what to do; without remotes.allow naming it, no connection.
func TestCheckRemoteSSH(t *testing.T) {
	t.Setenv("CI", "1")
	other := gittest.Init(t, "")
	tagCommit := other.CommitFiles("v1", map[string]string{
		"app/kustomization.yaml": "resources: [deploy.yaml]\n",
		"app/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: web}\nspec:\n" +
			"  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n" +
			"      - name: web\n        image: tagonly.example.org/web:1.0.0\n",
		"base/kustomization.yaml": "resources: [cm.yaml]\n",
		"base/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: web}\ndata: {from: tag-commit}\n",
	})
	other.Tag("v1.0.0", tagCommit, "release 1.0.0")
	mainCommit := other.CommitFiles("v2", map[string]string{
		"app/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: web}\nspec:\n" +
			"  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n" +
			"      - name: web\n        image: registry.example.com/web:2.0.0\n",
		"base/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: web}\ndata: {from: main-commit}\n",
	})
	keys := t.TempDir()
	key, pub := gittest.SSHKey(t, keys)
	srv := gittest.SSHServer(t, other.Dir, pub)
	knownHosts := filepath.Join(keys, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(srv.KnownHosts()), 0o644); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		".gitgate.yaml": "registries: [registry.example.com]\nremotes:\n  allow: ['127.0.0.1']\n",
		"apps/web.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: argocd}\nspec:\n  project: default\n" +
			"  source: {repoURL: '" + srv.URL + "', path: app, targetRevision: v1.0.0}\n" +
			"  destination: {server: https://kubernetes.default.svc, namespace: web}\n",
		"local/kustomization.yaml": "resources:\n- " + srv.URL + "//base?ref=" + mainCommit + "\n",
	})
	cache := t.TempDir()
	t.Chdir(dir)

	what := func(code int, rep gitReport) string {
		var web, local bool
		for _, tg := range rep.Targets {
			switch {
			case tg.Name == "web":
				if !tg.Rendered || tg.Objects != 1 {
					return "web did not render its one object: " + tg.Reason
				}
				if len(tg.Remotes) != 1 || tg.Remotes[0].Kind != "git" || tg.Remotes[0].URL != srv.URL || tg.Remotes[0].Requested != "v1.0.0" || tg.Remotes[0].Resolved != tagCommit {
					return "web's remotes do not name the tag's commit " + tagCommit
				}
				web = true
			case tg.Path == "local":
				if !tg.Rendered || tg.Objects != 1 {
					return "local did not render its one object: " + tg.Reason
				}
				if len(tg.Remotes) != 1 || tg.Remotes[0].Resolved != mainCommit {
					return "local's remotes do not name the commit " + mainCommit
				}
				local = true
			}
		}
		if !web || !local {
			return "a target is missing"
		}
		for _, r := range rep.Results {
			if r.Status == "fail" && strings.Contains(r.Message, "allowed registry") {
				if want := srv.URL + "@" + tagCommit[:12] + ":app/deploy.yaml"; r.Origin.File != want {
					return "the tag's finding points at " + r.Origin.File + ", want " + want
				}
				if code != exitViolations {
					return "exit code is not 1 with a finding"
				}
				return ""
			}
		}
		return "no registry finding for the image only the tag has"
	}

	code, rep, stderr := runGitJSON(t, "check", "--cache-dir", cache, "--ssh-key", key, "--known-hosts", knownHosts, "-o", "json", ".")
	if bad := what(code, rep); bad != "" {
		t.Fatalf("over ssh: %s; exit %d, report %+v\nstderr:\n%s", bad, code, rep, stderr)
	}
	if srv.Packs.Load() == 0 {
		t.Fatal("no pack was sent over ssh")
	}

	// --offline from the same cache: the same report, no connection (and no key needed).
	conns := srv.Conns.Load()
	code, rep, stderr = runGitJSON(t, "check", "--offline", "--cache-dir", cache, "-o", "json", ".")
	if bad := what(code, rep); bad != "" {
		t.Fatalf("offline: %s; exit %d\nstderr:\n%s", bad, code, stderr)
	}
	if n := srv.Conns.Load() - conns; n != 0 {
		t.Errorf("--offline opened %d connections", n)
	}

	// A known_hosts without the server: refused, naming the host and what to do.
	empty := filepath.Join(keys, "empty_known_hosts")
	os.WriteFile(empty, nil, 0o644)
	code, _, stderr = runGitJSON(t, "check", "--cache-dir", t.TempDir(), "--ssh-key", key, "--known-hosts", empty, "-o", "json", ".")
	if code != exitError || !strings.Contains(stderr, srv.URL+": not fetched: ") || !strings.Contains(stderr, "is not in known_hosts ("+empty+")") || !strings.Contains(stderr, "--known-hosts") {
		t.Errorf("unknown host key: exit %d; stderr:\n%s", code, stderr)
	}
	if keyText, _ := os.ReadFile(key); strings.Contains(stderr, strings.Split(string(keyText), "\n")[1]) {
		t.Error("stderr shows the private key")
	}

	// remotes.allow not naming the server: no connection.
	writeFiles(t, dir, map[string]string{".gitgate.yaml": "registries: [registry.example.com]\nremotes:\n  allow: [git.example.com]\n"})
	conns = srv.Conns.Load()
	code, _, stderr = runGitJSON(t, "check", "--cache-dir", t.TempDir(), "--ssh-key", key, "--known-hosts", knownHosts, "-o", "json", ".")
	if code != exitError || !strings.Contains(stderr, "remotes.allow") {
		t.Errorf("not allowed: exit %d; stderr:\n%s", code, stderr)
	}
	if n := srv.Conns.Load() - conns; n != 0 {
		t.Errorf("a server not in remotes.allow got %d connections", n)
	}
}

// TestRemoteSSHFlags: every command's --help runs (a flag registered twice panics), and
// the commands that fetch remote sources, sync and report included, have --ssh-key and
// --known-hosts once.
func TestRemoteSSHFlags(t *testing.T) {
	fetches := map[string]bool{"check": true, "targets": true, "render": true, "fetch": true, "sync": true, "report": true}
	for _, c := range newRootCmd(nil, nil).Commands() {
		name := c.Name()
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{name, "--help"}, &out, &errb); code != exitClean {
			t.Errorf("%s --help: exit %d\n%s", name, code, errb.String())
			continue
		}
		if !fetches[name] {
			continue
		}
		delete(fetches, name)
		for _, flag := range []string{"--ssh-key string", "--known-hosts string"} {
			if n := strings.Count(out.String(), flag); n != 1 {
				t.Errorf("%s --help shows %s %d times", name, flag, n)
			}
		}
	}
	for name := range fetches {
		t.Errorf("no command %s", name)
	}
}
