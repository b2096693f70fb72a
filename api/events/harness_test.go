package events_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api/events"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// received is one request a receiver got.
type received struct {
	contentType, signature string
	body                   []byte
}

// receiver is a real HTTP server on 127.0.0.1 that records what it gets
// and answers status (200 unless set).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	status int
	calls  int
	notify chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{status: http.StatusOK, notify: make(chan struct{}, 100)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.calls++
		st := rc.status
		if st/100 == 2 {
			rc.got = append(rc.got, received{r.Header.Get("Content-Type"), r.Header.Get(events.SignatureHeader), b})
		}
		rc.mu.Unlock()
		w.WriteHeader(st)
		fmt.Fprint(w, http.StatusText(st))
		select {
		case rc.notify <- struct{}{}:
		default: // nobody waits for that many
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) set(status int) { rc.mu.Lock(); rc.status = status; rc.mu.Unlock() }

func (rc *receiver) bodies() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) callCount() int { rc.mu.Lock(); defer rc.mu.Unlock(); return rc.calls }

// never is an After whose timer never fires: tests step workers by hand
// and move the clock themselves.
func never(time.Duration) <-chan time.Time { return nil }

// endpoint is an endpoint to rc of a format, signed with secret.
func endpoint(rc *receiver, name, format string, actions ...string) events.Endpoint {
	return events.Endpoint{Name: name, URL: rc.URL + "/hook", Format: format, Secret: []byte("s3cret-" + name), Actions: actions}
}

// open is a registry that writes rows for eps, and a Delivery over it.
func open(t *testing.T, eps []events.Endpoint, o regtest.Options) (*regtest.Registry, *events.Delivery) {
	t.Helper()
	for i := range eps {
		if err := eps[i].Validate(); err != nil {
			t.Fatal(err)
		}
	}
	rcs, err := events.Refcount(eps)
	if err != nil {
		t.Fatal(err)
	}
	o.Events = rcs
	reg := regtest.Open(t, o)
	return reg, delivery(t, reg, eps, "p1")
}

func delivery(t *testing.T, reg *regtest.Registry, eps []events.Endpoint, owner string) *events.Delivery {
	t.Helper()
	d, err := events.New(reg.Registry, eps, events.Options{
		Owner: owner, Source: events.Source{Addr: "127.0.0.1:5000"},
		Now: reg.Clock.Now, After: never, ClaimTTL: 30 * time.Second,
		BackoffMin: time.Second, BackoffMax: 8 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// push uploads a config and a layer and pushes an image of them to
// repo:tag by o; it returns the manifest's digest.
func push(t *testing.T, reg *regtest.Registry, o refcount.Origin, repo, tag string) digest.Digest {
	t.Helper()
	var descs []string
	for _, n := range []int{50, 500} {
		b := make([]byte, n)
		rand.Read(b)
		d := digest.FromBytes(b)
		if _, err := reg.PutBlob(repo, d, bytes.NewReader(b), int64(n), 0); err != nil {
			t.Fatal(err)
		}
		descs = append(descs, fmt.Sprintf(`{"mediaType":"application/octet-stream","digest":%q,"size":%d}`, d, n))
	}
	body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":%s,"layers":[%s]}`, refcount.MediaTypeOCIManifest, descs[0], descs[1])
	res, err := reg.PutManifestBy(o, repo, "", []string{tag}, refcount.MediaTypeOCIManifest, []byte(body), "")
	if err != nil {
		t.Fatal(err)
	}
	return res.Digest
}

// drain steps w until it has nothing left to do now (a wait), at most n
// steps, and returns the last wait.
func drain(t *testing.T, w *events.Worker, n int) time.Duration {
	t.Helper()
	for i := 0; i < n; i++ {
		wait, err := w.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if wait > 0 {
			return wait
		}
	}
	t.Fatalf("worker still busy after %d steps", n)
	return 0
}

// pending is the rows an endpoint still has.
func pending(t *testing.T, reg *regtest.Registry, ep string) []refcount.OutboxEntry {
	t.Helper()
	rep, err := reg.Outbox(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rep.Endpoints {
		if e.Name == ep {
			return e.Entries
		}
	}
	return nil
}
