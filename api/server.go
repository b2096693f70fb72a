package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"
	"github.com/kvreg/kvreg/refcount"
)

// Config holds the API's limits and switches.
type Config struct {
	MaxManifestBytes int64 // 4 MiB when zero
	MaxBlobBytes     int64 // no limit when zero
	ReadOnly         bool
	Logger           *slog.Logger
}

// Server is the HTTP handler of the registry.
type Server struct {
	reg    *refcount.Registry
	cfg    Config
	router *httprouter.Router
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, rt route) error

// New builds the handler.
func New(reg *refcount.Registry, cfg Config) *Server {
	if cfg.MaxManifestBytes <= 0 {
		cfg.MaxManifestBytes = 4 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{reg: reg, cfg: cfg, router: httprouter.New()}
	s.router.RedirectTrailingSlash = false
	s.router.RedirectFixedPath = false
	s.router.HandleMethodNotAllowed = false
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete} {
		s.router.Handle(m, "/v2/*path", s.dispatch)
	}
	s.router.Handle(http.MethodGet, "/v2", s.dispatch)
	s.router.Handle(http.MethodHead, "/v2", s.dispatch)
	s.router.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, apiErr(kNameUnknown, "not found: %s", r.URL.Path))
	})
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	s.router.ServeHTTP(w, r)
}

// table of handlers by route and method.
func (s *Server) handler(k routeKind, method string) handlerFunc {
	switch k {
	case routeBase:
		if method == http.MethodGet || method == http.MethodHead {
			return s.base
		}
	case routeCatalog:
		if method == http.MethodGet {
			return s.catalog
		}
	case routeTags:
		if method == http.MethodGet {
			return s.tagsList
		}
	case routeManifest:
		switch method {
		case http.MethodGet, http.MethodHead:
			return s.getManifest
		case http.MethodPut:
			return s.putManifest
		case http.MethodDelete:
			return s.deleteManifest
		}
	case routeBlob:
		switch method {
		case http.MethodGet, http.MethodHead:
			return s.getBlob
		case http.MethodDelete:
			return s.deleteBlob
		}
	case routeUploadStart:
		if method == http.MethodPost {
			return s.startUpload
		}
	case routeUpload:
		switch method {
		case http.MethodGet:
			return s.uploadStatus
		case http.MethodPatch:
			return s.patchUpload
		case http.MethodPut:
			return s.putUpload
		case http.MethodDelete:
			return s.cancelUpload
		}
	case routeReferrers:
		if method == http.MethodGet {
			return s.referrers
		}
	}
	return nil
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	p := strings.TrimPrefix(ps.ByName("path"), "/")
	rt, perr := parseRoute(p)
	if perr != nil {
		writeError(w, r, perr)
		return
	}
	h := s.handler(rt.kind, r.Method)
	if h == nil {
		writeError(w, r, apiErr(kMethodNotAllowed, "%s is not supported on %s", r.Method, r.URL.Path))
		return
	}
	if s.cfg.ReadOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, r, apiErr(kUnsupported, "the registry is read-only"))
		return
	}
	if err := h(w, r, rt); err != nil {
		if ae, ok := classify(err); ok {
			writeError(w, r, ae)
			return
		}
		s.cfg.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		if r.Method != http.MethodHead {
			w.Write([]byte(`{"errors":[{"code":"UNKNOWN","message":"internal error"}]}`))
		}
	}
}

func (s *Server) base(w http.ResponseWriter, r *http.Request, _ route) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	if r.Method == http.MethodGet {
		w.Write([]byte("{}"))
	}
	return nil
}

// bodyError turns a failed read of a request body into a 4xx.
func bodyError(err error, k kind) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return apiErr(kBlobTooLarge, "request body over %d bytes", mbe.Limit)
	}
	return apiErr(k, "reading request body: %v", err)
}
