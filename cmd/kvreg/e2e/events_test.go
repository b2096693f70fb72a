package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api/events"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

// receiver is an events endpoint on loopback (testenv.Receiver) that reads
// what arrives as the reference registry's envelopes.
type receiver struct {
	t *testing.T
	*testenv.Receiver
}

type receivedEvent struct {
	events.DistributionEvent
	signature, body string
}

func newReceiver(t *testing.T) *receiver {
	r, err := testenv.NewReceiver()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Down)
	return &receiver{t, r}
}

func (r *receiver) up() {
	if err := r.Up(); err != nil {
		r.t.Fatal(err)
	}
}

// wait waits until n events have arrived, or fails after limit; each
// delivery must be an envelope of the distribution format.
func (r *receiver) wait(n int, limit time.Duration) []receivedEvent {
	r.t.Helper()
	var got []receivedEvent
	_, err := r.Wait(limit, func(ds []testenv.Delivery) bool {
		got = got[:0]
		for _, d := range ds {
			var env events.Envelope
			if ct := d.Header.Get("Content-Type"); ct != events.MediaTypeDistribution {
				r.t.Fatalf("a delivery of %s, want %s", ct, events.MediaTypeDistribution)
			}
			if err := json.Unmarshal(d.Body, &env); err != nil {
				r.t.Fatalf("a delivery that is not an envelope: %v\n%s", err, d.Body)
			}
			for _, e := range env.Events {
				got = append(got, receivedEvent{DistributionEvent: e, signature: d.Header.Get(events.SignatureHeader), body: string(d.Body)})
			}
		}
		return len(got) >= n
	})
	if err != nil {
		r.t.Fatalf("%d events, want %d: %v", len(got), n, err)
	}
	return got
}

// TestEventsDockerCrane: a receiver on loopback gets docker's push, its
// push of another image over the tag and crane's delete of the tag, with
// the fields a receiver of the reference registry reads, signed; then it
// is down for a minute while crane pushes three images, and once it is
// back every event arrives, in order, each once.
func TestEventsDockerCrane(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite; not in -short")
	}
	t.Parallel()
	defer step(t, "events to a receiver")()
	d := needDocker(t)
	c := newCrane(t)
	rc := newReceiver(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "hook.secret")
	if err := os.WriteFile(secret, []byte("e2e-hook-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "kvreg.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`events:
  - name: hook
    url: http://%s/hook
    format: distribution
    secret-file: %s
    actions: [push, delete]
    repos: ["ev/*"]
    timeout: 2s
`, rc.Addr(), secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := startRegistryWith(t, "", "--config", conf)

	rng := newRand()
	base := makeLayer(t, rng, randomFile("base/os.bin", 256<<10))
	ref, next := reg.ref("ev/app:1"), reg.ref("ev/app:next")
	loadImage(t, d, ref, "ev-a", base, makeLayer(t, rng, randomFile("app/a.bin", 64<<10)))
	d.must(t, 3*time.Minute, "push", ref)
	_, dA := reg.getManifest(t, "ev/app", "1")
	loadImage(t, d, next, "ev-b", base, makeLayer(t, rng, randomFile("app/b.bin", 64<<10)))
	d.must(t, time.Minute, "tag", next, ref)
	d.must(t, 3*time.Minute, "push", ref)
	_, dB := reg.getManifest(t, "ev/app", "1")
	d.must(t, time.Minute, "rmi", ref, next)
	c.must(t, "delete", ref)

	got := rc.wait(3, time.Minute)
	want := []struct{ action, digest, tag, agent string }{
		{"push", dA, "1", "docker"}, {"push", dB, "1", "docker"}, {"delete", dB, "1", "crane"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(got), len(want), got)
	}
	ids := map[string]bool{}
	for i, w := range want {
		e := got[i]
		tg := e.Target
		if e.Action != w.action || tg.Repository != "ev/app" || tg.Digest != w.digest || tg.Tag != w.tag {
			t.Errorf("event %d: %s %s %s:%s, want %s %s:%s", i, e.Action, tg.Digest, tg.Repository, tg.Tag, w.action, w.digest, w.tag)
		}
		if !strings.Contains(strings.ToLower(e.Request.UserAgent), w.agent) || e.Request.Addr == "" || e.Source.Addr == "" || e.ID == "" || ids[e.ID] {
			t.Errorf("event %d: request %+v source %+v id %q", i, e.Request, e.Source, e.ID)
		}
		ids[e.ID] = true
		if e.signature != events.Sign([]byte("e2e-hook-secret"), []byte(e.body)) {
			t.Errorf("event %d: signature %q does not verify", i, e.signature)
		}
		if w.action == "push" && (tg.MediaType != mtDockerManifest || tg.Size == 0 || !strings.HasSuffix(tg.URL, "/v2/ev/app/manifests/"+w.digest)) {
			t.Errorf("push event %d target %+v", i, tg)
		}
	}
	if got[2].Target.ReclaimedBytes <= 64<<10 {
		t.Errorf("the delete event says %d bytes were freed, want B's own layer and config at least", got[2].Target.ReclaimedBytes)
	}

	// Down for a minute; crane pushes meanwhile.
	rc.Down()
	downAt := time.Now()
	var pushed []string
	for i := 1; i <= 3; i++ {
		tar := filepath.Join(dir, fmt.Sprintf("d%d.tar", i))
		writeLayerFile(t, tar, rng, randomFile(fmt.Sprintf("opt/d%d.bin", i), 16<<10))
		c.must(t, "append", "-f", tar, "-t", reg.ref(fmt.Sprintf("ev/app:d%d", i)))
		_, dg := reg.getManifest(t, "ev/app", fmt.Sprintf("d%d", i))
		pushed = append(pushed, dg)
	}
	if out := mustRun(t, time.Minute, nil, kvregBin, "events", "ls", "--root", reg.root).stdout; !strings.Contains(out, "hook") {
		t.Errorf("kvreg events ls while the receiver is down:\n%s", out)
	}
	time.Sleep(time.Minute - time.Since(downAt)) // the outage itself
	rc.up()
	t.Logf("receiver back after %v", time.Since(downAt).Round(time.Second))
	got = rc.wait(6, 4*time.Minute)
	t.Logf("the last event arrived %v after the receiver came back", time.Since(downAt)-time.Minute)
	if len(got) != 6 {
		t.Errorf("%d events in all, want 6 (each once)", len(got))
	}
	for i, dg := range pushed {
		e := got[3+i]
		if e.Action != "push" || e.Target.Digest != dg || e.Target.Tag != fmt.Sprintf("d%d", i+1) || ids[e.ID] {
			t.Errorf("event %d after the outage: %s %s:%s id %q, want push of d%d (%s), in order", 3+i, e.Action, e.Target.Repository, e.Target.Tag, e.ID, i+1, dg)
		}
		ids[e.ID] = true
	}
}
