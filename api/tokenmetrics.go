package api

import "github.com/prometheus/client_golang/prometheus"

// tokenMetrics count the tokens /token hands out and the tokens and token
// requests refused, by reason.
type tokenMetrics struct {
	issued  *prometheus.CounterVec
	refused *prometheus.CounterVec
}

func newTokenMetrics(reg *prometheus.Registry) *tokenMetrics {
	m := &tokenMetrics{
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvreg_tokens_issued_total",
			Help: "Tokens issued at /token, by kind (access, refresh) and caller (user, robot, anonymous).",
		}, []string{"kind", "caller"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvreg_tokens_refused_total",
			Help: "Bearer tokens and token requests refused, by reason.",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.issued, m.refused)
	return m
}
