package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A request is from this machine when its remote address is a loopback one
// or the server's own address; anything else, or an address that does not
// parse, is not.
func TestSameHost(t *testing.T) {
	for _, c := range []struct {
		remote string
		local  net.Addr // nil: no local address in the context
		want   bool
	}{
		{"127.0.0.1:40000", nil, true},
		{"127.8.9.10:40000", nil, true},
		{"[::1]:40000", nil, true},
		{"[::ffff:127.0.0.1]:40000", nil, true},
		{"192.0.2.7:40000", &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5000}, true},
		{"[::ffff:192.0.2.7]:40000", &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5000}, true},
		{"[2001:db8::1]:40000", &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 5000}, true},
		{"192.0.2.8:40000", &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5000}, false},
		{"192.0.2.8:40000", nil, false},
		{"[2001:db8::2]:40000", &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 5000}, false},
		{"@", &net.UnixAddr{Name: "/run/kvreg.sock", Net: "unix"}, false},
		{"not an address", nil, false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
		r.RemoteAddr = c.remote
		if c.local != nil {
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, c.local))
		}
		if got := sameHost(r); got != c.want {
			t.Errorf("remote %s, local %v: sameHost = %v, want %v", c.remote, c.local, got, c.want)
		}
		if ap, err := netip.ParseAddrPort(c.remote); err == nil {
			if got := SameHost(c.local, net.TCPAddrFromAddrPort(ap)); got != c.want {
				t.Errorf("remote %s, local %v: SameHost = %v, want %v", c.remote, c.local, got, c.want)
			}
		}
	}
}

// Both ways of sending a file, sendfile in sendChunk pieces and the copy
// through a user-space buffer, send the same bytes, whole or a range, and
// count them.
func TestRecorderSendsFileBothWays(t *testing.T) {
	// Neither a multiple of sendChunk nor of copyChunk: every loop ends on a
	// short piece.
	data := make([]byte, 3*sendChunk+copyChunk/2+7)
	for i := range data {
		data[i] = byte(i*7 + i>>9)
	}
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, local := range []bool{false, true} {
		t.Run(fmt.Sprintf("sameHost=%v", local), func(t *testing.T) {
			counted := make(chan int64, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				f, err := os.Open(path)
				if err != nil {
					t.Error(err)
					return
				}
				defer f.Close()
				rec := &recorder{ResponseWriter: w, status: http.StatusOK, sameHost: local,
					stall: newStallGuard(w, time.Minute)}
				http.ServeContent(rec, r, "", time.Time{}, f)
				counted <- rec.bytes
			}))
			defer srv.Close()
			for _, c := range []struct {
				rng        string
				from, to   int // the slice of data expected
				wantStatus int
			}{
				{"", 0, len(data), http.StatusOK},
				{fmt.Sprintf("bytes=100-%d", sendChunk+copyChunk), 100, sendChunk + copyChunk + 1, http.StatusPartialContent},
				{fmt.Sprintf("bytes=%d-", len(data)-10), len(data) - 10, len(data), http.StatusPartialContent},
			} {
				req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
				if c.rng != "" {
					req.Header.Set("Range", c.rng)
				}
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != c.wantStatus {
					t.Errorf("Range %q: status %d, want %d", c.rng, resp.StatusCode, c.wantStatus)
				}
				if !bytes.Equal(body, data[c.from:c.to]) {
					t.Errorf("Range %q: %d bytes that differ from the file's [%d:%d]", c.rng, len(body), c.from, c.to)
				}
				if n := <-counted; n != int64(c.to-c.from) {
					t.Errorf("Range %q: recorder counted %d bytes, want %d", c.rng, n, c.to-c.from)
				}
			}
		})
	}
}
