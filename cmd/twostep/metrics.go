package main

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/twostep/twostep/storage"
)

// metrics is the server's own Prometheus registry (never the global one)
// and the series twostep reports.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	logins   *prometheus.CounterVec
	tokens   *prometheus.CounterVec
}

func newMetrics(store *storage.Store) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twostep_http_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "twostep_http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twostep_login_attempts_total",
			Help: "Login attempts by step (password, totp, recovery_code, device) and outcome.",
		}, []string{"step", "outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twostep_tokens_issued_total",
			Help: "Token responses issued by grant type.",
		}, []string{"grant_type"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.logins, m.tokens,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(store.DB(), store.Dialect()),
	)
	return m
}

// loginSteps maps the audit events of login attempts to their step label.
var loginSteps = map[string]string{
	"login.password":      "password",
	"login.totp":          "totp",
	"login.recovery_code": "recovery_code",
	"login.device":        "device",
}

// count counts an audit event in the series it belongs to, if any: login
// attempts and issued tokens. Labels come from a known set, so no event
// can grow the series without bound.
func (m *metrics) count(ev storage.AuditEvent) {
	if step, ok := loginSteps[ev.Event]; ok {
		m.logins.WithLabelValues(step, oneOf(ev.Outcome, "success", "failure", "throttled", "locked", "replayed")).Inc()
		return
	}
	if ev.Event == "token.issued" {
		m.tokens.WithLabelValues(oneOf(ev.Detail, "authorization_code", "refresh_token", "client_credentials")).Inc()
	}
}

// oneOf is v if it is one of known, else "other".
func oneOf(v string, known ...string) string {
	if slices.Contains(known, v) {
		return v
	}
	return "other"
}

// Handler serves the registry in the Prometheus text format.
func (m *metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// observe records one finished request. The route is the ServeMux pattern
// that matched, so path parameters and junk paths cannot explode the label
// set.
func (m *metrics) observe(r *http.Request, status int, elapsed time.Duration) {
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(elapsed.Seconds())
}
