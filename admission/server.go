package admission

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// ServeOptions configure the webhook service. Start from DefaultServeOptions.
type ServeOptions struct {
	// Addr is host:port of the TLS webhook listener.
	Addr string
	// Path is where the validating AdmissionReview endpoint is served.
	Path string
	// MutatePath is where the mutating endpoint is served (Handler.Mutating: the same
	// gate, limits and metrics); "" or "0" turns it off.
	MutatePath string
	// HealthAddr is host:port of the plain-HTTP listener for /healthz and /readyz (the
	// kubelet probes it from the node, so it listens on every interface by default; it
	// says ready or not and why in general terms, never error text); "0" turns it off.
	HealthAddr string
	// MetricsAddr is host:port of /metrics, on a loopback address only (127.0.0.1 by
	// default): only the pod itself reads it, a sidecar such as kube-rbac-proxy exposes
	// it with authentication. The same address as HealthAddr serves /metrics next to the
	// probes. "0" turns it off.
	MetricsAddr string
	// CertDir holds tls.crt and tls.key (CertName, KeyName); they are reloaded when they
	// change on disk (controller-runtime's certwatcher). With Rotator set, the Secret the
	// rotator writes must be mounted here.
	CertDir, CertName, KeyName string
	// Handler configures request handling.
	Handler HandlerOptions
	// Reloader provides the gate; Serve starts it.
	Reloader *Reloader
	// RestConfig, when set, connects to the cluster: for namespace labels, and for the
	// certificate rotator and its leader election.
	RestConfig *rest.Config
	// NamespaceLabels reads namespace labels from the cluster (needs RestConfig and RBAC
	// get/list/watch on namespaces).
	NamespaceLabels bool
	// Rotator, when set, creates and rotates the serving certificate in a Secret and
	// injects the CA into the ValidatingWebhookConfiguration (needs RestConfig).
	Rotator *RotatorOptions
	// Log is the service's logger.
	Log logr.Logger
	// Ready, when set, is closed once the webhook listener accepts connections.
	Ready chan<- struct{}
}

// RotatorOptions configure in-cluster certificate rotation with cert-controller.
type RotatorOptions struct {
	// Namespace of the Secret and of the leader-election Lease.
	Namespace string
	// SecretName is the Secret holding the CA and serving certificate (it must exist; the
	// install manifests create it empty).
	SecretName string
	// ServiceName is the webhook's Service; the certificate is for SERVICE.NAMESPACE.svc.
	ServiceName string
	// ExtraDNSNames are added to the certificate (e.g. localhost in tests).
	ExtraDNSNames []string
	// WebhookConfigName is the ValidatingWebhookConfiguration the CA is injected into.
	WebhookConfigName string
	// MutatingWebhookConfigName, when set, is the MutatingWebhookConfiguration the CA is
	// injected into as well.
	MutatingWebhookConfigName string
	// LeaderElectionID names the Lease that picks the one replica that rotates; empty
	// turns leader election off (one replica only).
	LeaderElectionID string
	// ControllerName names the rotator's controller; unique per process (default
	// gitgate-cert-rotator).
	ControllerName string
}

// DefaultServeOptions: webhook on :9443 at /validate and /mutate, health on :8081,
// metrics on 127.0.0.1:8080.
func DefaultServeOptions() ServeOptions {
	return ServeOptions{
		Addr: ":9443", Path: "/validate", MutatePath: "/mutate", HealthAddr: ":8081", MetricsAddr: "127.0.0.1:8080",
		CertDir:  filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs"),
		CertName: "tls.crt", KeyName: "tls.key",
		Handler: DefaultHandlerOptions(), Log: logr.Discard(),
	}
}

// TLSConfig is the webhook listener's TLS policy: TLS 1.2 at least, HTTP/1.1 only (the
// API server does not need HTTP/2, and refusing it closes the rapid-reset class of
// attacks, CVE-2023-44487).
func TLSConfig(c *tls.Config) {
	c.MinVersion = tls.VersionTLS12
	c.NextProtos = []string{"http/1.1"}
}

// Serve runs the webhook until ctx ends: it loads the policies, serves AdmissionReviews
// over TLS, follows policy and certificate changes, and serves health, readiness and
// metrics on HealthAddr.
func Serve(ctx context.Context, o ServeOptions) error {
	if o.Reloader == nil {
		return errors.New("serve: no policy reloader")
	}
	log := o.Log
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	host, portStr, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", o.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 {
		return fmt.Errorf("--addr %s: need a port number above 0", o.Addr)
	}
	if o.Rotator != nil && o.RestConfig == nil {
		return errors.New("certificate rotation needs a cluster connection (in-cluster config or --kubeconfig)")
	}
	metricsOn := o.MetricsAddr != "" && o.MetricsAddr != "0"
	if metricsOn && !loopback(o.MetricsAddr) {
		return fmt.Errorf("--metrics-addr %s would serve metrics beyond this host without authentication; bind it to 127.0.0.1 (and put an authenticating proxy such as kube-rbac-proxy in front to scrape it from elsewhere)", o.MetricsAddr)
	}
	if _, err := o.Reloader.Reload(ctx); err != nil {
		// not fatal: not ready until a later poll loads them
		log.Error(err, "initial policy load failed")
	}

	hopts := o.Handler
	if hopts.Log.GetSink() == nil {
		hopts.Log = log.WithName("handler")
	}
	srv := webhook.NewServer(webhook.Options{
		Host: host, Port: port, CertDir: o.CertDir, CertName: o.CertName, KeyName: o.KeyName,
		TLSOpts: []func(*tls.Config){TLSConfig},
	})

	var (
		mgr          manager.Manager
		rotatorReady chan struct{}
	)
	if o.RestConfig != nil {
		mopts := ctrl.Options{
			Metrics:                metricsserver.Options{BindAddress: "0"}, // ours is on HealthAddr
			HealthProbeBindAddress: "0",
			Logger:                 log,
		}
		if o.Rotator != nil && o.Rotator.LeaderElectionID != "" {
			mopts.LeaderElection = true
			mopts.LeaderElectionID = o.Rotator.LeaderElectionID
			mopts.LeaderElectionNamespace = o.Rotator.Namespace
			mopts.LeaderElectionReleaseOnCancel = true
		}
		mgr, err = ctrl.NewManager(o.RestConfig, mopts)
		if err != nil {
			return fmt.Errorf("connect to the cluster: %w", err)
		}
		if o.NamespaceLabels {
			hopts.NamespaceLabels = namespaceLabels(mgr.GetClient())
		}
		if o.Rotator != nil {
			rotatorReady = make(chan struct{})
			ro := o.Rotator
			cr := &rotator.CertRotator{
				SecretKey:             types.NamespacedName{Namespace: ro.Namespace, Name: ro.SecretName},
				CertDir:               o.CertDir,
				CertName:              o.CertName,
				KeyName:               o.KeyName,
				CAName:                "gitgate-ca",
				CAOrganization:        "gitgate",
				DNSName:               ro.ServiceName + "." + ro.Namespace + ".svc",
				ExtraDNSNames:         append([]string{ro.ServiceName + "." + ro.Namespace + ".svc.cluster.local"}, ro.ExtraDNSNames...),
				IsReady:               rotatorReady,
				Webhooks:              []rotator.WebhookInfo{{Name: ro.WebhookConfigName, Type: rotator.Validating}},
				RequireLeaderElection: ro.LeaderElectionID != "",
				FieldOwner:            "gitgate",
				ControllerName:        ro.ControllerName,
			}
			if ro.MutatingWebhookConfigName != "" {
				cr.Webhooks = append(cr.Webhooks, rotator.WebhookInfo{Name: ro.MutatingWebhookConfigName, Type: rotator.Mutating})
			}
			if cr.ControllerName == "" {
				cr.ControllerName = "gitgate-cert-rotator"
			}
			if err := rotator.AddRotator(mgr, cr); err != nil {
				return fmt.Errorf("certificate rotator: %w", err)
			}
		}
	}
	handler := NewHandler(o.Reloader.Gate, hopts)
	srv.Register(o.Path, handler)
	if o.MutatePath != "" && o.MutatePath != "0" {
		if o.MutatePath == o.Path {
			return fmt.Errorf("--mutate-path %s is the validating --path too; give them different paths", o.MutatePath)
		}
		srv.Register(o.MutatePath, handler.Mutating())
	}

	// The webhook listener starts once the certificate files exist: with the rotator,
	// the kubelet projects the Secret after the leader first writes it.
	started := make(chan struct{})
	runWebhook := func(ctx context.Context) error {
		if err := waitForFiles(ctx, log, filepath.Join(o.CertDir, o.CertName), filepath.Join(o.CertDir, o.KeyName)); err != nil {
			return err
		}
		go func() {
			if waitListening(ctx, net.JoinHostPort(dialHost(host), portStr)) {
				close(started)
				if o.Ready != nil {
					close(o.Ready)
				}
			}
		}()
		return srv.Start(ctx)
	}

	ready := &readiness{reloader: o.Reloader, started: started, rotator: rotatorReady, rotatorLeader: o.Rotator != nil && o.Rotator.LeaderElectionID != ""}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
				cancel() // one part failing stops the service: Kubernetes restarts it
			}
		}()
	}
	healthOn := o.HealthAddr != "" && o.HealthAddr != "0"
	metricsHandler := promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{})
	if healthOn {
		var withMetrics http.Handler
		if metricsOn && o.MetricsAddr == o.HealthAddr {
			withMetrics, metricsOn = metricsHandler, false
		}
		goRun("health server", func(ctx context.Context) error { return serveHealth(ctx, o.HealthAddr, ready, withMetrics) })
	}
	if metricsOn {
		goRun("metrics server", func(ctx context.Context) error { return serveMetrics(ctx, o.MetricsAddr, metricsHandler) })
	}
	if mgr != nil {
		if err := mgr.Add(everyReplica(runWebhook)); err != nil {
			return err
		}
		if err := mgr.Add(o.Reloader); err != nil {
			return err
		}
		goRun("manager", mgr.Start)
	} else {
		goRun("webhook server", runWebhook)
		goRun("policy reloader", o.Reloader.Start)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// everyReplica is a manager runnable that runs on every replica, leader or not: the
// manager runs plain RunnableFuncs only on the leader.
type everyReplica func(context.Context) error

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }
func (everyReplica) NeedLeaderElection() bool          { return false }

func namespaceLabels(c client.Client) func(ctx context.Context, ns string) (map[string]string, error) {
	return func(ctx context.Context, ns string) (map[string]string, error) {
		var n corev1.Namespace
		if err := c.Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil {
			return nil, err
		}
		if n.Labels == nil {
			return map[string]string{}, nil
		}
		return n.Labels, nil
	}
}

func dialHost(host string) string {
	if host == "" || host == "0.0.0.0" || host == "::" {
		return "127.0.0.1"
	}
	return host
}

// waitForFiles waits until every file exists, logging once a minute.
func waitForFiles(ctx context.Context, log logr.Logger, files ...string) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	last := time.Time{}
	for {
		missing := ""
		for _, f := range files {
			if _, err := os.Stat(f); err != nil {
				missing = f
				break
			}
		}
		if missing == "" {
			return nil
		}
		if time.Since(last) > time.Minute {
			log.Info("waiting for the serving certificate", "file", missing)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// waitListening reports once a TCP connection to addr succeeds (false when ctx ends first).
func waitListening(ctx context.Context, addr string) bool {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readiness is /readyz: the policy set loaded, the webhook listening and, with the
// rotator, the certificate in place.
type readiness struct {
	reloader      *Reloader
	started       <-chan struct{}
	rotator       <-chan struct{}
	rotatorLeader bool
}

func (r *readiness) check() (bool, []string) {
	ok := true
	var lines []string
	if err := r.reloader.Check(nil); err != nil {
		// The reason (a path, a parse error, a Git URL) goes to the log, not to whoever
		// can reach the probe port.
		ok = false
		lines = append(lines, "[-]policies: not ready: no policy set loaded (the reason is in the log)")
	} else {
		lines = append(lines, "[+]"+r.reloader.Detail())
	}
	select {
	case <-r.started:
		lines = append(lines, "[+]webhook: listening")
	default:
		ok = false
		lines = append(lines, "[-]webhook: not listening yet (waiting for the serving certificate?)")
	}
	if r.rotator != nil {
		select {
		case <-r.rotator:
			lines = append(lines, "[+]certificates: rotated and CA injected")
		default:
			// Only the leader runs the rotator; the others serve the Secret it wrote.
			lines = append(lines, "[ ]certificates: rotator not ready on this replica (another may lead)")
		}
	}
	return ok, lines
}

// serveHealth serves /healthz and /readyz (always with a detail body) in plain HTTP on
// addr, and /metrics when metricsHandler is set.
func serveHealth(ctx context.Context, addr string, ready *readiness, metricsHandler http.Handler) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, lines := ready.check()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, strings.Join(lines, "\n"))
		if ok {
			fmt.Fprintln(w, "readyz check passed")
		} else {
			fmt.Fprintln(w, "readyz check failed")
		}
	})
	if metricsHandler != nil {
		mux.Handle("/metrics", metricsHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return serveHTTP(ctx, ln, mux)
}

// serveMetrics serves /metrics in plain HTTP on addr (a loopback address).
func serveMetrics(ctx context.Context, addr string, h http.Handler) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return serveHTTP(ctx, ln, mux)
}

// serveHTTP serves on ln until ctx ends, with timeouts so slow clients hold nothing long.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 90 * time.Second, MaxHeaderBytes: 64 << 10}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// loopback reports whether addr's host is a loopback address or localhost (an empty
// host is every interface).
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
