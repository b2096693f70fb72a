package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// DelayProxy passes every request on to upstream once wait returns, so
// that a storage server on this machine answers as one further away
// would: each request pays the wait before it reaches the server, as it
// would pay a network round trip. The Host header is passed on as the
// client sent it, so that a request signed for the proxy's address (an
// S3 client's, a presigned URL's) is checked against the address it was
// signed for. A wait that fails (the client went away) ends the request
// with 502 and nothing sent upstream.
func DelayProxy(upstream *url.URL, wait func(context.Context) error) http.Handler {
	rp := httputil.NewSingleHostReverseProxy(upstream)
	rp.Transport = &http.Transport{
		Proxy:               nil, // loopback only: never through a proxy
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
	}
	// Bodies flow as they come, chunk by chunk, both ways.
	rp.FlushInterval = -1
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := wait(r.Context()); err != nil {
			http.Error(w, "delay proxy: "+err.Error(), http.StatusBadGateway)
			return
		}
		rp.ServeHTTP(w, r)
	})
}

// sleepFor is DelayProxy's wait of d, or less if ctx ends first.
func sleepFor(d time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// serveDelayProxy listens on a free loopback port, prints the proxy's URL
// to printed, and serves DelayProxy in front of upstream (plain HTTP on
// a loopback address, as -url) until ctx ends.
func serveDelayProxy(ctx context.Context, upstream string, d time.Duration, printed func(string)) error {
	if _, err := CheckURL(upstream); err != nil {
		return fmt.Errorf("-delay-proxy: %w", err)
	}
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("-delay %v: not a wait", d)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: DelayProxy(u, sleepFor(d)), ReadHeaderTimeout: time.Minute}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	printed("http://" + ln.Addr().String())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
