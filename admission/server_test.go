package admission

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
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/policy"
	admissionv1 "k8s.io/api/admission/v1"
)

// writeServingCert writes a fresh self-signed certificate for 127.0.0.1 into dir (as
// tls.crt and tls.key, replaced atomically) and returns it.
func writeServingCert(t *testing.T, dir, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	} {
		tmp := filepath.Join(dir, "."+name)
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func localPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// Serve out of the cluster: TLS 1.2 or later over HTTP/1.1, certificates reloaded from
// --cert-dir when they change, health, readiness and metrics on their own port.
func TestServeLocal(t *testing.T) {
	certDir := t.TempDir()
	first := writeServingCert(t, certDir, "first")
	policies := t.TempDir()
	writeFile(t, filepath.Join(policies, "deny.yaml"), denyKindPolicy("deny-cm", "ConfigMap", "served locally"))
	writeFile(t, filepath.Join(policies, "label.yaml"), labelConfigMapsPolicy)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	sopts := DefaultServeOptions()
	sopts.Addr = "127.0.0.1:" + localPort(t)
	sopts.HealthAddr = "127.0.0.1:" + localPort(t)
	sopts.MetricsAddr = "127.0.0.1:" + localPort(t)
	sopts.CertDir = certDir
	sopts.Ready = ready
	sopts.Reloader = NewReloader(ReloaderOptions{Gate: policy.GateOptions{NoBuiltin: true}, Sources: []Source{DirSource{Path: policies}}})
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sopts) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not listening within 30s")
	}

	dial := func(cfg *tls.Config) (*tls.ConnectionState, error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", sopts.Addr, cfg)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		st := conn.ConnectionState()
		return &st, nil
	}
	if _, err := dial(&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("a TLS 1.1 client was accepted")
	}
	st, err := dial(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatalf("a TLS 1.2+ client: %v", err)
	}
	if st.NegotiatedProtocol == "h2" {
		t.Error("HTTP/2 was negotiated; the webhook serves HTTP/1.1 only")
	}
	if got := st.PeerCertificates[0].Subject.CommonName; got != first.Subject.CommonName {
		t.Fatalf("served certificate %q, want %q", got, first.Subject.CommonName)
	}

	// an AdmissionReview over TLS, verified against the certificate
	pool := x509.NewCertPool()
	pool.AddCert(first)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Post("https://"+sopts.Addr+"/validate", "application/json", bytes.NewReader(review(t, configMap("c"), reviewOpts{})))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"allowed":false`) || !strings.Contains(string(body), "served locally") {
		t.Errorf("answer %s, want our denial", body)
	}
	// the mutating endpoint beside it, on the same listener: the label policy's patch
	resp, err = client.Post("https://"+sopts.Addr+"/mutate", "application/json", bytes.NewReader(review(t, configMap("c"), reviewOpts{})))
	if err != nil {
		t.Fatal(err)
	}
	var mrev admissionv1.AdmissionReview
	err = json.NewDecoder(resp.Body).Decode(&mrev)
	resp.Body.Close()
	if err != nil || mrev.Response == nil {
		t.Fatalf("/mutate answer: %v", err)
	}
	if !mrev.Response.Allowed || mrev.Response.PatchType == nil || !strings.Contains(string(mrev.Response.Patch), "mutated") {
		t.Errorf("/mutate: allowed=%v patch=%s; want allowed with a patch adding the gitgate.dev/mutated label", mrev.Response.Allowed, mrev.Response.Patch)
	}

	// the certificate is replaced on disk: the next handshake presents the new one
	second := writeServingCert(t, certDir, "second")
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := dial(&tls.Config{InsecureSkipVerify: true})
		if err == nil && st.PeerCertificates[0].Subject.CommonName == second.Subject.CommonName {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replaced certificate was not served within 15s (last: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	get := func(path string) (int, string) {
		addr := sopts.HealthAddr
		if path == "/metrics" {
			addr = sopts.MetricsAddr
		}
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %s", code, body)
	}
	if code, body := get("/readyz"); code != http.StatusOK || !strings.Contains(body, "[+]policies: 2 loaded") || !strings.Contains(body, "[+]webhook: listening") {
		t.Errorf("/readyz = %d:\n%s", code, body)
	}
	if resp, err := http.Get("http://" + sopts.HealthAddr + "/metrics"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the health port: %v %v, want 404 (metrics have their own address)", resp, err)
	} else {
		resp.Body.Close()
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "gitgate_admission_requests_total") || !strings.Contains(body, "gitgate_policies_loaded 2") {
		t.Errorf("/metrics = %d, lacks the webhook's metrics", code)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v after cancel", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("serve did not stop within 30s of cancel")
	}
}
