package s3test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
)

// CutReads starts an endpoint in front of the server at endpoint that
// answers each GET of a key containing part with its headers and half its
// body, then closes the connection under the length the headers promised:
// a store that fails in the middle of a read. Everything else passes as
// it came (the client signs the Host it dials, and the server checks the
// Host it receives, which the proxy leaves alone). It returns its URL.
func CutReads(t testing.TB, endpoint, part string) string {
	t.Helper()
	return CutReadsWhile(t, endpoint, part, func() bool { return true })
}

// CutReadsWhile is CutReads that cuts a read only when cut, asked once per
// GET of a key containing part, says so: a store that fails now and then.
func CutReadsWhile(t testing.TB, endpoint, part string, cut func() bool) string {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, part) || !cut() {
			proxy.ServeHTTP(w, r)
			return
		}
		ServeCut(w, r, proxy)
	}))
	t.Cleanup(front.Close)
	return front.URL
}

// ServeCut answers r as h does, with its headers and half its body, then
// closes the connection under the length the headers promised.
func ServeCut(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes()[:rec.Body.Len()/2])
	if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
		conn.Close()
	}
}
