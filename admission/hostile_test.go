package admission

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/policy"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// hostileCase is testdata/hostile/admission/<case>/case.yaml: how the handler is set up
// and what the answer to review.json must be, from the validating endpoint or (endpoint:
// mutate) the mutating one. policies/ in the case directory, when
// present, is the whole policy set (no built-in bundle); otherwise the built-in bundle.
type hostileCase struct {
	// handler settings
	FailOpen        bool   `json:"failOpen"`
	Timeout         string `json:"timeout"`         // default 4s
	MaxRequestBytes int64  `json:"maxRequestBytes"` // default DefaultMaxRequestBytes
	MemoryBudget    string `json:"memoryBudget"`    // default DefaultMemoryBudget
	NoPolicies      bool   `json:"noPolicies"`      // no gate loaded (not ready)
	Endpoint        string `json:"endpoint"`        // validate (default) or mutate
	// expectations
	Status  int      `json:"status"`  // HTTP status
	Allowed *bool    `json:"allowed"` // for status 200
	Message []string `json:"message"` // each in the result message, the warnings or the plain-text body
	Absent  []string `json:"absent"`  // in none of them
	Seconds float64  `json:"seconds"` // wall-time bound, default 5
}

// TestHostileAdmissionReviews runs every case under testdata/hostile/admission: the HTTP
// status, the verdict, the message and the time bound.
func TestHostileAdmissionReviews(t *testing.T) {
	root := filepath.Join("..", "testdata", "hostile", "admission")
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		n++
		dir := filepath.Join(root, d.Name())
		t.Run(d.Name(), func(t *testing.T) { runHostileCase(t, dir) })
	}
	if n < 5 {
		t.Fatalf("found %d cases under %s; the corpus is missing", n, root)
	}
}

func runHostileCase(t *testing.T, dir string) {
	data, err := os.ReadFile(filepath.Join(dir, "case.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c hostileCase
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		t.Fatalf("case.yaml: %v", err)
	}
	if c.Status == 0 {
		t.Fatal("case.yaml: status is required")
	}
	if c.Status == http.StatusOK && c.Allowed == nil {
		t.Fatal("case.yaml: allowed is required with status 200")
	}
	opts := DefaultHandlerOptions()
	opts.FailOpen = c.FailOpen
	opts.Timeout = 4 * time.Second
	if c.Timeout != "" {
		if opts.Timeout, err = time.ParseDuration(c.Timeout); err != nil {
			t.Fatalf("case.yaml: timeout: %v", err)
		}
	}
	if c.MaxRequestBytes > 0 {
		opts.MaxRequestBytes = c.MaxRequestBytes
	}
	if c.MemoryBudget != "" {
		q, err := resource.ParseQuantity(c.MemoryBudget)
		if err != nil {
			t.Fatalf("case.yaml: memoryBudget: %v", err)
		}
		opts.MemoryBudget = q.Value()
	}
	var gate *Gate
	switch {
	case c.NoPolicies:
	case exists(filepath.Join(dir, "policies")):
		g, err := policy.OpenGate(policy.GateOptions{NoBuiltin: true, PolicyDirs: []policy.Source{{FS: os.DirFS(filepath.Join(dir, "policies")), Root: ".", Display: "policies"}}})
		if err != nil {
			t.Fatalf("open the case's policies: %v", err)
		}
		gate = NewGate(g, "case", time.Now())
	default:
		gate = mustBuiltin(t)
	}
	body, err := os.ReadFile(filepath.Join(dir, "review.json"))
	if err != nil {
		t.Fatal(err)
	}
	var handler http.Handler = NewHandler(func() *Gate { return gate }, opts)
	switch c.Endpoint {
	case "", "validate":
	case "mutate":
		handler = handler.(*Handler).Mutating()
	default:
		t.Fatalf("case.yaml: endpoint %q: validate or mutate", c.Endpoint)
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()

	bound := time.Duration(c.Seconds * float64(time.Second))
	if bound == 0 {
		bound = 5 * time.Second
	}
	start := time.Now()
	resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed > bound {
		t.Errorf("answered in %s, over the bound of %s", elapsed.Round(time.Millisecond), bound)
	}
	if resp.StatusCode != c.Status {
		t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, c.Status, truncate(string(out)))
	}
	text := string(out)
	if c.Status == http.StatusOK {
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(out, &review); err != nil || review.Response == nil {
			t.Fatalf("not an AdmissionReview response (%v): %s", err, truncate(text))
		}
		r := review.Response
		if r.Allowed != *c.Allowed {
			t.Errorf("allowed = %v, want %v (%+v, warnings %q)", r.Allowed, *c.Allowed, r.Result, r.Warnings)
		}
		text = strings.Join(r.Warnings, "\n")
		if r.Result != nil {
			text = r.Result.Message + "\n" + text
		}
	}
	for _, m := range c.Message {
		if !strings.Contains(text, m) {
			t.Errorf("answer lacks %q:\n%s", m, truncate(text))
		}
	}
	for _, m := range c.Absent {
		if strings.Contains(string(out), m) {
			t.Errorf("answer contains %q", m)
		}
	}
	t.Logf("HTTP %d in %s", resp.StatusCode, elapsed.Round(time.Millisecond))
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func truncate(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "..."
	}
	return s
}
