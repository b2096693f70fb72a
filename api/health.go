package api

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// /healthz: the process answers. /readyz: the database answers a read and
// takes writes, and remote blob storage answers.
// Neither asks for credentials nor says more than ok or why not.

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	info(r).route = "healthz"
	writePlain(w, r, http.StatusOK, "ok\n")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	info(r).route = "readyz"
	if err := s.reg.Ready(); err != nil {
		s.cfg.Logger.Warn("not ready", "err", err)
		writePlain(w, r, http.StatusServiceUnavailable, "database or blob storage not answering\n")
		return
	}
	writePlain(w, r, http.StatusOK, "ok\n")
}

// serveMetrics is the Prometheus endpoint; with MetricsAuth it wants a
// user's credentials.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	ri := info(r)
	ri.route = "metrics"
	if s.cfg.MetricsAuth && s.authOn() {
		c, aerr := s.authenticate(r)
		if aerr == nil && c.Anonymous() {
			aerr = unauthorized("authentication required")
		}
		if aerr != nil {
			writeError(w, r, aerr)
			return
		}
		ri.caller = principal{Caller: c}
	}
	s.metrics.handler.ServeHTTP(w, r)
}

func writePlain(w http.ResponseWriter, r *http.Request, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write([]byte(body))
	}
}
