package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
)

const expiringException = `apiVersion: kyverno.io/v2
kind: PolicyException
metadata:
  name: legacy-web
  namespace: prod
  annotations:
    gitgate.dev/expires: "2027-01-31"
    gitgate.dev/ticket: OPS-123
spec:
  exceptions:
  - policyName: non-root
    ruleNames: [check, autogen-check]
  match:
    any:
    - resources: {kinds: [Deployment, Pod], names: [web], namespaces: [prod]}
`

func at(s string) func() time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return func() time.Time { return t }
}

func TestExceptionExpiry(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name          string
		exception     string
		now           func() time.Time
		want          []string
		wantException string
		wantNotice    string
	}{
		{
			name:          "valid through the expiry date",
			exception:     expiringException,
			now:           at("2027-01-31T23:59:59Z"),
			want:          []string{"non-root/autogen-check=skip:Enforce"},
			wantException: "prod/legacy-web (ticket OPS-123)",
		},
		{
			name:       "expired the day after: the finding is back and the exception is reported",
			exception:  expiringException,
			now:        at("2027-02-01T00:00:00Z"),
			want:       []string{"non-root/autogen-check=fail:Enforce"},
			wantNotice: "p/b.yaml:1:1: PolicyException/prod/legacy-web (ticket OPS-123) expired (gitgate.dev/expires: 2027-01-31): it no longer applies, so the findings it covered are reported again; renew the date or remove the exception",
		},
		{
			name:       "RFC 3339 expiry is exact",
			exception:  strings.Replace(expiringException, `"2027-01-31"`, `"2027-01-31T12:00:00+01:00"`, 1),
			now:        at("2027-01-31T11:00:00Z"),
			want:       []string{"non-root/autogen-check=fail:Enforce"},
			wantNotice: "expired (gitgate.dev/expires: 2027-01-31T12:00:00+01:00)",
		},
		{
			name:          "no expiry never expires; no ticket, no parentheses",
			exception:     exception,
			now:           at("2999-01-01T00:00:00Z"),
			want:          []string{"non-root/autogen-check=skip:Enforce"},
			wantException: "prod/legacy-web",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng, err := NewEngine(mustSet(t, podRunAsNonRoot, tt.exception), Options{Now: tt.now})
			if err != nil {
				t.Fatal(err)
			}
			res := eng.Evaluate(ctx, mustResource(t, deployment(2, rootContainers)), Request{})
			if diff := cmp.Diff(tt.want, summarise(res)); diff != "" {
				t.Fatalf("results (-want +got):\n%s", diff)
			}
			if res[0].Exception != tt.wantException {
				t.Errorf("exception %q, want %q", res[0].Exception, tt.wantException)
			}
			notices := strings.Join(eng.Notices(), "\n")
			if tt.wantNotice == "" && notices != "" || !strings.Contains(notices, tt.wantNotice) {
				t.Errorf("notices %q, want %q", notices, tt.wantNotice)
			}
		})
	}
}

// A webhook runs for weeks: an exception that expires while it runs stops applying.
func TestExceptionExpiresWhileRunning(t *testing.T) {
	now := at("2027-01-31T12:00:00Z")()
	eng, err := NewEngine(mustSet(t, podRunAsNonRoot, expiringException), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	r := mustResource(t, deployment(2, rootContainers))
	if got := summarise(eng.Evaluate(context.Background(), r, Request{})); !cmp.Equal(got, []string{"non-root/autogen-check=skip:Enforce"}) {
		t.Fatalf("before expiry: %v", got)
	}
	now = now.Add(24 * time.Hour)
	if got := summarise(eng.Evaluate(context.Background(), r, Request{})); !cmp.Equal(got, []string{"non-root/autogen-check=fail:Enforce"}) {
		t.Fatalf("after expiry: %v", got)
	}
}

func TestExceptionMalformedExpiry(t *testing.T) {
	bad := strings.Replace(expiringException, `"2027-01-31"`, `"31/01/2027"`, 1)
	_, err := Load(mapFS(podRunAsNonRoot, bad), "p")
	var pe *LoadError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a *LoadError", err)
	}
	want := `p/b.yaml:7:5: PolicyException/legacy-web: gitgate.dev/expires "31/01/2027" is neither a date (2027-01-31) nor an RFC 3339 time (2027-01-31T18:00:00Z)`
	if err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
}

func TestOpenGateReportsExpiredExceptions(t *testing.T) {
	g, err := OpenGate(GateOptions{
		NoBuiltin:  true,
		PolicyDirs: []Source{{FS: mapFS(podRunAsNonRoot, expiringException), Root: "p", Display: "policies"}},
		Now:        at("2028-01-01T00:00:00Z"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(g.Warnings, "\n"); !strings.Contains(w, "policies/b.yaml:1:1: PolicyException/prod/legacy-web (ticket OPS-123) expired") {
		t.Errorf("warnings %q do not report the expired exception", w)
	}
}

// mapFS lays documents out as mustSet does: p/a.yaml, p/b.yaml, ...
func mapFS(docs ...string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i, d := range docs {
		fsys["p/"+string(rune('a'+i))+".yaml"] = &fstest.MapFile{Data: []byte(d)}
	}
	return fsys
}
