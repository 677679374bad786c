package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/admission"
	"github.com/gitgate/gitgate/internal/git"
	"github.com/gitgate/gitgate/policy"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// serveOptions are gitgate serve's flags.
type serveOptions struct {
	gate            gateFlags
	repo            string
	gitURL          string
	gitRef          string
	gitPath         string
	gitCredentials  string
	pollInterval    time.Duration
	addr            string
	path            string
	mutatePath      string
	healthAddr      string
	metricsAddr     string
	certDir         string
	certName        string
	keyName         string
	timeout         time.Duration
	maxRequestBytes int64
	maxConcurrent   int
	maxOverdue      int
	bodyTimeout     time.Duration
	memoryBudget    string
	failOpen        bool
	kubeconfig      string
	namespaceLabels bool
	rotate          bool
	namespace       string
	secretName      string
	serviceName     string
	webhookConfig   string
	mutatingConfig  string
	leaderElection  string
	dnsNames        []string
	logDev          bool
}

func (o *serveOptions) BindFlags(fs *pflag.FlagSet) {
	o.gate.BindFlags(fs)
	def := admission.DefaultServeOptions()
	fs.StringVar(&o.repo, "repo", "", "repository checkout whose .gitgate.yaml and policy directories are used as 'gitgate check DIR' uses them (watched)")
	fs.StringVar(&o.gitURL, "git-url", "", "Git repository to take policies and .gitgate.yaml from (local path, file://, https://, ssh://)")
	fs.StringVar(&o.gitRef, "git-ref", "", "branch, tag or commit of --git-url (default: the remote's HEAD)")
	fs.StringVar(&o.gitPath, "git-path", "", "policy directory in --git-url (default: policies: of .gitgate.yaml, else policies/)")
	fs.StringVar(&o.gitCredentials, "git-credentials-file", "", "file holding USERNAME:TOKEN for an https --git-url (e.g. a mounted Secret); never printed")
	fs.DurationVar(&o.pollInterval, "poll-interval", admission.DefaultPollInterval, "how often policy sources are polled (directories are also watched)")
	fs.StringVar(&o.addr, "addr", def.Addr, "host:port of the TLS webhook listener")
	fs.StringVar(&o.path, "path", def.Path, "URL path of the validating AdmissionReview endpoint")
	fs.StringVar(&o.mutatePath, "mutate-path", def.MutatePath, `URL path of the mutating endpoint: JSONPatch answers from the policies' mutate rules ("0" turns it off)`)
	fs.StringVar(&o.healthAddr, "health-addr", def.HealthAddr, `host:port serving /healthz and /readyz over plain HTTP for the kubelet's probes; they never show error text ("0" turns it off)`)
	fs.StringVar(&o.metricsAddr, "metrics-addr", def.MetricsAddr, `loopback host:port serving Prometheus /metrics (unauthenticated, so never beyond the pod: scrape through an authenticating proxy such as kube-rbac-proxy); the --health-addr value serves it next to the probes if that is a loopback address ("0" turns it off)`)
	fs.StringVar(&o.certDir, "cert-dir", def.CertDir, "directory holding the serving certificate and key; reloaded when they change")
	fs.StringVar(&o.certName, "cert-name", def.CertName, "certificate file in --cert-dir")
	fs.StringVar(&o.keyName, "key-name", def.KeyName, "key file in --cert-dir")
	fs.DurationVar(&o.timeout, "timeout", admission.DefaultTimeout, "per-request limit (waiting for memory and a slot, reading, evaluating); past it the request is denied, even with --fail-open; keep it below the webhook's timeoutSeconds")
	fs.DurationVar(&o.bodyTimeout, "body-timeout", admission.DefaultBodyTimeout, "limit for reading one request body (the API server sends it at once)")
	fs.StringVar(&o.memoryBudget, "memory-budget", "", "memory for requests in flight, estimated from their size (e.g. 300Mi); large objects then wait their turn instead of together exceeding the limit (default: 60% of GOMEMLIMIT or the container's memory limit, else 1Gi)")
	fs.Int64Var(&o.maxRequestBytes, "max-request-bytes", admission.DefaultMaxRequestBytes, "refuse larger AdmissionReview bodies with HTTP 413")
	fs.IntVar(&o.maxConcurrent, "max-concurrent", def.Handler.MaxConcurrent, "evaluations at once (default GOMAXPROCS); further requests wait in order within --timeout")
	fs.IntVar(&o.maxOverdue, "max-overdue", 0, "evaluations past --timeout that may go on running aside, handing their slot on (default --max-concurrent)")
	fs.BoolVar(&o.failOpen, "fail-open", false, "admit (with a warning) requests that could not be evaluated because the webhook is not ready (no policies loaded, namespace labels unreadable); never for a slow, over-budget or panicking evaluation; default: deny them")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig for --rotate-certs and --namespace-labels out of the cluster (default: in-cluster, then $KUBECONFIG)")
	fs.BoolVar(&o.namespaceLabels, "namespace-labels", false, "read namespace labels from the cluster for Kyverno's namespaceSelector (needs get/list/watch on namespaces)")
	fs.BoolVar(&o.rotate, "rotate-certs", false, "create and rotate the serving certificate in --secret-name and inject its CA into --webhook-config (in-cluster)")
	fs.StringVar(&o.namespace, "namespace", "", "namespace of the Secret, Service and Lease (default: the pod's namespace)")
	fs.StringVar(&o.secretName, "secret-name", "gitgate-webhook-tls", "Secret the rotator keeps the CA and serving certificate in")
	fs.StringVar(&o.serviceName, "service-name", "gitgate-webhook", "Service in front of the webhook; the certificate is for SERVICE.NAMESPACE.svc")
	fs.StringVar(&o.webhookConfig, "webhook-config", "gitgate", "ValidatingWebhookConfiguration whose caBundle the rotator fills")
	fs.StringVar(&o.mutatingConfig, "mutating-webhook-config", "gitgate", `MutatingWebhookConfiguration whose caBundle the rotator fills too (needs get/list/watch on mutatingwebhookconfigurations; "" turns it off)`)
	fs.StringVar(&o.leaderElection, "leader-election-id", "gitgate-cert-rotator", `Lease that elects the replica that rotates certificates ("" turns leader election off)`)
	fs.StringSliceVar(&o.dnsNames, "extra-dns-name", nil, "extra DNS name for the rotated certificate (repeatable)")
	fs.BoolVar(&o.logDev, "log-dev", false, "human-readable logs instead of JSON")
}

func newServeCmd(stdout, stderr io.Writer) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the validating and mutating admission webhooks on the same policies as check",
		Long: `serve runs a validating admission webhook (admission.k8s.io/v1) that judges every object
the API server sends with the same policy code, built-in bundle and settings as 'gitgate check':
Enforce failures deny the request naming every failing policy/rule, Audit failures admit it
with warnings (kubectl prints them), objects no policy matches are admitted at once.

Beside it (--mutate-path, /mutate), a mutating webhook applies the policies' mutate rules
(ClusterPolicy/Policy: patchStrategicMerge, patchesJson6902, foreach) in Kyverno's order and
answers with a JSONPatch, so the cluster stores what 'gitgate render --mutated' prints and
'gitgate check' judges (check applies the same mutations first, unless --no-mutate); the
validating endpoint then judges the object as the API server sends it, already mutated. A
mutate rule that fails or errors denies the request with the rule's message when its
policy's failurePolicy is Fail (Kyverno's default); with Ignore the request is admitted with
a warning (the patch still carries what the other rules changed). mutateExisting rules are
not applied (a warning says so). DELETE, subresources and objects no mutate rule matches
get no patch, without running the engine.

Policies come from the built-in bundle, --policies directories (watched: a mounted ConfigMap
works), a repository checkout (--repo DIR: its .gitgate.yaml and policy directories, as
'gitgate check DIR' reads them; watched) and a Git repository (--git-url/--git-ref/--git-path,
polled; its .gitgate.yaml supplies registries, noBuiltin and values as in check). Flags win
over .gitgate.yaml. A changed set is swapped in whole; a
broken update keeps the last good set serving and shows in /readyz, the log and
gitgate_policy_reloads_total{result="error"}.

TLS only (1.2 or later): --cert-dir holds tls.crt/tls.key, reloaded on change. In a cluster,
--rotate-certs creates and rotates them in a Secret and injects the CA into the
ValidatingWebhookConfiguration and the MutatingWebhookConfiguration (one replica rotates, by
leader election). /healthz and /readyz
are served on --health-addr (no error text: reasons go to the log); Prometheus /metrics on
--metrics-addr, a loopback address (127.0.0.1:8080).

Bounded: a request is denied when its evaluation does not finish within --timeout (the
evaluation goes on aside, at most --max-overdue of them, its slot handed on); bodies are read
within --body-timeout; requests wait for their share of --memory-budget, so concurrent
large objects are judged one after another instead of exceeding the memory limit.

Runs until interrupted; exit code 2 when it cannot start or a part of it fails.`,
		Example: `  # out of cluster, with a certificate you made
  gitgate serve --cert-dir ./certs --policies ./policies --registry harbor.example.com

  # the policies and .gitgate.yaml of a checkout, as 'gitgate check .' uses them
  gitgate serve --cert-dir ./certs --repo .

  # in a cluster, policies from Git, certificates rotated (see deploy/)
  gitgate serve --rotate-certs --git-url https://git.example.com/platform/gitops.git --git-ref main`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, stderr)
		},
	}
	o.BindFlags(cmd.Flags())
	return cmd
}

func (o *serveOptions) run(cmd *cobra.Command, stderr io.Writer) error {
	fail := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "gitgate serve: "+format+"\n", a...)
		return exitCodeError{exitError}
	}
	log := zap.New(zap.WriteTo(stderr), zap.UseDevMode(o.logDev))
	ctrl.SetLogger(log)
	serveGC()

	gopts := policy.GateOptions{NoBuiltin: o.gate.noBuiltin, Registries: o.gate.registries}
	if o.gate.values != "" {
		v, err := policy.LoadValuesSource(osSource(o.gate.values))
		if err != nil {
			return fail("--values: %v", err)
		}
		gopts.Values = v
	}
	var sources []admission.Source
	if o.repo != "" {
		if st, err := os.Stat(o.repo); err != nil || !st.IsDir() {
			return fail("--repo %s: not a directory", o.repo)
		}
		sources = append(sources, admission.RepoSource{Root: o.repo})
	}
	for _, d := range o.gate.policyDirs {
		if _, err := os.Stat(d); err != nil {
			return fail("--policies %s: %v", d, err)
		}
		sources = append(sources, admission.DirSource{Path: d})
	}
	if o.gitURL != "" {
		src := &admission.GitSource{URL: o.gitURL, Ref: o.gitRef, Path: o.gitPath}
		if o.gitCredentials != "" {
			src.Auth = git.Auth{CredentialsFile: o.gitCredentials, Flags: git.AuthFlags{CredentialsFile: "--git-credentials-file"}}
			if err := src.Auth.Validate(); err != nil {
				return fail("%v", err)
			}
		}
		// --ssh-key and --known-hosts (gateFlags) serve an ssh --git-url too.
		src.Auth.SSHKeyFile, src.Auth.KnownHostsFile = o.gate.remote.sshKey, o.gate.remote.knownHosts
		src.Auth.Flags.SSHKey, src.Auth.Flags.KnownHosts = "--ssh-key", "--known-hosts"
		sources = append(sources, src)
	} else if o.gitRef != "" || o.gitPath != "" || o.gitCredentials != "" {
		return fail("--git-ref, --git-path and --git-credentials-file need --git-url")
	}
	ropts := admission.DefaultReloaderOptions()
	ropts.Gate, ropts.Sources, ropts.Interval, ropts.Log = gopts, sources, o.pollInterval, log.WithName("policies")
	reloader := admission.NewReloader(ropts)

	sopts := admission.DefaultServeOptions()
	sopts.Addr, sopts.Path, sopts.MutatePath, sopts.HealthAddr = o.addr, o.path, o.mutatePath, o.healthAddr
	sopts.MetricsAddr = o.metricsAddr
	sopts.CertDir, sopts.CertName, sopts.KeyName = o.certDir, o.certName, o.keyName
	sopts.Handler.Timeout, sopts.Handler.MaxRequestBytes, sopts.Handler.FailOpen = o.timeout, o.maxRequestBytes, o.failOpen
	sopts.Handler.MaxConcurrent, sopts.Handler.MaxOverdue, sopts.Handler.BodyTimeout = o.maxConcurrent, o.maxOverdue, o.bodyTimeout
	budget, from, err := memoryBudget(o.memoryBudget)
	if err != nil {
		return fail("--memory-budget %q: %v", o.memoryBudget, err)
	}
	sopts.Handler.MemoryBudget = budget
	log.Info("memory budget for requests in flight", "bytes", budget, "from", from)
	sopts.Handler.Log = log.WithName("admission")
	sopts.Reloader, sopts.Log, sopts.NamespaceLabels = reloader, log, o.namespaceLabels
	if o.rotate || o.namespaceLabels {
		cfg, err := o.restConfig()
		if err != nil {
			return fail("connect to the cluster: %v; run in a pod or pass --kubeconfig", err)
		}
		sopts.RestConfig = cfg
	}
	if o.rotate {
		ns := o.namespace
		if ns == "" {
			ns = podNamespace()
		}
		if ns == "" {
			return fail("--rotate-certs needs --namespace (or POD_NAMESPACE, or the in-cluster service account)")
		}
		sopts.Rotator = &admission.RotatorOptions{
			Namespace: ns, SecretName: o.secretName, ServiceName: o.serviceName,
			WebhookConfigName: o.webhookConfig, MutatingWebhookConfigName: o.mutatingConfig, LeaderElectionID: o.leaderElection, ExtraDNSNames: o.dnsNames,
		}
	}
	if err := admission.Serve(cmd.Context(), sopts); err != nil {
		return fail("%v", err)
	}
	return nil
}

// serveGC trades memory for latency: evaluation allocates heavily (about 0.4 MiB per
// Deployment) but keeps little, and at the default GOGC=100 the collector takes about a
// third of the CPU under load. The live heap is small (the policies), so GOGC=400 stays
// well inside deploy/'s 512 MiB limit; GOMEMLIMIT (deploy/ sets it from the limit) keeps a
// burst from crossing it. GOGC and GOMEMLIMIT in the environment win.
func serveGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// memoryBudget is --memory-budget, or 60% of the memory limit (GOMEMLIMIT or the
// container's cgroup limit, the lower), else 1 GiB. The rest of the limit is for the
// policies, caches and the collector's headroom. With a container limit, GOMEMLIMIT is
// kept at 90% of it at most (deploy/ sets it to the whole limit; with GOGC=400 the heap
// would otherwise grow into the OOM killer).
func memoryBudget(flag string) (int64, string, error) {
	limit, from := int64(0), ""
	if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 {
		limit, from = l, "GOMEMLIMIT"
	}
	if c := cgroupMemoryLimit(); c > 0 {
		if limit == 0 || limit > c/10*9 {
			limit, from = c/10*9, "90% of the cgroup memory limit"
			debug.SetMemoryLimit(limit)
		}
	}
	if flag != "" {
		q, err := resource.ParseQuantity(flag)
		if err != nil {
			return 0, "", err
		}
		if q.Value() < 16<<20 {
			return 0, "", fmt.Errorf("below 16Mi: too small to judge even small objects")
		}
		return q.Value(), "--memory-budget", nil
	}
	if limit > 0 {
		return limit / 10 * 6, "60% of " + from, nil
	}
	return admission.DefaultMemoryBudget, "default", nil
}

// cgroupMemoryLimit is the cgroup v2 (else v1) memory limit of this process, 0 if none.
func cgroupMemoryLimit() int64 {
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		if err != nil || v <= 0 || v >= 1<<50 { // "max", or v1's "unlimited" page-rounded max
			continue
		}
		return v
	}
	return 0
}

func (o *serveOptions) restConfig() (*rest.Config, error) {
	if o.kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	}
	return ctrl.GetConfig()
}

// podNamespace is the namespace the pod runs in: $POD_NAMESPACE, else the service account's.
func podNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	data, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
