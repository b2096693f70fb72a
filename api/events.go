package api

import (
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"
	"github.com/kvreg/kvreg/refcount"
	"github.com/prometheus/client_golang/prometheus"
)

// origin is who made a request's change and through which request, for
// its events.
func (s *Server) origin(r *http.Request) refcount.Origin {
	ri := info(r)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return refcount.Origin{
		Actor:     ri.caller.User,
		Addr:      clientAddr(r, s.cfg.TrustedProxies),
		Host:      r.Host,
		Scheme:    scheme,
		Method:    r.Method,
		UserAgent: r.UserAgent(),
		RequestID: ri.id,
	}
}

// pulled writes the event of a manifest GET, for endpoints that want
// pulls; failing to write it fails no pull (the manifest was served), so
// it is only logged.
func (s *Server) pulled(r *http.Request, rt route, info refcount.ManifestInfo) {
	tag := ""
	if _, t, err := lookupReference(rt.ref); err == nil {
		tag = t
	}
	if err := s.reg.RecordPull(s.origin(r), rt.name, tag, info); err != nil {
		s.cfg.Logger.Warn("pull event not written", "repository", rt.name, "reference", rt.ref, "error", err)
	}
}

// RegisterCollector adds c's series to the server's /metrics (the event
// delivery's).
func (s *Server) RegisterCollector(c prometheus.Collector) error {
	return s.metrics.registry.Register(c)
}

// events answers `kvreg events ls`: the outbox's rows per endpoint, up to
// max (query max; 0: all).
func (a *admin) events(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	max, _ := strconv.Atoi(r.URL.Query().Get("max"))
	rep, err := a.reg.Outbox(max)
	adminReply(w, rep, err)
}

// eventsDrop removes an endpoint's undelivered events (all, or up to the
// sequence number up-to).
func (a *admin) eventsDrop(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	q := r.URL.Query()
	upTo, _ := strconv.ParseUint(q.Get("up-to"), 10, 64)
	rep, err := a.reg.DropEvents(q.Get("endpoint"), upTo)
	adminReply(w, rep, err)
}
