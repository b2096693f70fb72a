package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/urfave/cli/v2"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the OCI distribution API",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:5000", EnvVars: []string{"KVREG_ADDR"}, Usage: "listen address"},
			&cli.StringFlag{Name: "root", Value: "./data", EnvVars: []string{"KVREG_ROOT"}, Usage: "data directory"},
			&cli.DurationFlag{Name: "upload-grace", Value: time.Hour, EnvVars: []string{"KVREG_UPLOAD_GRACE"}, Usage: "how long an upload, a mount or a manifest pushed by digest is kept before something references it"},
			&cli.DurationFlag{Name: "pin-window", Value: 10 * time.Minute, EnvVars: []string{"KVREG_PIN_WINDOW"}, Usage: "how long a HEAD or mount that answered \"exists\" keeps the object for the push that asked"},
			&cli.Int64Flag{Name: "max-manifest-bytes", Value: 4 << 20, EnvVars: []string{"KVREG_MAX_MANIFEST_BYTES"}, Usage: "largest manifest accepted"},
			&cli.Int64Flag{Name: "max-blob-bytes", Value: 0, EnvVars: []string{"KVREG_MAX_BLOB_BYTES"}, Usage: "largest blob accepted (0: no limit)"},
			&cli.BoolFlag{Name: "read-only", EnvVars: []string{"KVREG_READ_ONLY"}, Usage: "refuse every write"},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: 30 * time.Second, Usage: "how long requests in flight may take to finish on SIGTERM"},
		},
		Action: serve,
	}
}

func serve(c *cli.Context) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	reg, err := refcount.OpenRoot(c.String("root"), kv.Options{}, refcount.Options{
		UploadGrace: c.Duration("upload-grace"),
		PinWindow:   c.Duration("pin-window"),
	})
	if err != nil {
		return cli.Exit("kvreg: "+err.Error(), 2)
	}
	defer reg.Close()

	handler := api.New(reg, api.Config{
		MaxManifestBytes: c.Int64("max-manifest-bytes"),
		MaxBlobBytes:     c.Int64("max-blob-bytes"),
		ReadOnly:         c.Bool("read-only"),
		Logger:           log,
	})
	ln, err := net.Listen("tcp", c.String("addr"))
	if err != nil {
		return cli.Exit("kvreg: "+err.Error(), 2)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// Leases that expire while no write comes are swept by this ticker.
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				for {
					n, err := reg.Sweep(1000)
					if err != nil {
						log.Error("sweep", "err", err)
					}
					if err != nil || n < 1000 {
						break
					}
				}
			}
		}
	}()
	// The operator socket: kvreg fsck, stats, ls and rm reach this process
	// through it while it holds the database.
	sock := filepath.Join(c.String("root"), api.AdminSocket)
	os.Remove(sock) // a stale one from a process that died
	aln, err := net.Listen("unix", sock)
	if err != nil {
		return cli.Exit("kvreg: admin socket: "+err.Error(), 2)
	}
	os.Chmod(sock, 0o600)
	defer os.Remove(sock)
	admin := &http.Server{Handler: api.NewAdmin(reg), ReadHeaderTimeout: 10 * time.Second}
	go admin.Serve(aln)
	defer admin.Close()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("kvreg serving", "addr", ln.Addr().String(), "root", c.String("root"))
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return cli.Exit("kvreg: "+err.Error(), 2)
		}
	case <-ctx.Done():
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), c.Duration("shutdown-timeout"))
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("shutdown", "err", err)
		}
	}
	return nil
}
