package admission

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The webhook's Prometheus metrics, registered in controller-runtime's registry (served on
// the health port's /metrics together with the Go runtime and controller-runtime metrics).
var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitgate_admission_requests_total",
		Help: "Admission requests answered, by verdict: allowed, warned (allowed with Audit warnings), denied, error (could not evaluate or malformed).",
	}, []string{"verdict"})
	policyResultsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitgate_admission_policy_results_total",
		Help: "Policy failures seen in admission requests, by policy and effect (denied: Enforce, warned: Audit).",
	}, []string{"policy", "effect"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gitgate_admission_request_duration_seconds",
		Help:    "Time from reading an AdmissionReview to writing the answer, by verdict.",
		Buckets: []float64{0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1, 2, 5, 10},
	}, []string{"verdict"})
	badRequestsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gitgate_admission_bad_requests_total",
		Help: "HTTP requests refused before judging: not an AdmissionReview, too large, wrong method or content type.",
	})
	evalErrorsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gitgate_admission_evaluation_errors_total",
		Help: "Requests that could not be judged: evaluation timed out, panicked or was over budget (denied), or no policies were loaded (the failure mode).",
	})
	overBudgetTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gitgate_admission_over_budget_total",
		Help: "Requests refused because their memory share of --memory-budget was not free within the timeout.",
	})
	inBudget = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gitgate_admission_memory_reserved_bytes",
		Help: "Memory budget held by requests in flight (estimated from their size), including overdue evaluations.",
	})
	overdueEvaluations = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gitgate_admission_overdue_evaluations",
		Help: "Evaluations still running past their request's deadline (the request was denied); at most --max-overdue.",
	})
	reloadsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitgate_policy_reloads_total",
		Help: "Policy set reloads, by result: success (a new set serves) or error (the last good set keeps serving).",
	}, []string{"result"})
	loadErrorsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitgate_policy_load_errors_total",
		Help: "Policy sources that could not be read or policy sets that did not load, by source.",
	}, []string{"source"})
	policiesLoaded = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gitgate_policies_loaded",
		Help: "Policies in the set that serves.",
	})
	lastReloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gitgate_policy_last_reload_success",
		Help: "1 when the last reload attempt succeeded, 0 when the last good set serves after a failed one.",
	})
)

func init() {
	metrics.Registry.MustRegister(requestsTotal, policyResultsTotal, requestDuration, badRequestsTotal,
		evalErrorsTotal, overBudgetTotal, inBudget, overdueEvaluations, reloadsTotal, loadErrorsTotal, policiesLoaded, lastReloadOK)
}

func countRequest(verdict string)       { requestsTotal.WithLabelValues(verdict).Inc() }
func countPolicy(policy, effect string) { policyResultsTotal.WithLabelValues(policy, effect).Inc() }
func observeLatency(verdict string, d time.Duration) {
	requestDuration.WithLabelValues(verdict).Observe(d.Seconds())
}
func observeBadRequest() { badRequestsTotal.Inc(); requestsTotal.WithLabelValues("error").Inc() }
func countEvalError()    { evalErrorsTotal.Inc() }
func countOverBudget()   { overBudgetTotal.Inc() }
