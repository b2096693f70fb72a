package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/julienschmidt/httprouter"
)

// Every path kvreg answers, and which handler takes each method, is
// decided here: newRouter for the main listener, newAdminRouter for the
// operator socket, both httprouter. Repository names contain slashes, which
// no router pattern can capture before a fixed segment, so every /v2/ path
// reaches one catch-all whose operation parseRoute reads from the end;
// v2Routes then names the handler of each method. A path that nothing
// matches is a 404 and a method its path does not take a 405 (with Allow),
// both written by writeError.

// v2Routes gives, for each kind of /v2/ path, its handler per method.
func (s *Server) v2Routes() map[routeKind]map[string]handlerFunc {
	return map[routeKind]map[string]handlerFunc{
		routeBase:        {http.MethodGet: s.base, http.MethodHead: s.base},
		routeCatalog:     {http.MethodGet: s.catalog},
		routeTags:        {http.MethodGet: s.tagsList},
		routeManifest:    {http.MethodGet: s.getManifest, http.MethodHead: s.getManifest, http.MethodPut: s.putManifest, http.MethodDelete: s.deleteManifest},
		routeBlob:        {http.MethodGet: s.getBlob, http.MethodHead: s.getBlob, http.MethodDelete: s.deleteBlob},
		routeUploadStart: {http.MethodPost: s.startUpload},
		routeUpload:      {http.MethodGet: s.uploadStatus, http.MethodPatch: s.patchUpload, http.MethodPut: s.putUpload, http.MethodDelete: s.cancelUpload},
		routeReferrers:   {http.MethodGet: s.referrers},
	}
}

// newRouter routes the main listener: /v2/ and its paths, /token in
// token mode, /healthz, /readyz and /metrics, and with Config.UI the web
// pages under /ui/ (ui.go).
func (s *Server) newRouter() *httprouter.Router {
	rt := newHTTPRouter()
	v2 := map[string]bool{}
	for _, hs := range s.v2 {
		for m := range hs {
			v2[m] = true
		}
	}
	for m := range v2 {
		rt.Handle(m, "/v2/*path", s.dispatch)
	}
	for m := range s.v2[routeBase] {
		rt.Handle(m, "/v2", s.dispatch)
	}
	if s.tokens != nil {
		// The realm of the Bearer challenge: outside /v2/, as the token
		// spec has it.
		rt.GET("/token", s.serveToken)
		rt.POST("/token", s.serveToken)
	}
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		rt.Handle(m, "/healthz", s.healthz)
		rt.Handle(m, "/readyz", s.readyz)
		rt.Handle(m, "/metrics", s.serveMetrics)
	}
	if s.cfg.UI {
		s.mountUI(rt)
	}
	rt.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, apiErr(kNameUnknown, "no such path: %s", r.URL.Path))
	})
	rt.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Del("Allow") // httprouter's; see allowed
		writeError(w, r, notAllowed(r, allowed(rt, r.URL.Path)))
	})
	return rt
}

// v2Handler is the handler of a parsed /v2/ route for the request's
// method, or the 405 that lists the methods the route takes.
func (s *Server) v2Handler(rt route, r *http.Request) (handlerFunc, *Error) {
	hs := s.v2[rt.kind]
	if h := hs[r.Method]; h != nil {
		return h, nil
	}
	allow := make([]string, 0, len(hs))
	for m := range hs {
		allow = append(allow, m)
	}
	return nil, notAllowed(r, allow)
}

// notAllowed is the 405 for r, whose Allow header lists allow.
func notAllowed(r *http.Request, allow []string) *Error {
	slices.Sort(allow)
	return &Error{kind: kMethodNotAllowed, message: r.Method + " is not supported on " + r.URL.Path,
		header: http.Header{"Allow": {strings.Join(allow, ", ")}}}
}

// allowed lists the methods rt serves on path. httprouter's own Allow
// header would name OPTIONS too, which kvreg does not answer.
func allowed(rt *httprouter.Router, path string) []string {
	var ms []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if h, _, _ := rt.Lookup(m, path); h != nil {
			ms = append(ms, m)
		}
	}
	return ms
}

// newAdminRouter routes the operator socket. Its answers, errors included,
// are the JSON adminReply writes, which `kvreg fsck|stats|ls|rm|token` read.
func newAdminRouter(a *admin) *httprouter.Router {
	rt := newHTTPRouter()
	rt.GET("/v1/fsck", a.fsck)
	rt.POST("/v1/repair", a.repair)
	rt.GET("/v1/stats", a.stats)
	rt.GET("/v1/ls", a.ls)
	rt.POST("/v1/rm", a.rm)
	rt.GET("/v1/retention/plan", a.retentionPlan)
	rt.GET("/v1/events", a.events)
	rt.POST("/v1/events/drop", a.eventsDrop)
	rt.POST("/v1/token/create", a.tokenCreate)
	rt.GET("/v1/token/ls", a.tokenList)
	rt.POST("/v1/token/revoke", a.tokenRevoke)
	rt.POST("/v1/token/rotate-key", a.tokenRotateKey)
	rt.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		adminReply(w, nil, apiErr(kNameUnknown, "no such path: %s", r.URL.Path))
	})
	rt.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Del("Allow")
		adminReply(w, nil, notAllowed(r, allowed(rt, r.URL.Path)))
	})
	return rt
}

// newHTTPRouter is httprouter answering each path exactly as written: no
// redirects to a cleaned or slash-ended path, and no automatic OPTIONS.
func newHTTPRouter() *httprouter.Router {
	rt := httprouter.New()
	rt.RedirectTrailingSlash = false
	rt.RedirectFixedPath = false
	rt.HandleOPTIONS = false
	rt.HandleMethodNotAllowed = true
	return rt
}
