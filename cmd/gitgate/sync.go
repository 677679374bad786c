package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/internal/git"
	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/reconcile"
	"github.com/gitgate/gitgate/render"
	"github.com/gitgate/gitgate/report"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// sourceFlags name the Git repository sync and report read.
type sourceFlags struct {
	src  git.Source
	apps []string
	path string
}

func (f *sourceFlags) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.src.Ref, "revision", "", "branch, tag or commit (default: the remote's HEAD)")
	fs.StringVar(&f.src.Auth.Username, "git-username", "", `https user name sent with the token (default "git")`)
	fs.StringVar(&f.src.Auth.TokenEnv, "git-token-env", "", "environment variable holding an https token")
	fs.StringVar(&f.src.Auth.TokenFile, "git-token-file", "", "file holding an https token (a mounted Secret)")
	// --ssh-key and --known-hosts are gateFlags' (remoteFlags): one flag each for the
	// repository and its remote sources; load copies them into Auth.
	f.src.Auth.Flags = git.AuthFlags{TokenEnv: "--git-token-env", TokenFile: "--git-token-file", SSHKey: "--ssh-key", KnownHosts: "--known-hosts"}
	fs.StringArrayVar(&f.apps, "app", nil, "sync only apps with this name (glob, repeatable)")
	fs.StringVar(&f.path, "path", "", "sync only the targets under this repository path, each as an app")
}

// clusterFlags reach the API server.
type clusterFlags struct {
	kubeconfig     string
	clusterSecrets string
	qps            float32
	burst          int
	opts           reconcile.Options

	// clients are the other clusters' clients by connectConfigKey, kept across an
	// --interval's rounds so each round does not open new connections and rediscover
	// every API group; a changed credential is a new key.
	clientsMu sync.Mutex
	clients   map[string]client.Client
}

func (f *clusterFlags) BindFlags(fs *pflag.FlagSet) {
	f.opts = reconcile.DefaultOptions()
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
	fs.Float32Var(&f.qps, "qps", 100, "API requests per second (client-side limit)")
	fs.IntVar(&f.burst, "burst", 200, "API request burst")
	fs.StringVar(&f.clusterSecrets, "cluster-secrets", "", "namespace of the local cluster holding Argo CD cluster Secrets (e.g. argocd): Applications whose destination names them are applied there")
	fs.StringVar(&f.opts.InventoryNamespace, "inventory-namespace", f.opts.InventoryNamespace, "namespace of the per-app inventory and status ConfigMaps")
	fs.IntVar(&f.opts.Workers, "workers", f.opts.Workers, "apps handled in parallel")
	fs.StringSliceVar(&f.opts.IgnoreManagers, "ignore-manager", f.opts.IgnoreManagers, "field managers whose fields never count as drift (an HPA's replicas)")
}

func (f *clusterFlags) config() (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if f.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("connect to the cluster: %w; run in a pod or pass --kubeconfig", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = f.qps, f.burst
	cfg.UserAgent = "gitgate"
	return cfg, nil
}

// connect is a client for another cluster, with the local one's rate limits: the one
// an earlier round made for the same server and credentials, or a new one.
func (f *clusterFlags) connect(cfg *rest.Config) (client.Client, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = f.qps, f.burst
	cfg.UserAgent = "gitgate"
	key := connectConfigKey(cfg)
	f.clientsMu.Lock()
	defer f.clientsMu.Unlock()
	if c, ok := f.clients[key]; ok {
		return c, nil
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, err
	}
	if f.clients == nil || len(f.clients) >= maxClusterClients {
		f.clients = map[string]client.Client{} // rotated credentials must not pile up
	}
	f.clients[key] = c
	return c, nil
}

// maxClusterClients bounds the clients kept across rounds.
const maxClusterClients = 256

// connectConfigKey is a digest of what a client's connection depends on (the server,
// TLS and credentials; never shown).
func connectConfigKey(cfg *rest.Config) string {
	b, _ := json.Marshal([]any{cfg.Host, cfg.APIPath, cfg.BearerToken, cfg.BearerTokenFile, cfg.Username, cfg.Password,
		cfg.Impersonate, cfg.TLSClientConfig.Insecure, cfg.TLSClientConfig.ServerName, cfg.TLSClientConfig.CAData,
		cfg.TLSClientConfig.CAFile, cfg.TLSClientConfig.CertData, cfg.TLSClientConfig.CertFile,
		cfg.TLSClientConfig.KeyData, cfg.TLSClientConfig.KeyFile, cfg.Proxy != nil, cfg.Timeout, cfg.QPS, cfg.Burst})
	sum := sha256.Sum256(b)
	return string(sum[:])
}

// clusters are the destination clusters: the local one, .gitgate.yaml's clusters: (a
// context: each), and Argo CD's cluster Secrets in --cluster-secrets.
func (f *clusterFlags) clusters(ctx context.Context, local client.Client, cfgs []policy.ClusterConfig) (*reconcile.Clusters, error) {
	cs := reconcile.NewClusters(local)
	cs.AddConfigs(cfgs, f.kubeconfig, f.connect)
	if f.clusterSecrets != "" {
		if err := cs.AddSecrets(ctx, f.clusterSecrets, f.connect); err != nil {
			return nil, err
		}
	}
	return cs, nil
}

func (f *clusterFlags) client() (client.Client, *rest.Config, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, nil, err
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the cluster at %s: %w", cfg.Host, err)
	}
	return c, cfg, nil
}

// checkout is one fetched revision, its apps and its gate.
type checkout struct {
	repo render.Repo
	rev  string
	apps []reconcile.App
	gate *policy.Gate
	kube policy.KubeVersion
	crds *policy.CRDSet // crds: and --crds, validated against before apply
	// clusters are the apps' destinations (the local one first).
	clusters *reconcile.Clusters
	notes    []string
	// set are the checkout's settings (report keys its verdict cache by them).
	set *settings
}

// load fetches the source, opens the gate from the checkout's .gitgate.yaml (flags first),
// finds the destination clusters (the ApplicationSet clusters generator iterates them)
// and discovers the apps.
func load(ctx context.Context, sf *sourceFlags, gf *gateFlags, cf *clusterFlags, local client.Client, stderr io.Writer) (*checkout, error) {
	if gf.remote.cacheDir != "" { // one cache: the synced repository's objects and worktrees under sync/
		sf.src.CacheDir = filepath.Join(gf.remote.cacheDir, "sync")
	}
	sf.src.Auth.SSHKeyFile, sf.src.Auth.KnownHostsFile = gf.remote.sshKey, gf.remote.knownHosts
	co, err := sf.src.Fetch(ctx)
	if err != nil {
		return nil, err
	}
	set, err := loadSettings(co.Dir, *gf, policy.DefaultMaxFileSize)
	if err != nil {
		return nil, err
	}
	gate, err := set.openGate(stderr)
	if err != nil {
		return nil, err
	}
	repo := set.repo(co.Dir)
	clusters, err := cf.clusters(ctx, local, repo.Clusters)
	if err != nil {
		return nil, err
	}
	repo.Clusters = clusters.Configs()
	apps, errs, err := reconcile.Apps(ctx, repo, reconcile.AppsOptions{Discover: set.discover(), Select: sf.apps, Path: sf.path})
	if err != nil {
		return nil, err
	}
	out := &checkout{repo: repo, rev: co.Commit, apps: apps, gate: gate, kube: set.kube, crds: set.crds, clusters: clusters, set: set}
	out.notes = append(out.notes, clusters.Notices...)
	for _, e := range errs {
		out.notes = append(out.notes, e.Error())
	}
	return out, nil
}

// syncOptions are gitgate sync's flags.
type syncOptions struct {
	gate        gateFlags
	source      sourceFlags
	cluster     clusterFlags
	once        bool
	interval    time.Duration
	output      []string
	outs        []report.Output[*reconcile.SyncResult]
	leaderElect bool
	leaseNS     string
	healthAddr  string
	// shard: with --shard-by-lease, this replica's Lease and share of the apps.
	shardByLease  bool
	shardID       string
	shardDuration time.Duration
	shard         *reconcile.Shards
}

func (o *syncOptions) BindFlags(fs *pflag.FlagSet) {
	o.gate.BindFlags(fs)
	o.source.BindFlags(fs)
	o.cluster.BindFlags(fs)
	fs.BoolVar(&o.once, "once", false, "sync once and exit (the default without --interval)")
	fs.DurationVar(&o.interval, "interval", 0, "sync again every interval until signalled; apps with selfHeal re-apply drift")
	fs.BoolVar(&o.cluster.opts.Prune, "prune", false, "delete objects this app applied before and Git no longer has, even when its syncPolicy does not prune")
	fs.BoolVar(&o.cluster.opts.ForceConflicts, "force-conflicts", false, "take over fields other field managers own (otherwise a conflict is reported)")
	fs.BoolVar(&o.cluster.opts.CreateNamespace, "create-namespace", false, "create missing namespaces for every app (Applications ask with syncOptions CreateNamespace=true)")
	fs.StringArrayVarP(&o.output, "output", "o", nil, "output format, repeatable: FORMAT on stdout or FORMAT=FILE (replaced atomically each round); formats: "+strings.Join(report.SyncFormats().Names(), ", ")+" (default text)")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "with --interval: only the replica holding the gitgate-sync Lease syncs")
	fs.StringVar(&o.leaseNS, "leader-election-namespace", "", "namespace of the Lease (default: the pod's namespace)")
	fs.BoolVar(&o.shardByLease, "shard-by-lease", false, "with --interval: every replica syncs its share of the apps, holding a Lease of its own (gitgate-sync-<identity>) in --leader-election-namespace; a replica whose Lease expires has its apps taken over by the others (excludes --leader-elect)")
	fs.StringVar(&o.shardID, "shard-identity", "", "this replica's identity for --shard-by-lease (default: $POD_NAME, else the host name)")
	fs.DurationVar(&o.shardDuration, "shard-lease-duration", 30*time.Second, "with --shard-by-lease: a replica not renewing its Lease (every third of this) for this long is counted out and its apps taken over")
	fs.StringVar(&o.healthAddr, "health-addr", ":8081", `with --interval: host:port serving /healthz and /readyz ("0" turns it off)`)
}

func newSyncCmd(stdout, stderr io.Writer) *cobra.Command {
	o := &syncOptions{}
	cmd := &cobra.Command{
		Use:   "sync [REPO]",
		Short: "Apply a Git repository's apps to the cluster, only what passes the gate",
		Long: `sync fetches REPO (a local path, file://, https:// or ssh:// URL; default ".") at
--revision into a cache, discovers its Argo CD Applications and ApplicationSets (every
other target is an app of its own), and for each app renders, gates and server-side applies
(field manager gitgate): Namespaces and CRDs first, then argocd.argoproj.io/sync-wave order.
An Enforce violation or a render error blocks that app (nothing of it is touched); the other
apps proceed. Objects are compared with a dry-run apply first, so a sync with nothing to do
writes nothing.

Prune deletes only objects the app applied before (its inventory ConfigMap in
--inventory-namespace) and no longer in Git, when the Application's syncPolicy prunes or
with --prune. With --interval, apps whose syncPolicy has selfHeal re-apply drift; the others
are re-applied when the revision changes. The status of each app (Synced, OutOfSync,
Blocked, Error; revision; last error) is printed and kept in its inventory ConfigMap.

Exit codes: 0 synced, 1 an app was blocked by policy, 2 error (the API server unreachable
or refusing an object, a field conflict left unresolved, Git).`,
		Example: `  gitgate sync --once https://git.example.com/platform/gitops.git --git-token-env GIT_TOKEN
  gitgate sync . --app 'api-*' --prune -o json
  gitgate sync --interval 3m --leader-elect ssh://git@git.example.com/platform/gitops.git --ssh-key /etc/gitgate/ssh/id_ed25519`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.source.src.URL = "."
			if len(args) == 1 {
				o.source.src.URL = args[0]
			}
			outs, err := report.SyncFormats().Parse(o.output, report.Options{})
			if err != nil {
				fmt.Fprintf(stderr, "gitgate sync: %v\n", err)
				return exitCodeError{exitError}
			}
			o.outs = outs
			if o.interval > 0 && o.once {
				fmt.Fprintln(stderr, "gitgate sync: --once and --interval exclude each other")
				return exitCodeError{exitError}
			}
			if o.shardByLease && (o.leaderElect || o.interval <= 0) {
				fmt.Fprintln(stderr, "gitgate sync: --shard-by-lease needs --interval and excludes --leader-elect (every replica syncs its share)")
				return exitCodeError{exitError}
			}
			c, cfg, err := o.cluster.client()
			if err != nil {
				fmt.Fprintf(stderr, "gitgate sync: %v\n", err)
				return exitCodeError{exitError}
			}
			if o.shardByLease {
				if o.shard, err = o.newShards(c); err != nil {
					fmt.Fprintf(stderr, "gitgate sync: %v\n", err)
					return exitCodeError{exitError}
				}
			}
			if o.interval <= 0 {
				return exitCodeError{o.syncOnce(cmd.Context(), c, false, stdout, stderr)}
			}
			return o.loop(cmd.Context(), c, cfg, stdout, stderr)
		},
	}
	o.BindFlags(cmd.Flags())
	return cmd
}

func (o *syncOptions) syncOnce(ctx context.Context, c client.Client, resync bool, stdout, stderr io.Writer) int {
	co, err := load(ctx, &o.source, &o.gate, &o.cluster, c, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "gitgate sync: %v\n", err)
		return exitError
	}
	for _, n := range co.notes {
		fmt.Fprintf(stderr, "notice: %s\n", n)
	}
	apps := co.apps
	if o.shard != nil {
		mine, live, err := o.shard.Mine(ctx, apps)
		if err != nil {
			fmt.Fprintf(stderr, "gitgate sync: %v\n", err)
			return exitError
		}
		fmt.Fprintf(stderr, "shard: %s syncs %d of %d apps (live replicas: %s)\n", o.shard.Identity, len(mine), len(apps), strings.Join(live, ", "))
		apps = mine
	}
	opts := o.cluster.opts
	opts.Check.KubeVersion = co.kube
	opts.Check.CRDs = co.crds
	opts.Resync = resync
	fleet := &reconcile.Fleet{Clusters: co.clusters, Gate: co.gate, Opts: opts}
	res := fleet.Sync(ctx, co.repo, co.rev, apps)
	shown := res
	if resync { // an interval's later rounds print only the apps where something happened
		c := *res
		c.Apps = nil
		for _, a := range res.Apps {
			if a.Phase != reconcile.Synced || a.Writes > 0 {
				c.Apps = append(c.Apps, a)
			}
		}
		shown = &c
	}
	if err := report.Write(stdout, shown, o.outs); err != nil {
		fmt.Fprintf(stderr, "gitgate sync: %v\n", err)
		return exitError
	}
	return res.ExitCode()
}

// newShards is this replica's part of a sharded sync.
func (o *syncOptions) newShards(c client.Client) (*reconcile.Shards, error) {
	id := cmp.Or(o.shardID, os.Getenv("POD_NAME"))
	if id == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("--shard-by-lease: no --shard-identity and no host name: %w", err)
		}
		id = h
	}
	ns := o.leaseNS
	if ns == "" {
		ns = os.Getenv("POD_NAMESPACE")
	}
	if ns == "" {
		if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
			ns = strings.TrimSpace(string(b))
		}
	}
	if ns == "" {
		return nil, fmt.Errorf("--shard-by-lease: not in a pod; name the Leases' namespace with --leader-election-namespace")
	}
	if o.shardDuration < 3*time.Second {
		return nil, fmt.Errorf("--shard-lease-duration %s: at least 3s", o.shardDuration)
	}
	return &reconcile.Shards{Client: c, Namespace: ns, Identity: id, LeaseDuration: o.shardDuration}, nil
}

// loop syncs every interval until the context ends; with --leader-elect only the leader.
func (o *syncOptions) loop(ctx context.Context, c client.Client, cfg *rest.Config, stdout, stderr io.Writer) error {
	run := func(ctx context.Context) error {
		first := true
		t := time.NewTicker(o.interval)
		defer t.Stop()
		var moved chan struct{}
		if o.shard != nil {
			// The Lease first, so this replica counts in its first round.
			if err := o.shard.Renew(ctx); err != nil {
				fmt.Fprintf(stderr, "gitgate sync: %v\n", err)
			}
			moved = make(chan struct{}, 1)
			go o.shard.Run(ctx, moved, func(err error) { fmt.Fprintf(stderr, "gitgate sync: %v\n", err) })
		}
		for {
			code := o.syncOnce(ctx, c, !first, stdout, stderr)
			first = false
			if code == exitError {
				fmt.Fprintf(stderr, "gitgate sync: will retry in %s\n", o.interval)
			}
			select {
			case <-ctx.Done():
				if o.shard != nil { // hand the apps over now rather than at expiry
					rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_ = o.shard.Release(rctx)
					cancel()
				}
				return nil
			case <-t.C:
			case <-moved: // a replica came or went: the share changed
				fmt.Fprintln(stderr, "shard: the live replicas changed; syncing the new share now")
			}
		}
	}
	mopts := manager.Options{
		Metrics:                 metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:  o.healthAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "gitgate-sync",
		LeaderElectionNamespace: o.leaseNS,
	}
	if !o.leaderElect && o.healthAddr == "0" {
		return run(ctx)
	}
	mgr, err := ctrl.NewManager(cfg, mopts)
	if err != nil {
		fmt.Fprintf(stderr, "gitgate sync: start: %v\n", err)
		return exitCodeError{exitError}
	}
	if o.healthAddr != "0" {
		_ = mgr.AddHealthzCheck("ping", healthz.Ping)
		_ = mgr.AddReadyzCheck("ping", func(*http.Request) error { return nil })
	}
	if err := mgr.Add(manager.RunnableFunc(run)); err != nil {
		return err
	}
	if err := mgr.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "gitgate sync: %v\n", err)
		return exitCodeError{exitError}
	}
	return nil
}
