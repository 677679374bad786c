// Command loadgen is the webhook benchmark's load generator (see hack/bench/webhook.sh):
// it POSTs one AdmissionReview (a compliant Deployment) to a gitgate webhook on the
// loopback interface at several concurrency levels, bounded in count and time, and
// reports throughput, latency percentiles and errors; it also times the in-process
// evaluation of the same object against the same built-in bundle, in the same run, and
// prints the ratio.
//
//	loadgen -gencert DIR                      # CA + serving certificate for 127.0.0.1
//	loadgen -wait http://127.0.0.1:18081/readyz
//	loadgen -url https://127.0.0.1:19443/validate -ca DIR/ca.crt -n 5000 -c 1,16,64
//
// It refuses any address that is not loopback.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/policy"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func main() {
	ctrllog.SetLogger(logr.Discard())
	var (
		target   = flag.String("url", "", "webhook URL (loopback only)")
		caFile   = flag.String("ca", "", "CA certificate that signed the webhook's certificate")
		n        = flag.Int("n", 5000, "requests per concurrency level (upper bound)")
		levels   = flag.String("c", "1,16,64", "concurrency levels")
		maxTime  = flag.Duration("max-time", 30*time.Second, "time limit per concurrency level")
		warmup   = flag.Int("warmup", 200, "requests before measuring")
		inproc   = flag.Int("inprocess", 2000, "in-process evaluations of the same object (0: skip)")
		gencert  = flag.String("gencert", "", "write ca.crt, tls.crt, tls.key for 127.0.0.1/localhost into this directory and exit")
		waitURL  = flag.String("wait", "", "wait until this URL (loopback only) answers 200, then exit")
		waitTime = flag.Duration("wait-time", 60*time.Second, "how long -wait waits")
	)
	flag.Parse()
	var err error
	switch {
	case *gencert != "":
		err = genCert(*gencert)
	case *waitURL != "":
		err = wait(*waitURL, *waitTime)
	case *target != "":
		err = bench(*target, *caFile, *n, *levels, *maxTime, *warmup, *inproc)
	default:
		err = errors.New("pass -url, -gencert or -wait")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		os.Exit(2)
	}
}

// loopback refuses every URL whose host is not a loopback address.
func loopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s: only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed", raw)
	}
	return nil
}

func wait(raw string, d time.Duration) error {
	if err := loopback(raw); err != nil {
		return err
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get(raw)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200 within %s", raw, d)
}

// deployment is a Deployment that passes every built-in policy, so every rule runs to
// the end (the worst case for the engine short of failures).
func deployment() map[string]any {
	return map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "shop", "labels": map[string]any{"app.kubernetes.io/name": "web"}},
		"spec": map[string]any{
			"replicas": 2,
			"selector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "web"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app.kubernetes.io/name": "web"}},
				"spec": map[string]any{
					"securityContext": map[string]any{"runAsNonRoot": true, "runAsUser": 1000},
					"containers": []any{map[string]any{
						"name": "web", "image": "nginx:1.27.0",
						"resources": map[string]any{
							"requests": map[string]any{"cpu": "100m", "memory": "64Mi"},
							"limits":   map[string]any{"cpu": "500m", "memory": "128Mi"},
						},
						"securityContext": map[string]any{"allowPrivilegeEscalation": false, "runAsNonRoot": true},
						"livenessProbe":   map[string]any{"httpGet": map[string]any{"path": "/healthz", "port": 8080}},
						"readinessProbe":  map[string]any{"httpGet": map[string]any{"path": "/readyz", "port": 8080}},
					}},
				},
			},
		},
	}
}

func reviewBody(obj map[string]any) ([]byte, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	dry := false
	return json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "bench", Kind: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
			Resource:  metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
			Namespace: "shop", Name: "web", Operation: admissionv1.Create,
			UserInfo: authenticationv1.UserInfo{Username: "bench", Groups: []string{"system:authenticated"}},
			Object:   runtime.RawExtension{Raw: raw}, DryRun: &dry,
		},
	})
}

type level struct {
	concurrency, requests, errors int
	elapsed                       time.Duration
	lat                           []time.Duration
	firstErr                      string
}

func bench(target, caFile string, n int, levels string, maxTime time.Duration, warmup, inproc int) error {
	if err := loopback(target); err != nil {
		return err
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pemData, err := os.ReadFile(caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return fmt.Errorf("%s: no certificate", caFile)
		}
		tlsCfg.RootCAs = pool
	}
	body, err := reviewBody(deployment())
	if err != nil {
		return err
	}
	var cs []int
	for _, s := range strings.Split(levels, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 || c > 1024 {
			return fmt.Errorf("-c %s: want numbers from 1 to 1024", levels)
		}
		cs = append(cs, c)
	}

	// In-process first, alone on the machine: decode + evaluate, as the handler does.
	var inDecode, inEval []time.Duration
	if inproc > 0 {
		gate, err := policy.OpenGate(policy.GateOptions{})
		if err != nil {
			return err
		}
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &review); err != nil {
			return err
		}
		ctx := context.Background()
		for i := 0; i < inproc+warmup; i++ {
			t0 := time.Now()
			var m map[string]any
			if err := utiljson.Unmarshal(review.Request.Object.Raw, &m); err != nil {
				return err
			}
			obj := &unstructured.Unstructured{Object: m}
			t1 := time.Now()
			results := gate.Evaluate(ctx, policy.Resource{Object: obj, Origin: policy.Origin{File: "admission:Deployment/shop/web"}}, policy.Request{Operation: "CREATE"})
			t2 := time.Now()
			for _, r := range results {
				if r.Blocking() || r.Finding() {
					return fmt.Errorf("in-process: the benchmark object is not compliant: %s/%s: %s", r.Policy, r.Rule, r.Message)
				}
			}
			if i >= warmup {
				inDecode = append(inDecode, t2.Sub(t0))
				inEval = append(inEval, t2.Sub(t1))
			}
		}
	}

	fmt.Printf("gitgate webhook benchmark: AdmissionReview for a compliant Deployment (%d bytes), built-in bundle, %s\n", len(body), target)
	fmt.Printf("%-11s %9s %7s %11s %9s %9s %9s %9s\n", "concurrency", "requests", "errors", "req/s", "p50", "p90", "p99", "max")
	var results []level
	for _, c := range cs {
		tr := &http.Transport{TLSClientConfig: tlsCfg, MaxIdleConns: c, MaxIdleConnsPerHost: c, MaxConnsPerHost: c, IdleConnTimeout: time.Minute}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		// warm the connections (TLS handshakes) and the server
		if _, err := run(client, target, body, c, warmup, maxTime); err != nil {
			return err
		}
		l, err := run(client, target, body, c, n, maxTime)
		if err != nil {
			return err
		}
		tr.CloseIdleConnections()
		results = append(results, l)
		slices.Sort(l.lat)
		fmt.Printf("%-11d %9d %7d %11.0f %9s %9s %9s %9s\n", c, l.requests, l.errors,
			float64(l.requests)/l.elapsed.Seconds(), ms(pct(l.lat, 50)), ms(pct(l.lat, 90)), ms(pct(l.lat, 99)), ms(pct(l.lat, 100)))
		if l.firstErr != "" {
			fmt.Printf("  first error: %s\n", l.firstErr)
		}
	}
	if len(inEval) > 0 {
		slices.Sort(inEval)
		slices.Sort(inDecode)
		fmt.Printf("\nin-process, same object, same bundle, one goroutine (%d runs):\n", len(inEval))
		fmt.Printf("  Evaluate:            p50 %s  p99 %s\n", ms(pct(inEval, 50)), ms(pct(inEval, 99)))
		fmt.Printf("  JSON decode+Evaluate: p50 %s  p99 %s\n", ms(pct(inDecode, 50)), ms(pct(inDecode, 99)))
		for _, l := range results {
			if l.concurrency == 1 {
				fmt.Printf("  webhook request at concurrency 1, p50 %s = %.2fx the in-process decode+Evaluate p50 (%.2fx Evaluate alone)\n",
					ms(pct(l.lat, 50)), float64(pct(l.lat, 50))/float64(pct(inDecode, 50)), float64(pct(l.lat, 50))/float64(pct(inEval, 50)))
			}
		}
	}
	for _, l := range results {
		if l.errors > 0 {
			return fmt.Errorf("%d errors at concurrency %d", l.errors, l.concurrency)
		}
	}
	return nil
}

// run sends up to n requests with c workers, stopping at maxTime.
func run(client *http.Client, target string, body []byte, c, n int, maxTime time.Duration) (level, error) {
	l := level{concurrency: c}
	var (
		next   atomic.Int64
		mu     sync.Mutex
		errs   atomic.Int64
		first  atomic.Value
		wg     sync.WaitGroup
		lats   = make([][]time.Duration, c)
		start  = time.Now()
		expiry = start.Add(maxTime)
	)
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for next.Add(1) <= int64(n) && time.Now().Before(expiry) {
				t0 := time.Now()
				err := call(client, target, body)
				d := time.Since(t0)
				if err != nil {
					errs.Add(1)
					first.CompareAndSwap(nil, err.Error())
					continue
				}
				lats[w] = append(lats[w], d)
			}
		}(w)
	}
	wg.Wait()
	l.elapsed = time.Since(start)
	mu.Lock()
	for _, ls := range lats {
		l.lat = append(l.lat, ls...)
	}
	mu.Unlock()
	l.errors = int(errs.Load())
	l.requests = len(l.lat) + l.errors
	if v := first.Load(); v != nil {
		l.firstErr = v.(string)
	}
	return l, nil
}

func call(client *http.Client, target string, body []byte) error {
	resp, err := client.Post(target, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, data)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &out); err != nil || out.Response == nil {
		return fmt.Errorf("not an AdmissionReview answer: %.200s", data)
	}
	if !out.Response.Allowed || out.Response.UID != "bench" || len(out.Response.Warnings) > 0 {
		return fmt.Errorf("unexpected verdict for a compliant Deployment: allowed=%v uid=%s warnings=%q", out.Response.Allowed, out.Response.UID, out.Response.Warnings)
	}
	return nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// genCert writes a CA and a serving certificate for 127.0.0.1 and localhost.
func genCert(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gitgate bench CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"ca.crt":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}
