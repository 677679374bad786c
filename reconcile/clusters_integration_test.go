//go:build integration

package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func configMap(name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  owner: " + name + "\n"
}

func application(name, path, ns, destKey, dest string) string {
	return fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: %s, namespace: argocd}
spec:
  project: default
  source: {repoURL: https://git.example.com/gitops.git, path: %s}
  destination: {%s: %q, namespace: %s}
  syncPolicy: {syncOptions: [CreateNamespace=true]}
---
`, name, path, destKey, dest, ns)
}

// fleetRepo: apps on the local cluster (by server and by name), on cluster "edge" by name
// and by server, one generated for every cluster labelled env=edge, and one for a
// cluster nobody defined.
func fleetRepo(t *testing.T, edgeServer string) string {
	return writeTree(t, fleetFiles(edgeServer))
}

func fleetFiles(edgeServer string) map[string]string {
	apps := application("local-by-server", "apps/local", "local", "server", "https://kubernetes.default.svc") +
		application("local-by-name", "apps/local2", "local2", "name", "in-cluster") +
		application("edge-by-name", "apps/edge", "edge", "name", "edge") +
		application("edge-by-server", "apps/edge2", "edge2", "server", edgeServer) +
		application("lost", "apps/lost", "lost", "name", "nowhere") +
		`apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: per-cluster, namespace: argocd}
spec:
  generators:
  - clusters: {selector: {matchLabels: {env: edge}}}
  template:
    metadata: {name: 'gen-{{name}}'}
    spec:
      project: default
      source: {repoURL: https://git.example.com/gitops.git, path: apps/generated}
      destination: {server: '{{server}}', namespace: generated}
      syncPolicy: {syncOptions: [CreateNamespace=true]}
`
	return map[string]string{
		"argocd/apps.yaml":       apps,
		"apps/local/cm.yaml":     configMap("local"),
		"apps/local2/cm.yaml":    configMap("local2"),
		"apps/edge/cm.yaml":      configMap("edge"),
		"apps/edge2/cm.yaml":     configMap("edge2"),
		"apps/lost/cm.yaml":      configMap("lost"),
		"apps/generated/cm.yaml": configMap("generated"),
	}
}

func connectEnv(cfg *rest.Config) (client.Client, error) { return client.New(cfg, client.Options{}) }

// kubeconfigOf writes a kubeconfig with one context per environment.
func kubeconfigOf(t *testing.T, envs map[string]*env) string {
	kc := clientcmdapi.NewConfig()
	for name, e := range envs {
		kc.Clusters[name] = &clientcmdapi.Cluster{Server: e.cfg.Host, CertificateAuthorityData: e.cfg.CAData}
		kc.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: e.cfg.CertData, ClientKeyData: e.cfg.KeyData, Token: e.cfg.BearerToken}
		kc.Contexts["ctx-"+name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	}
	kc.CurrentContext = "ctx-local"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// argoSecret is Argo CD's cluster Secret for an environment.
func argoSecret(t *testing.T, name string, e *env, labels map[string]string) *corev1.Secret {
	conf := map[string]any{"bearerToken": e.cfg.BearerToken, "tlsClientConfig": map[string]any{"caData": e.cfg.CAData, "certData": e.cfg.CertData, "keyData": e.cfg.KeyData}}
	b, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	l := map[string]string{ClusterSecretLabel: "cluster"}
	for k, v := range labels {
		l[k] = v
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "argocd", Name: "cluster-" + name, Labels: l},
		Data: map[string][]byte{"name": []byte(name), "server": []byte(e.cfg.Host), "config": b}}
}

func hasConfigMap(t *testing.T, c client.Client, ns, name string) bool {
	t.Helper()
	err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &corev1.ConfigMap{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("get %s/%s: %v", ns, name, err)
	}
	return err == nil
}

func fleetSync(t *testing.T, cs *Clusters, dir string) (*SyncResult, []App) {
	t.Helper()
	ctx := context.Background()
	repo := render.Repo{FS: os.DirFS(dir), Dir: dir, Clusters: cs.Configs()}
	apps, errs, err := Apps(ctx, repo, AppsOptions{Discover: render.DiscoverOptions{RepoURLs: []string{"https://git.example.com/gitops.git"}}})
	if err != nil || len(errs) > 0 {
		t.Fatalf("apps: %v %v", err, errs)
	}
	gate, err := policy.OpenGate(policy.GateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := &Fleet{Clusters: cs, Gate: gate, Opts: DefaultOptions()}
	return f.Sync(ctx, repo, "rev1", apps), apps
}

func clusterStatus(r *SyncResult, name string) ClusterStatus {
	for _, c := range r.Clusters {
		if c.Name == name {
			return c
		}
	}
	return ClusterStatus{}
}

// Two real API servers: apps go to the cluster their destination names, through a
// kubeconfig context and through Argo CD's cluster Secret; an unknown destination fails
// its app only; a cluster that goes down fails its apps only.
func TestSyncManyClusters(t *testing.T) {
	local, edge := startEnv(t), startEnv(t)
	ctx := context.Background()
	dir := fleetRepo(t, edge.cfg.Host)

	check := func(t *testing.T, res *SyncResult, from string) {
		t.Helper()
		want := map[string]struct {
			phase   Phase
			cluster string
		}{
			"local-by-server": {Synced, "in-cluster"}, "local-by-name": {Synced, "in-cluster"},
			"edge-by-name": {Synced, "edge"}, "edge-by-server": {Synced, "edge"}, "gen-edge": {Synced, "edge"},
			"lost": {Failed, unmatched},
		}
		got := map[string]AppResult{}
		for _, a := range res.Apps {
			got[a.App] = a
		}
		for app, w := range want {
			a, ok := got[app]
			if !ok || a.Phase != w.phase || a.Cluster != w.cluster {
				t.Errorf("%s: %+v, want %s on %s", app, a, w.phase, w.cluster)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%d apps, want %d: %s", len(got), len(want), dump(t, res))
		}
		if e := got["lost"].Error; !strings.Contains(e, "name nowhere matches no cluster") || !strings.Contains(e, "clusters: in .gitgate.yaml") || !strings.Contains(e, "argocd/apps.yaml") {
			t.Errorf("lost: %q", e)
		}
		// Each object and each inventory in its own cluster, none in the other.
		for _, o := range []struct {
			ns, name string
			onEdge   bool
		}{{"local", "local", false}, {"local2", "local2", false}, {"edge", "edge", true}, {"edge2", "edge2", true}, {"generated", "generated", true}} {
			if hasConfigMap(t, edge.client, o.ns, o.name) != o.onEdge || hasConfigMap(t, local.client, o.ns, o.name) == o.onEdge {
				t.Errorf("ConfigMap %s/%s: on edge %v, on local %v; want on edge %v", o.ns, o.name, !o.onEdge, o.onEdge, o.onEdge)
			}
		}
		if !hasConfigMap(t, edge.client, "gitgate-system", inventoryName("edge-by-name")) || hasConfigMap(t, local.client, "gitgate-system", inventoryName("edge-by-name")) {
			t.Error("edge-by-name's inventory is not (only) in cluster edge")
		}
		if !hasConfigMap(t, local.client, "gitgate-system", inventoryName("local-by-name")) || hasConfigMap(t, edge.client, "gitgate-system", inventoryName("local-by-name")) {
			t.Error("local-by-name's inventory is not (only) in the local cluster")
		}
		if s := clusterStatus(res, "edge"); s.Apps != 3 || s.Synced != 3 || s.Failed != 0 || !strings.Contains(s.From, from) || s.Server != edge.cfg.Host {
			t.Errorf("edge status %+v", s)
		}
		if s := clusterStatus(res, "in-cluster"); s.Apps != 2 || s.Synced != 2 {
			t.Errorf("in-cluster status %+v", s)
		}
		if s := clusterStatus(res, unmatched); s.Apps != 1 || s.Failed != 1 {
			t.Errorf("unmatched status %+v", s)
		}
		if res.ExitCode() != 2 {
			t.Errorf("exit %d with an app failed", res.ExitCode())
		}
	}

	t.Run("kubeconfig contexts", func(t *testing.T) {
		kc := kubeconfigOf(t, map[string]*env{"local": local, "edge": edge})
		cs := NewClusters(local.client)
		cs.AddConfigs([]policy.ClusterConfig{{Name: "edge", Context: "ctx-edge", Labels: map[string]string{"env": "edge"}}}, kc, connectEnv)
		res, _ := fleetSync(t, cs, dir)
		check(t, res, ".gitgate.yaml context ctx-edge")
	})

	t.Run("Argo CD cluster Secrets", func(t *testing.T) {
		// A fresh edge state: the previous subtest's objects go.
		for _, ns := range []string{"edge", "edge2", "generated"} {
			_ = edge.client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ns}})
		}
		for _, app := range []string{"edge-by-name", "edge-by-server", "gen-edge"} {
			_ = edge.client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "gitgate-system", Name: inventoryName(app)}})
		}
		if err := local.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "argocd"}}); err != nil {
			t.Fatal(err)
		}
		if err := local.client.Create(ctx, argoSecret(t, "edge", edge, map[string]string{"env": "edge"})); err != nil {
			t.Fatal(err)
		}
		cs := NewClusters(local.client)
		if err := cs.AddSecrets(ctx, "argocd", connectEnv); err != nil {
			t.Fatal(err)
		}
		res, apps := fleetSync(t, cs, dir)
		check(t, res, "Secret argocd/cluster-edge")
		// The report of the same: each app compared with its own cluster.
		gate, _ := policy.OpenGate(policy.GateOptions{})
		f := &Fleet{Clusters: cs, Gate: gate, Opts: DefaultOptions()}
		rep := f.Report(ctx, render.Repo{FS: os.DirFS(dir), Dir: dir, Clusters: cs.Configs()}, "rev1", apps)
		for _, a := range rep.Apps {
			c := a.Counts()
			switch a.App {
			case "lost":
				if a.Error == "" || a.Cluster != unmatched {
					t.Errorf("report: lost %+v", a)
				}
			default:
				if a.Error != "" || c.InSync != 1 || c.Drifted() || a.Cluster == "" {
					t.Errorf("report: %s on %s: %+v %s", a.App, a.Cluster, c, a.Error)
				}
			}
		}
		if len(rep.Clusters) != 3 || rep.Clusters[1].Name != "edge" || rep.Clusters[1].Synced != 3 || rep.Clusters[0].Synced != 2 || rep.Clusters[2].Failed != 1 {
			t.Errorf("report clusters %+v", rep.Clusters)
		}
		for _, a := range res.Apps {
			if a.Cluster == "edge" && a.Count(Created) != 1 {
				t.Errorf("%s: %d created, want 1 (a fresh cluster)", a.App, a.Count(Created))
			}
		}
		out, _ := json.Marshal(res)
		if strings.Contains(string(out), string(edge.cfg.KeyData)) || (edge.cfg.BearerToken != "" && strings.Contains(string(out), edge.cfg.BearerToken)) {
			t.Error("the result carries the cluster's credentials")
		}
	})

	t.Run("gitgate sync across clusters", func(t *testing.T) {
		bin := os.Getenv("GITGATE_BIN")
		if bin == "" {
			t.Skip("GITGATE_BIN is not set: the command line is not run (go build -o bin/gitgate ./cmd/gitgate)")
		}
		g := newGitRepo(t, fleetFiles(edge.cfg.Host))
		kc := kubeconfigOf(t, map[string]*env{"local": local})
		out := filepath.Join(t.TempDir(), "sync.json")
		cmd := exec.Command(bin, "sync", "--once", "file://"+g.bare, "--kubeconfig", kc, "--cluster-secrets", "argocd", "--cache-dir", t.TempDir(), "-o", "text", "-o", "json="+out)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 2 {
			t.Fatalf("exit %d (%v), want 2 (app lost failed)\n%s\n%s", code, err, stdout.String(), stderr.String())
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var res SyncResult
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatal(err)
		}
		check(t, &res, "Secret argocd/cluster-edge")
		for _, line := range []string{"[edge] edge-by-name: Synced", "cluster edge (" + edge.cfg.Host + "): 3 apps, 3 synced", "cluster (no cluster): 1 apps, 0 synced, 0 out of sync, 0 blocked, 1 failed"} {
			if !strings.Contains(stdout.String(), line) {
				t.Errorf("text output lacks %q:\n%s", line, stdout.String())
			}
		}
		for _, secret := range [][]byte{edge.cfg.KeyData, []byte(edge.cfg.BearerToken)} {
			if len(secret) > 0 && (strings.Contains(stdout.String()+stderr.String(), string(secret)) || strings.Contains(string(b), string(secret))) {
				t.Error("the output carries the cluster's credentials")
			}
		}
	})

	t.Run("a cluster down fails its apps only", func(t *testing.T) {
		cs := NewClusters(local.client)
		if err := cs.AddSecrets(ctx, "argocd", connectEnv); err != nil {
			t.Fatal(err)
		}
		if err := edge.env.Stop(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		res, _ := fleetSync(t, cs, dir)
		t.Logf("sync with cluster edge down: %s", time.Since(start).Round(time.Millisecond))
		for _, a := range res.Apps {
			switch a.Cluster {
			case "in-cluster":
				if a.Phase != Synced {
					t.Errorf("%s on the local cluster: %s %s", a.App, a.Phase, a.Error)
				}
			default:
				if a.Phase != Failed || a.Error == "" {
					t.Errorf("%s on %s: %s, want failed", a.App, a.Cluster, a.Phase)
				}
			}
		}
		if s := clusterStatus(res, "edge"); s.Failed != 3 || s.Error == "" {
			t.Errorf("edge status %+v", s)
		}
		if s := clusterStatus(res, "in-cluster"); s.Synced != 2 || s.Error != "" {
			t.Errorf("in-cluster status %+v", s)
		}
	})
}

// replica is one sharded Syncer in the test process, as gitgate sync --shard-by-lease
// runs it: a round per tick or whenever the live replicas change.
type replica struct {
	shards *Shards
	mu     sync.Mutex
	synced map[string]time.Time // app -> last synced by this replica
	rounds int
}

func (r *replica) run(ctx context.Context, t *testing.T, s *Syncer, repo render.Repo, apps []App, tick time.Duration) {
	moved := make(chan struct{}, 1)
	go r.shards.Run(ctx, moved, func(err error) { t.Logf("%s: %v", r.shards.Identity, err) })
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for {
		mine, _, err := r.shards.Mine(ctx, apps)
		if err == nil {
			res := s.Sync(ctx, repo, "rev1", mine)
			r.mu.Lock()
			for _, a := range res.Apps {
				if a.Phase == Synced {
					r.synced[a.App] = time.Now()
				}
			}
			r.rounds++
			r.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		case <-moved:
		}
	}
}

func (r *replica) apps() map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]time.Time{}
	for k, v := range r.synced {
		out[k] = v
	}
	return out
}

// Two replicas over 24 apps: each app synced by exactly one; one replica dies (its
// context cancelled, its Lease left to expire) and the other takes its apps over within
// LeaseDuration + LeaseDuration/3 + a round.
func TestShardedSyncTakeover(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	files := map[string]string{}
	var appsYAML strings.Builder
	for i := range 24 {
		name := fmt.Sprintf("svc-%02d", i)
		files["apps/"+name+"/cm.yaml"] = configMap(name)
		appsYAML.WriteString(application(name, "apps/"+name, "shard", "server", "https://kubernetes.default.svc"))
	}
	files["argocd/apps.yaml"] = appsYAML.String()
	dir := writeTree(t, files)
	repo := render.Repo{FS: os.DirFS(dir), Dir: dir}
	apps, errs, err := Apps(ctx, repo, AppsOptions{Discover: render.DiscoverOptions{RepoURLs: []string{"https://git.example.com/gitops.git"}}})
	if err != nil || len(errs) > 0 || len(apps) != 24 {
		t.Fatalf("%d apps: %v %v", len(apps), err, errs)
	}
	gate, err := policy.OpenGate(policy.GateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "gitgate-system"}}); err != nil {
		t.Fatal(err)
	}
	const lease = 3 * time.Second
	reps := []*replica{}
	for _, id := range []string{"sync-0", "sync-1"} {
		sh := &Shards{Client: e.client, Namespace: "gitgate-system", Identity: id, LeaseDuration: lease}
		if err := sh.Renew(ctx); err != nil { // both count before either syncs
			t.Fatal(err)
		}
		reps = append(reps, &replica{shards: sh, synced: map[string]time.Time{}})
	}
	opts := DefaultOptions()
	opts.Resync = true
	ctxs := make([]context.CancelFunc, 2)
	for i, r := range reps {
		rctx, cancel := context.WithCancel(ctx)
		ctxs[i] = cancel
		t.Cleanup(cancel)
		go r.run(rctx, t, &Syncer{Client: e.client, Gate: gate, Opts: opts}, repo, apps, time.Hour)
	}
	// The first round of each.
	deadline := time.Now().Add(60 * time.Second)
	for len(reps[0].apps())+len(reps[1].apps()) < 24 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	a0, a1 := reps[0].apps(), reps[1].apps()
	for _, a := range apps {
		_, by0 := a0[a.Name]
		_, by1 := a1[a.Name]
		if by0 == by1 {
			t.Errorf("%s: synced by sync-0 %v, by sync-1 %v; want exactly one", a.Name, by0, by1)
		}
	}
	t.Logf("split: sync-0 %d apps, sync-1 %d apps", len(a0), len(a1))
	if len(a0) == 0 || len(a1) == 0 {
		t.Fatalf("one replica has nothing: %d + %d", len(a0), len(a1))
	}
	for _, a := range apps {
		if !hasConfigMap(t, e.client, "shard", a.Name) {
			t.Errorf("%s not applied", a.Name)
		}
	}

	// sync-1 dies: no release, its Lease expires.
	ctxs[1]()
	died := time.Now()
	bound := lease + lease/3 + 20*time.Second // + one round of sync-0 (24 apps on a shared 2-core machine)
	var took time.Duration
	for time.Since(died) < bound+10*time.Second {
		now0 := reps[0].apps()
		all := true
		for app := range a1 {
			if at, ok := now0[app]; !ok || at.Before(died) {
				all = false
				break
			}
		}
		if all {
			took = time.Since(died)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if took == 0 || took > bound {
		t.Fatalf("sync-0 did not take sync-1's %d apps over within %s (took %s)", len(a1), bound, took)
	}
	t.Logf("sync-1's %d apps taken over by sync-0 %s after it died (lease %s, renewed every %s)", len(a1), took.Round(time.Millisecond), lease, lease/3)
	if live, _ := reps[0].shards.Live(ctx); len(live) != 1 || live[0] != "sync-0" {
		t.Errorf("live after the takeover: %v", live)
	}
}
