package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/refcount"
)

// Config holds the API's limits and switches.
type Config struct {
	MaxManifestBytes int64 // 4 MiB when zero
	MaxBlobBytes     int64 // no limit when zero
	MaxChunkBytes    int64 // largest request body of an upload; no limit when zero
	// MaxUploadsPerClient bounds the upload requests one client (user, or
	// remote IP when anonymous) runs at once: 429 TOOMANYREQUESTS beyond.
	// No limit when zero.
	MaxUploadsPerClient int
	// TrustedProxies are the peers (load balancers) whose X-Forwarded-For
	// names the client (clientAddr), for MaxUploadsPerClient and for the
	// pins of a client's pushes. None: the peer is the client.
	TrustedProxies []netip.Prefix
	// StallTimeout cuts off a request or response body that moves no byte
	// for this long (0: never). See stallGuard.
	StallTimeout time.Duration
	// BlobRedirect, when positive, answers a blob GET with 307 to a URL of
	// the blob store valid this long (see redirectBlob); 0 serves bytes.
	BlobRedirect time.Duration
	// Mirrors are the upstream registries cached (a pull-through cache),
	// as CheckMirrors returned them; CacheMaxBytes is the cached content's
	// budget (0: none).
	Mirrors       []Mirror
	CacheMaxBytes int64
	ReadOnly      bool
	// Users turns authentication on (nil: everyone may do everything).
	Users *auth.Users
	// Access says what callers may do when Users is set (nil: nothing).
	Access *auth.Access
	// Tokens turns on the token flow when Users is set (nil: Basic only).
	Tokens *TokenConfig
	// MetricsAuth makes /metrics ask for credentials when Users is set.
	MetricsAuth bool
	// UI serves the web pages at /ui/ (package ui), with / redirecting
	// there.
	UI     bool
	Logger *slog.Logger
}

// Server is the HTTP handler of the registry.
type Server struct {
	reg     *refcount.Registry
	cfg     Config
	router  *httprouter.Router
	v2      map[routeKind]map[string]handlerFunc // see routes.go
	metrics *metrics
	uploads *uploadLimiter
	logins  *loginGuard
	mirrors mirrors        // checked (CheckMirrors)
	cache   *cache         // with mirrors
	tokens  *tokenState    // nil: Basic mode
	running sync.WaitGroup // requests being answered, for Drain
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, rt route) error

// New builds the handler. Besides /v2/ it serves /healthz, /readyz and
// /metrics (routes.go lists every path).
func New(reg *refcount.Registry, cfg Config) *Server {
	if cfg.MaxManifestBytes <= 0 {
		cfg.MaxManifestBytes = 4 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{reg: reg, cfg: cfg,
		metrics: newMetrics(reg, cfg.Logger), uploads: newUploadLimiter(cfg.MaxUploadsPerClient)}
	s.logins = newLoginGuard(reg.Clock, s.metrics.registry)
	tm := newTokenMetrics(s.metrics.registry)
	if cfg.Tokens != nil && cfg.Users != nil {
		tc := cfg.Tokens.withDefaults()
		s.tokens = &tokenState{cfg: tc, cache: newTokenCache(tc.CacheSize, tc.Clock), metrics: tm}
	}
	s.mirrors = mirrors(cfg.Mirrors)
	if len(s.mirrors) > 0 {
		s.cache = newCache(s.mirrors, cfg.Logger)
		s.cache.metrics = newCacheMetrics(s.metrics.registry, s.cache.clients)
		if cfg.CacheMaxBytes > 0 {
			s.cache.evict = s.evictor(cfg.CacheMaxBytes)
		}
	}
	s.v2 = s.v2Routes()
	s.router = s.newRouter()
	return s
}

// ServeHTTP wraps every request: a request id (the client's X-Request-Id,
// or a new one) echoed back, the stall guard, and when it ends, the metrics
// and one access log line.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.running.Add(1)
	defer s.running.Done()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	start := time.Now()
	ri := &reqInfo{id: requestID(r), route: "other"}
	stall := newStallGuard(w, s.cfg.StallTimeout)
	rec := &recorder{ResponseWriter: w, status: http.StatusOK, stall: stall, sameHost: sameHost(r)}
	body := &countingBody{ReadCloser: r.Body, stall: stall}
	r.Body = body
	r = withInfo(r, ri)
	h := w.Header()
	h.Set("X-Request-Id", ri.id)
	h.Set("Docker-Distribution-API-Version", "registry/2.0")
	s.router.ServeHTTP(rec, r)
	if stall != nil {
		stall.done()
	}

	took := time.Since(start)
	in := body.n.Load()
	s.metrics.observe(ri.route, r.Method, rec.status, took, in, rec.bytes)
	level := slog.LevelInfo
	switch ri.route {
	case "healthz", "readyz", "metrics":
		level = slog.LevelDebug
	}
	s.cfg.Logger.LogAttrs(r.Context(), level, "request",
		slog.String("id", ri.id),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", ri.route),
		slog.Int("status", rec.status),
		slog.Int64("bytes_in", in),
		slog.Int64("bytes_out", rec.bytes),
		slog.Duration("duration", took),
		slog.String("user", ri.caller.User),
		slog.String("remote", r.RemoteAddr),
		slog.String("proto", r.Proto),
		slog.Bool("tls", r.TLS != nil),
	)
}

// Drain waits until the requests being answered have returned, or ctx
// ends. After http.Server.Shutdown has given up on them and Close has cut
// their connections, this is how the caller knows nothing uses the store
// any more before closing it.
func (s *Server) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.running.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if err := s.serveV2(w, r, ps); err != nil {
		if ae, ok := classify(err); ok {
			writeError(w, r, ae)
			return
		}
		ri := info(r)
		s.cfg.Logger.Error("request failed", "id", ri.id, "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, r, apiErr(kInternal, "internal error (request %s)", ri.id))
	}
}

// serveV2 takes a /v2/ request through, in order: who the caller is, which
// route, whether the caller may, read-only mode, the upload limits, and the
// handler.
func (s *Server) serveV2(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	ri := info(r)
	rt, perr := parseRoute(strings.TrimPrefix(ps.ByName("path"), "/"))
	ri.route = "invalid"
	if perr == nil {
		ri.route = routeNames[rt.kind]
	}
	scope := ""
	if perr == nil {
		scope = scopeOf(rt, r.Method)
	}
	caller, aerr := s.identify(r, scope)
	if aerr != nil {
		return aerr
	}
	ri.caller = caller
	if caller.Anonymous() && caller.tok == nil && !s.anonymousAllowed() {
		if s.tokenMode() {
			return s.bearerChallenge(r, scope, "", "authentication required")
		}
		return unauthorized("authentication required")
	}
	if perr != nil {
		return perr
	}
	h, merr := s.v2Handler(rt, r)
	if merr != nil {
		return merr
	}
	if aerr := s.authorize(r, caller, rt); aerr != nil {
		return aerr
	}
	if s.cfg.ReadOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
		return apiErr(kUnsupported, "the registry is read-only: pushes and deletes are turned off (--read-only)")
	}
	if len(s.mirrors) > 0 {
		var merr error
		if rt, merr = s.routeMirror(r, rt); merr != nil {
			return merr
		}
	}
	if isUpload(rt.kind, r.Method) {
		release, ok := s.uploads.acquire(s.clientKey(r, ri))
		if !ok {
			return apiErr(kTooManyRequests, "more than %d uploads at once from this client; retry when one ends", s.cfg.MaxUploadsPerClient)
		}
		defer release()
		if aerr := s.limitBody(w, r); aerr != nil {
			return aerr
		}
	}
	return h(w, r, rt)
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
