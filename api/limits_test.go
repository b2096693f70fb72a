package api_test

import (
	"bufio"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/refcount/regtest"
)

// stalledPatch sends a PATCH whose body stops after a first few bytes, and
// returns once the server has written them to the upload (so the request
// holds its upload slot). finish sends the rest and returns the response.
// It needs the local blob store, which writes a chunk's bytes as they
// arrive (S3 keeps them in memory until the part fills or the chunk ends).
func (r *testRegistry) stalledPatch(loc string) (finish func() response) {
	r.t.Helper()
	if r.reg.Backend.Blob != regtest.BlobsLocal {
		r.t.Fatalf("stalledPatch needs the local blob store (regOptions.Blobs), not %s", r.reg.Backend.Blob)
	}
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPatch, r.url(loc), pr)
	if err != nil {
		r.t.Fatal(err)
	}
	done := make(chan response, 1)
	go func() {
		resp, err := r.client.Do(req)
		if err != nil {
			done <- response{Status: -1, Body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	}()
	go pw.Write([]byte("first bytes"))
	drv := r.reg.Blobs().Driver()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if info, err := drv.Upload(path.Base(loc)); err == nil && info.Size > 0 {
			break
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the server never received the first bytes of %s", loc)
		}
		time.Sleep(5 * time.Millisecond) // waiting for the network, not for the registry's clock
	}
	return func() response {
		pw.Write([]byte(" and the rest"))
		pw.Close()
		return <-done
	}
}

// Upload requests one client runs at once are bounded: beyond, 429
// TOOMANYREQUESTS. A client is its user, or its IP address when anonymous.
// Local blobs: a request is seen holding its slot by its first bytes
// reaching the upload's file (stalledPatch).
func TestConcurrentUploadsPerClient(t *testing.T) {
	t.Run("by user", func(t *testing.T) {
		r := startRegistry(t, regOptions{Blobs: regtest.BlobsLocal, Config: authConfig(t, api.Config{MaxUploadsPerClient: 2}, teamRules)})
		alice, bob := r.as("alice"), r.as("bob")
		locs := []string{alice.startUpload("team/a"), alice.startUpload("team/a"), alice.startUpload("team/a")}
		f1, f2 := alice.stalledPatch(locs[0]), alice.stalledPatch(locs[1])
		expectError(t, "alice's third upload", alice.patchChunk(locs[2], 0, []byte("x")), http.StatusTooManyRequests, "TOOMANYREQUESTS")
		expectError(t, "alice's new session", alice.do(http.MethodPost, "/v2/team/a/blobs/uploads/", nil, nil), http.StatusTooManyRequests, "TOOMANYREQUESTS")
		expectStatus(t, "alice's reads go on", alice.get("/v2/team/a/tags/list", nil), http.StatusNotFound)
		expectStatus(t, "bob is another client", bob.patchChunk(bob.startUpload("team/b"), 0, []byte("x")), http.StatusAccepted)
		expectStatus(t, "first stalled upload", f1(), http.StatusAccepted)
		expectStatus(t, "alice's third upload, later", alice.patchChunk(locs[2], 0, []byte("x")), http.StatusAccepted)
		expectStatus(t, "second stalled upload", f2(), http.StatusAccepted)
	})
	t.Run("by address", func(t *testing.T) {
		r := startRegistry(t, regOptions{Blobs: regtest.BlobsLocal, Config: api.Config{MaxUploadsPerClient: 1}})
		a, b := r.startUpload("x"), r.startUpload("x")
		f := r.stalledPatch(a)
		expectError(t, "second upload from 127.0.0.1", r.patchChunk(b, 0, []byte("x")), http.StatusTooManyRequests, "TOOMANYREQUESTS")
		expectStatus(t, "stalled upload", f(), http.StatusAccepted)
		expectStatus(t, "second upload, later", r.patchChunk(b, 0, []byte("x")), http.StatusAccepted)
	})
	t.Run("by forwarded address", func(t *testing.T) {
		// Behind a trusted proxy the client is the address it forwards:
		// two clients of one proxy have a slot each; a client that forges
		// the header in front of the proxy's entry is still itself.
		r := startRegistry(t, regOptions{Blobs: regtest.BlobsLocal, Config: api.Config{MaxUploadsPerClient: 1,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
		x, y, forged := r.forwardedFor("192.0.2.1"), r.forwardedFor("192.0.2.2"), r.forwardedFor("192.0.2.2, 192.0.2.1")
		a, b, c := x.startUpload("x"), x.startUpload("x"), y.startUpload("x")
		f := x.stalledPatch(a)
		expectError(t, "second upload of 192.0.2.1", x.patchChunk(b, 0, []byte("x")), http.StatusTooManyRequests, "TOOMANYREQUESTS")
		expectError(t, "192.0.2.1 forging 192.0.2.2", forged.patchChunk(b, 0, []byte("x")), http.StatusTooManyRequests, "TOOMANYREQUESTS")
		expectStatus(t, "192.0.2.2 is another client", y.patchChunk(c, 0, []byte("x")), http.StatusAccepted)
		expectStatus(t, "stalled upload", f(), http.StatusAccepted)
		expectStatus(t, "second upload of 192.0.2.1, later", x.patchChunk(b, 0, []byte("x")), http.StatusAccepted)
	})
}

// forwardedFor is the registry as seen through a proxy that forwards the
// given X-Forwarded-For (the test's connections come from 127.0.0.1).
func (r *testRegistry) forwardedFor(xff string) *testRegistry {
	c := *r
	cl := *r.client
	cl.Transport = headerTransport{name: "X-Forwarded-For", value: xff, base: http.DefaultTransport}
	c.client = &cl
	return &c
}

type headerTransport struct {
	name, value string
	base        http.RoundTripper
}

func (h headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set(h.name, h.value)
	return h.base.RoundTrip(req)
}

// rawConn opens a connection to the registry for a hand-written request.
func (r *testRegistry) rawConn() net.Conn {
	r.t.Helper()
	conn, err := net.Dial("tcp", r.srv.Listener.Addr().String())
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	return conn
}

func readResponse(t testing.TB, conn net.Conn) response {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// A body that stops moving is cut off after the stall timeout, over HTTP/1
// and HTTP/2, and the upload keeps nothing of it; a slow body that keeps
// moving is not; a client that stops reading a response is let go.
func TestStalledBodiesAreCutOff(t *testing.T) {
	const stall = 300 * time.Millisecond
	var logs syncBuffer
	r := startRegistry(t, regOptions{Config: api.Config{StallTimeout: stall, Logger: newJSONLogger(&logs)}})

	t.Run("request body stops", func(t *testing.T) {
		loc := r.startUpload("s/app")
		conn := r.rawConn()
		start := time.Now()
		fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789", loc)
		resp := readResponse(t, conn)
		took := time.Since(start)
		expectError(t, "stalled PATCH", resp, http.StatusBadRequest, "BLOB_UPLOAD_INVALID")
		if took < stall || took > 10*stall {
			t.Errorf("cut off after %v; stall timeout %v", took, stall)
		}
		if st := r.get(loc, nil); st.Header.Get("Range") != "0-0" {
			t.Errorf("upload after the cut: Range %q, want nothing kept", st.Header.Get("Range"))
		}
	})

	t.Run("slow body keeps moving", func(t *testing.T) {
		loc := r.startUpload("s/app")
		conn := r.rawConn()
		fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Length: 800\r\n\r\n", loc)
		tick := time.NewTicker(stall / 2)
		defer tick.Stop()
		for i := 0; i < 8; i++ { // 8 pieces over 4 stall timeouts
			<-tick.C
			conn.Write([]byte(strings.Repeat(string(rune('a'+i)), 100)))
		}
		resp := readResponse(t, conn)
		expectStatus(t, "slow PATCH", resp, http.StatusAccepted)
		if got := resp.Header.Get("Range"); got != "0-799" {
			t.Errorf("slow PATCH: Range %q", got)
		}
	})

	t.Run("HTTP/2 request body stops", func(t *testing.T) {
		h2 := httptest.NewUnstartedServer(api.New(r.reg.Registry, api.Config{StallTimeout: stall}))
		h2.EnableHTTP2 = true
		h2.StartTLS()
		defer h2.Close()
		loc := r.startUpload("s/app")
		pr, pw := io.Pipe()
		defer pw.Close()
		go pw.Write([]byte("0123456789"))
		req, _ := http.NewRequest(http.MethodPatch, h2.URL+loc, pr)
		start := time.Now()
		client := h2.Client()
		client.Timeout = 20 * stall
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Proto != "HTTP/2.0" || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s %d, want HTTP/2.0 400", resp.Proto, resp.StatusCode)
		}
		if took := time.Since(start); took > 10*stall {
			t.Errorf("cut off after %v", took)
		}
	})

	t.Run("client stops reading", func(t *testing.T) {
		big := randomLayer(rand.New(rand.NewSource(91)), mtOCILayer, 48<<20)
		r.pushBlob("s/big", big)
		conn := r.rawConn()
		conn.(*net.TCPConn).SetReadBuffer(4 << 10)
		fmt.Fprintf(conn, "GET /v2/s/big/blobs/%s HTTP/1.1\r\nHost: x\r\n\r\n", big.Digest)
		// Read nothing; the server must give up and log the request.
		deadline := time.Now().Add(15 * time.Second)
		for {
			for _, l := range logs.lines(t) {
				if l["msg"] == "request" && l["method"] == "GET" && l["route"] == "blob" {
					if out := l["bytes_out"].(float64); out >= float64(len(big.Data)) {
						t.Fatalf("the whole blob went out to a client that reads nothing (%v bytes)", out)
					}
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("the server still writes to a client that stopped reading")
			}
			time.Sleep(20 * time.Millisecond) // waiting for the server's deadline to pass
		}
	})
}
