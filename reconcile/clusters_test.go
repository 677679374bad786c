package reconcile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// connected records the configs a test connected to, with a nil-safe fake client.
func fakeConnect(seen *[]*rest.Config) ClusterConnect {
	return func(cfg *rest.Config) (client.Client, error) {
		*seen = append(*seen, cfg)
		return fake.NewClientBuilder().Build(), nil
	}
}

func secret(name string, data map[string]string, labels map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "argocd", Name: name, Labels: map[string]string{ClusterSecretLabel: "cluster"}}, Data: map[string][]byte{}}
	for k, v := range labels {
		s.Labels[k] = v
	}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func TestClusterFromSecret(t *testing.T) {
	var seen []*rest.Config
	connect := fakeConnect(&seen)
	c := ClusterFromSecret(secret("prod", map[string]string{
		"name": "prod", "server": "https://prod.example.com:6443",
		"config": `{"bearerToken":"TOKEN-9d1e","tlsClientConfig":{"caData":"Y2EtZGF0YQ==","serverName":"api.prod","insecure":false}}`,
	}, map[string]string{"env": "prod"}), connect)
	if c == nil || c.Err != nil || c.Client == nil {
		t.Fatalf("cluster %+v", c)
	}
	if c.Name != "prod" || c.Server != "https://prod.example.com:6443" || c.Labels["env"] != "prod" || c.From != "Secret argocd/prod" {
		t.Errorf("cluster %+v", c)
	}
	cfg := seen[0]
	if cfg.Host != c.Server || cfg.BearerToken != "TOKEN-9d1e" || string(cfg.CAData) != "ca-data" || cfg.ServerName != "api.prod" || cfg.Timeout == 0 {
		t.Errorf("rest config host %s token %q ca %q serverName %s timeout %s", cfg.Host, cfg.BearerToken, cfg.CAData, cfg.ServerName, cfg.Timeout)
	}

	// Nothing executed: exec and AWS configs are refused, naming the cluster; the
	// Secret's data never appears in the message.
	for _, conf := range []string{
		`{"execProviderConfig":{"command":"argocd-k8s-auth","args":["gcp"]},"bearerToken":"TOKEN-9d1e"}`,
		`{"awsAuthConfig":{"clusterName":"eks-1"},"password":"TOKEN-9d1e"}`,
	} {
		n := len(seen)
		c := ClusterFromSecret(secret("eks", map[string]string{"name": "eks", "server": "https://eks.example.com", "config": conf}, nil), connect)
		if c.Err == nil || c.Client != nil || len(seen) != n {
			t.Fatalf("%s: not refused: %+v", conf, c)
		}
		msg := c.Err.Error()
		if !strings.Contains(msg, "cluster eks") || !strings.Contains(msg, "Secret argocd/eks") || !strings.Contains(msg, "executes nothing") {
			t.Errorf("message %q", msg)
		}
		if strings.Contains(msg, "TOKEN-9d1e") || strings.Contains(msg, "argocd-k8s-auth") {
			t.Errorf("message quotes the Secret: %q", msg)
		}
	}
	bad := ClusterFromSecret(secret("bad", map[string]string{"server": "https://bad.example.com", "config": `{"bearerToken": TOKEN-9d1e}`}, nil), connect)
	if bad.Err == nil || strings.Contains(bad.Err.Error(), "TOKEN-9d1e") || bad.Name != "https://bad.example.com" {
		t.Errorf("bad config: %+v", bad)
	}
	if ClusterFromSecret(secret("none", map[string]string{"name": "x"}, nil), connect) != nil {
		t.Error("a Secret without server makes a cluster")
	}
}

const twoContexts = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://a.example.com:6443"}
- name: b
  cluster: {server: "https://b.example.com:6443"}
users:
- name: token
  user: {token: TOKEN-9d1e}
- name: exec
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/echo, args: [hi]}
contexts:
- name: ctx-a
  context: {cluster: a, user: token}
- name: ctx-b
  context: {cluster: b, user: exec}
current-context: ctx-a
`

func TestClustersResolve(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(twoContexts), 0o600); err != nil {
		t.Fatal(err)
	}
	var seen []*rest.Config
	local := fake.NewClientBuilder().Build()
	cs := NewClusters(local)
	cs.AddConfigs([]policy.ClusterConfig{
		{Name: "a", Context: "ctx-a", Labels: map[string]string{"env": "prod"}},
		{Name: "b", Context: "ctx-b"},
		{Name: "c", Context: "ctx-missing"},
		{Name: "d", Server: "https://d.example.com"},
	}, kc, fakeConnect(&seen))
	if len(seen) != 1 || seen[0].Host != "https://a.example.com:6443" || seen[0].BearerToken != "TOKEN-9d1e" {
		t.Fatalf("connected %d configs", len(seen))
	}
	get := func(d render.Destination) (*Cluster, error) { return cs.Resolve(d) }
	for _, tc := range []struct {
		dest render.Destination
		want string
	}{
		{render.Destination{}, render.LocalName},
		{render.Destination{Name: "in-cluster"}, render.LocalName},
		{render.Destination{Server: "https://kubernetes.default.svc/"}, render.LocalName},
		{render.Destination{Server: "https://a.example.com:6443"}, "a"},
		{render.Destination{Name: "a"}, "a"},
		{render.Destination{Name: "d"}, "d"},
	} {
		c, err := get(tc.dest)
		if err != nil || c.Name != tc.want {
			t.Errorf("%s: %v %v, want %s", tc.dest, c, err, tc.want)
		}
	}
	if _, err := get(render.Destination{Server: "https://nowhere.example.com"}); err == nil || !strings.Contains(err.Error(), "clusters: in .gitgate.yaml") || !strings.Contains(err.Error(), "server https://nowhere.example.com") {
		t.Errorf("unknown destination: %v", err)
	}
	b, _ := get(render.Destination{Name: "b"})
	if b.Err == nil || !strings.Contains(b.Err.Error(), "cluster b") || !strings.Contains(b.Err.Error(), "executes nothing") || b.Client != nil {
		t.Errorf("exec context: %+v", b)
	}
	c, _ := get(render.Destination{Name: "c"})
	if c.Err == nil || !strings.Contains(c.Err.Error(), `"ctx-missing" is not in the kubeconfig`) {
		t.Errorf("missing context: %+v", c)
	}
	d, _ := get(render.Destination{Name: "d"})
	if err := clusterErr(d); err == nil || !strings.Contains(err.Error(), "no credentials") {
		t.Errorf("cluster without credentials: %v", err)
	}
	// The ApplicationSet clusters generator sees the defined clusters and labels.
	cfgs := cs.Configs()
	if len(cfgs) != 4 || cfgs[0].Name != "a" || cfgs[0].Server != "https://a.example.com:6443" || cfgs[0].Labels["env"] != "prod" {
		t.Errorf("configs %+v", cfgs)
	}

	// A Secret completes a named cluster with its credentials, and adds another.
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	cs.List[0].Client = fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		secret("d", map[string]string{"name": "d", "server": "https://d.example.com", "config": `{"bearerToken":"x"}`}, map[string]string{"tier": "2"}),
		secret("e", map[string]string{"name": "e", "server": "https://e.example.com", "config": `{"username":"u","password":"p"}`}, nil),
	).Build()
	if err := cs.AddSecrets(context.Background(), "argocd", fakeConnect(&seen)); err != nil {
		t.Fatal(err)
	}
	d, _ = get(render.Destination{Server: "https://d.example.com"})
	if clusterErr(d) != nil || d.Labels["tier"] != "2" || !strings.Contains(d.From, "Secret argocd/d") {
		t.Errorf("completed: %+v", d)
	}
	if e, err := get(render.Destination{Name: "e"}); err != nil || e.Client == nil {
		t.Errorf("secret cluster e: %v %v", e, err)
	}
}

func TestOwnerStableAndBalanced(t *testing.T) {
	replicas := []string{"sync-0", "sync-1", "sync-2"}
	count := map[string]int{}
	owner := map[string]string{}
	for i := range 300 {
		app := fmt.Sprintf("app-%d", i)
		o := Owner(app, replicas)
		count[o]++
		owner[app] = o
	}
	for _, r := range replicas {
		if count[r] < 70 || count[r] > 130 {
			t.Errorf("%s owns %d of 300 apps", r, count[r])
		}
	}
	// sync-1 goes: only its apps move.
	moved := 0
	for app, o := range owner {
		n := Owner(app, []string{"sync-0", "sync-2"})
		if o != "sync-1" && n != o {
			t.Errorf("%s moved from %s to %s", app, o, n)
		}
		if o == "sync-1" {
			moved++
		}
	}
	if moved != count["sync-1"] || Owner("x", nil) != "" {
		t.Errorf("moved %d", moved)
	}
}

func TestShardsLeases(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a := &Shards{Client: c, Namespace: "gitgate-system", Identity: "sync-a", LeaseDuration: 30 * time.Second, Now: clock}
	b := &Shards{Client: c, Namespace: "gitgate-system", Identity: "Sync_B", LeaseDuration: 30 * time.Second, Now: clock}
	ctx := context.Background()
	if _, _, err := a.Mine(ctx, nil); err == nil {
		t.Error("a replica without a lease owns apps")
	}
	for _, s := range []*Shards{a, b} {
		if err := s.Renew(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if b.LeaseName() == "gitgate-sync-sync-b" || !strings.HasPrefix(b.LeaseName(), "gitgate-sync-sync-b-") {
		t.Errorf("lease name %s", b.LeaseName())
	}
	var apps []App
	for i := range 40 {
		apps = append(apps, App{Name: fmt.Sprintf("app-%02d", i)})
	}
	ma, live, err := a.Mine(ctx, apps)
	if err != nil || len(live) != 2 {
		t.Fatal(live, err)
	}
	mb, _, _ := b.Mine(ctx, apps)
	if len(ma)+len(mb) != 40 || len(ma) == 0 || len(mb) == 0 {
		t.Fatalf("split %d + %d", len(ma), len(mb))
	}
	// b stops renewing: 31 s later a owns everything, and b nothing.
	now = now.Add(20 * time.Second)
	_ = a.Renew(ctx)
	now = now.Add(11 * time.Second)
	ma, live, err = a.Mine(ctx, apps)
	if err != nil || len(ma) != 40 || len(live) != 1 {
		t.Errorf("after b expired: a owns %d, live %v, %v", len(ma), live, err)
	}
	if mb, _, err := b.Mine(ctx, apps); err == nil || len(mb) != 0 || !strings.Contains(err.Error(), "not live") {
		t.Errorf("expired b owns %d: %v", len(mb), err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if live, _ := a.Live(ctx); len(live) != 0 {
		t.Errorf("after release: %v", live)
	}
}
