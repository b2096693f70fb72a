package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The delay proxy sends nothing upstream until its wait returns, then
// passes the request on whole (method, path, query, the Host the client
// sent, the body) and the answer back whole; a wait that fails sends
// nothing upstream and answers 502.
func TestDelayProxy(t *testing.T) {
	var seen atomic.Int32
	type got struct{ method, uri, host, body string }
	gotc := make(chan got, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		b, _ := io.ReadAll(r.Body)
		gotc <- got{r.Method, r.RequestURI, r.Host, string(b)}
		w.Header().Set("ETag", `"e"`)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "stored")
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)

	release := make(chan error)
	waiting := make(chan struct{}, 1)
	proxy := httptest.NewServer(DelayProxy(u, func(ctx context.Context) error {
		waiting <- struct{}{}
		return <-release
	}))
	defer proxy.Close()

	type answer struct {
		status int
		etag   string
		body   string
		err    error
	}
	send := func() <-chan answer {
		out := make(chan answer, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPut, proxy.URL+"/bucket/key?partNumber=2", strings.NewReader("bytes"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				out <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			out <- answer{resp.StatusCode, resp.Header.Get("ETag"), string(b), err}
		}()
		return out
	}

	ans := send()
	<-waiting
	if n := seen.Load(); n != 0 {
		t.Fatalf("upstream saw %d requests while the wait had not returned", n)
	}
	release <- nil
	a := <-ans
	if a.err != nil || a.status != http.StatusCreated || a.etag != `"e"` || a.body != "stored" {
		t.Fatalf("answer through the proxy: %+v", a)
	}
	g := <-gotc
	proxyHost := strings.TrimPrefix(proxy.URL, "http://")
	if g.method != http.MethodPut || g.uri != "/bucket/key?partNumber=2" || g.host != proxyHost || g.body != "bytes" {
		t.Fatalf("upstream got %+v; want PUT /bucket/key?partNumber=2, Host %s, body \"bytes\"", g, proxyHost)
	}

	ans = send()
	<-waiting
	release <- errors.New("client gone")
	if a := <-ans; a.err != nil || a.status != http.StatusBadGateway {
		t.Fatalf("answer after a failed wait: %+v; want 502", a)
	}
	if n := seen.Load(); n != 1 {
		t.Fatalf("upstream saw %d requests, want 1", n)
	}
}

// sleepFor ends early, with the context's error, when the context ends.
func TestSleepForEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleepFor(time.Hour)(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait of an hour under an ended context: %v", err)
	}
	if err := sleepFor(0)(context.Background()); err != nil {
		t.Fatalf("wait of nothing: %v", err)
	}
}

// -delay-proxy refuses an upstream that is not plain HTTP on loopback.
func TestDelayProxyRefusesNonLoopback(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"-delay-proxy", "http://192.0.2.1:9000"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "non-loopback") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if out.Len() != 0 {
		t.Fatalf("printed %q for a refused upstream", out.String())
	}
}
