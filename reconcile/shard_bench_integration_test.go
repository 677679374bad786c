//go:build integration && bench

package reconcile

// Sharded sync against one: 100 apps synced by one Syncer, then (fresh namespaces, fresh
// inventories) by two replicas splitting them by Shards, on one real API server:
//
//	KUBEBUILDER_ASSETS=$(hack/envtest.sh) go test -tags 'integration bench' -run TestBenchShardedSync -v ./reconcile/

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// benchApps: n apps, each a Deployment (passing the built-in policies), a Service and a
// ConfigMap, in namespace <prefix>-<i>.
func benchApps(t *testing.T, prefix string, n int) (render.Repo, []App) {
	files := map[string]string{}
	var appsYAML strings.Builder
	for i := range n {
		name := fmt.Sprintf("%s-%03d", prefix, i)
		files["apps/"+name+"/deploy.yaml"] = deployment(name, "1.0.0")
		files["apps/"+name+"/svc.yaml"] = "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\nspec:\n  selector: {app.kubernetes.io/name: " + name + "}\n  ports: [{port: 80, targetPort: http}]\n"
		files["apps/"+name+"/cm.yaml"] = configMap(name)
		appsYAML.WriteString(application(name, "apps/"+name, name, "server", "https://kubernetes.default.svc"))
	}
	files["argocd/apps.yaml"] = appsYAML.String()
	dir := writeTree(t, files)
	repo := render.Repo{FS: os.DirFS(dir), Dir: dir}
	apps, errs, err := Apps(context.Background(), repo, AppsOptions{Discover: render.DiscoverOptions{RepoURLs: []string{"https://git.example.com/gitops.git"}}})
	if err != nil || len(errs) > 0 || len(apps) != n {
		t.Fatalf("%d apps: %v %v", len(apps), err, errs)
	}
	return repo, apps
}

func TestBenchShardedSync(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	gate, err := policy.OpenGate(policy.GateOptions{Registries: []string{"harbor.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "gitgate-system"}}); err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	check := func(label string, res []*SyncResult, wall time.Duration) {
		phases := map[Phase]int{}
		n := 0
		for _, r := range res {
			for _, a := range r.Apps {
				phases[a.Phase]++
				n++
				if a.Phase != Synced {
					t.Errorf("%s: %s %s: %s", label, a.App, a.Phase, a.Error)
				}
			}
		}
		t.Logf("%s: %d apps in %s wall, phases %v", label, n, wall.Round(time.Millisecond), phases)
		for i, r := range res {
			t.Logf("  replica %d, summed over its apps: %s", i, split(r))
		}
	}

	// One replica.
	repo1, apps1 := benchApps(t, "one", 100)
	s := &Syncer{Client: e.client, Gate: gate, Opts: opts}
	start := time.Now()
	r1 := s.Sync(ctx, repo1, "rev1", apps1)
	one := time.Since(start)
	check("1 replica", []*SyncResult{r1}, one)

	// Two replicas, each its share through its Lease, in parallel.
	repo2, apps2 := benchApps(t, "two", 100)
	reps := []*Shards{
		{Client: e.client, Namespace: "gitgate-system", Identity: "sync-0", LeaseDuration: 30 * time.Second},
		{Client: e.client, Namespace: "gitgate-system", Identity: "sync-1", LeaseDuration: 30 * time.Second},
	}
	for _, r := range reps {
		if err := r.Renew(ctx); err != nil {
			t.Fatal(err)
		}
	}
	res := make([]*SyncResult, len(reps))
	shares := make([]int, len(reps))
	var wg sync.WaitGroup
	start = time.Now()
	for i, r := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine, _, err := r.Mine(ctx, apps2)
			if err != nil {
				t.Error(err)
				return
			}
			shares[i] = len(mine)
			res[i] = (&Syncer{Client: e.client, Gate: gate, Opts: opts}).Sync(ctx, repo2, "rev1", mine)
		}()
	}
	wg.Wait()
	two := time.Since(start)
	check(fmt.Sprintf("2 replicas (shares %v)", shares), res, two)
	t.Logf("sync of 100 apps: 1 replica %s, 2 replicas %s (wall of both), ratio %.2f; GOMAXPROCS-bound: both replicas and the API server share this machine's CPUs",
		one.Round(time.Millisecond), two.Round(time.Millisecond), float64(two)/float64(one))
}
