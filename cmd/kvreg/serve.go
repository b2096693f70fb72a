package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/urfave/cli/v2"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:        "serve",
		Usage:       "serve the OCI distribution API",
		Description: serveDescription,
		Flags:       serveFlags(),
		Action:      serve,
	}
}

// startupError stops kvreg serve before it serves: exit 2.
func startupError(format string, args ...any) error {
	return cli.Exit("kvreg serve: "+fmt.Sprintf(format, args...), 2)
}

func newLogger(cfg *serveConfig) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.logLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// apiConfig turns settings into the API's configuration, loading the
// htpasswd file and checking the access rules.
func apiConfig(cfg *serveConfig, log *slog.Logger) (api.Config, error) {
	ac := api.Config{
		MaxManifestBytes:    cfg.maxManifest,
		MaxBlobBytes:        cfg.maxBlob,
		MaxChunkBytes:       cfg.maxChunk,
		MaxUploadsPerClient: cfg.maxUploadsPerClient,
		TrustedProxies:      cfg.trustedProxies,
		StallTimeout:        cfg.stallTimeout,
		ReadOnly:            cfg.readOnly,
		MetricsAuth:         cfg.metricsAuth,
		UI:                  cfg.ui,
		Logger:              log,
	}
	if cfg.blobRedirect {
		ac.BlobRedirect = cfg.blobRedirectTTL
	}
	ac.Mirrors, ac.CacheMaxBytes = cfg.mirrors, cfg.cacheMaxBytes
	if cfg.htpasswd == "" {
		return ac, nil
	}
	users, err := auth.LoadHtpasswd(cfg.htpasswd, auth.Options{})
	if err != nil {
		return ac, err
	}
	access, err := auth.NewAccess(cfg.accessRules(), cfg.groups, users.Has)
	if err != nil {
		return ac, err
	}
	ac.Users, ac.Access = users, access
	if cfg.authMode == "token" {
		if ac.Tokens, err = tokenConfig(cfg, log); err != nil {
			return ac, err
		}
	}
	return ac, nil
}

func serve(c *cli.Context) error {
	cfg, err := resolveConfig(c)
	if err != nil {
		return startupError("%v", err)
	}
	log := newLogger(cfg)
	ac, err := apiConfig(cfg, log)
	if err != nil {
		return startupError("%v", err)
	}
	srv := &http.Server{
		ReadHeaderTimeout: cfg.readHeaderTimeout,
		IdleTimeout:       cfg.idleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnContext:       connContext,
	}
	if cfg.tlsCert != "" {
		tc, warnings, err := loadTLS(cfg.tlsCert, cfg.tlsKey, time.Now())
		if err != nil {
			return startupError("%v", err)
		}
		for _, w := range warnings {
			log.Warn(w)
		}
		srv.TLSConfig = tc
	}

	// Alone, kvreg holds the database's write lock, so that a second
	// process started by mistake stops at once; replicas share it.
	reg, err := refcount.OpenStores(cfg.root, cfg.db, cfg.blobStore, kv.Options{Exclusive: !cfg.replicas, Replica: cfg.replicas}, refcount.Options{
		UploadGrace:   cfg.uploadGrace,
		PinWindow:     cfg.pinWindow,
		UploadLife:    cfg.uploadTimeout,
		Shared:        cfg.replicas,
		CachePrefixes: cfg.cachePrefixes(),
		CacheMaxBytes: cfg.cacheMaxBytes,
		Policies:      cfg.policies,
		OwnQuotas:     true,
		Events:        cfg.eventEndpoints(),
	})
	if err != nil {
		return startupError("%v", err)
	}
	defer func() {
		if err := reg.Close(); err != nil {
			log.Error("closing the database", "err", err)
		}
	}()
	if cfg.blobRedirect && !reg.Blobs().CanPresign() {
		return startupError("--blob-redirect needs a blob store that can presign URLs (an s3:// --blob-store); blobs in a directory have no URL to redirect to")
	}
	keyLoop, err := storeTokens(ac.Tokens, cfg, reg, log)
	if err != nil {
		return startupError("%v", err)
	}
	handler := api.New(reg, ac)
	srv.Handler = handler
	deliver, err := startEvents(cfg, reg, handler, log)
	if err != nil {
		return startupError("%v", err)
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return startupError("%v", err)
	}
	// The operator socket: kvreg fsck, stats, ls and rm reach this process
	// through it while it holds the database. With replicas each process
	// has its own, under its own --root.
	sock := filepath.Join(cfg.root, api.AdminSocket)
	if err := os.MkdirAll(cfg.root, 0o755); err != nil { // blobs and database may both live elsewhere
		return startupError("data directory: %v", err)
	}
	os.Remove(sock) // a stale one from a process that died
	aln, err := net.Listen("unix", sock)
	if err != nil {
		ln.Close()
		return startupError("admin socket: %v", err)
	}
	os.Chmod(sock, 0o600)
	defer os.Remove(sock)
	admin := &http.Server{Handler: handler.Admin(), ReadHeaderTimeout: 10 * time.Second}
	go admin.Serve(aln)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		var wg sync.WaitGroup
		if cfg.replicas || kv.IsURL(cfg.db) {
			// On PostgreSQL one process may also leave a commit whose
			// answer was lost for the finisher to settle.
			wg.Go(func() { finisher(ctx, reg, log) })
		}
		if keyLoop != nil {
			wg.Go(func() { keyLoop(ctx) })
		}
		wg.Go(func() { retentionSweeper(ctx, handler, cfg, log) })
		if deliver != nil {
			wg.Go(func() { deliver.Run(ctx) })
		}
		sweeper(ctx, reg, cfg, log)
		wg.Wait()
	}()

	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	warnClearCredentials(cfg, ln.Addr(), log)
	log.Info("kvreg serving", "addr", ln.Addr().String(), "root", cfg.root,
		"tls", srv.TLSConfig != nil, "auth", ac.Users != nil, "auth_mode", cfg.authMode, "read_only", cfg.readOnly, "replicas", cfg.replicas)

	var serveErr error
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			serveErr = cli.Exit("kvreg serve: "+err.Error(), 2)
		}
	case <-ctx.Done():
		shutdown(srv, admin, handler, cfg.shutdownTimeout, log)
	}
	stop()
	<-sweepDone
	admin.Close()
	return serveErr
}

// shutdown stops accepting, lets requests in flight finish within timeout,
// then cuts the connections of those still running and waits (briefly) for
// their handlers to return, so that nothing uses the store when it closes.
func shutdown(srv, admin *http.Server, h *api.Server, timeout time.Duration, log *slog.Logger) {
	log.Info("shutting down", "timeout", timeout)
	start := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go admin.Shutdown(sctx)
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still running at the shutdown deadline: closing their connections", "err", err)
		srv.Close()
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	if err := h.Drain(dctx); err != nil {
		log.Error("handlers still running after their connections closed", "err", err)
	}
	log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
}

// sweeper ends expired leases while no write comes to do it, and removes
// upload sessions idle for longer than --upload-timeout. Every replica
// runs it: the database serialises their sweeps.
func sweeper(ctx context.Context, reg *refcount.Registry, cfg *serveConfig, log *slog.Logger) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for {
			n, err := reg.Sweep(1000)
			if err != nil {
				log.Error("sweep", "err", err)
			}
			if err != nil || n < 1000 || ctx.Err() != nil {
				break
			}
		}
		n, err := reg.ExpireUploads(cfg.uploadTimeout)
		if err != nil {
			log.Error("expire uploads", "err", err)
		}
		if n > 0 {
			log.Info("removed idle upload sessions", "count", n, "idle_for", cfg.uploadTimeout)
		}
	}
}

// finishEvery is how old the work another replica left half done must be
// before a replica finishes it; a replica looks twice as often, so that a
// dead replica's work is done within about two of these (a tombstone is
// first seen within half of one, and is due half of one after it is old
// enough), not three.
const finishEvery = 10 * time.Second

// finisher finishes what another replica left half done (tombstones,
// interrupted commits): alone, startup recovery does that, but a replica
// that dies is not restarted over the same work; and the commits whose
// record's answer PostgreSQL lost, which any process on it may leave.
func finisher(ctx context.Context, reg *refcount.Registry, log *slog.Logger) {
	t := time.NewTicker(finishEvery / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tombs, uploads, err := reg.FinishPending(finishEvery)
		if err != nil {
			log.Error("finish other replicas' work", "err", err)
		}
		if tombs+uploads > 0 {
			log.Info("finished other replicas' work", "deletes", tombs, "commits", uploads)
		}
	}
}

// warnClearCredentials: Basic credentials over plain HTTP beyond loopback
// can be read by anyone on the path.
func warnClearCredentials(cfg *serveConfig, addr net.Addr, log *slog.Logger) {
	if cfg.htpasswd == "" || cfg.tlsCert != "" {
		return
	}
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		return
	}
	log.Warn("authentication without TLS: passwords cross the network in clear; give --tls-cert and --tls-key")
}
