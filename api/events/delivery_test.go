package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api/events"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
)

var alice = refcount.Origin{Actor: "alice", Addr: "10.0.0.7:41000", Host: "reg.example:5000", Scheme: "https", Method: "PUT", UserAgent: "docker/27", RequestID: "req-1"}

// The distribution envelope carries the fields its receivers read: a
// push per tag with the manifest's media type, size, digest, length,
// repository, URL and tag, the request, the actor and the source; a tag
// moved by a push is that push's event alone, as the reference registry
// sends it (no second event for the move); a delete names the tag and the
// bytes it freed. The signature is the HMAC of the body under the secret.
func TestDistributionEnvelope(t *testing.T) {
	rc := newReceiver(t)
	ep := endpoint(rc, "dist", events.FormatDistribution, "push", "tag", "delete")
	reg, d := open(t, []events.Endpoint{ep}, regtest.Options{})
	d1 := push(t, reg, alice, "team/app", "v1")
	d2 := push(t, reg, alice, "team/app", "v1")
	freed, err := reg.DeleteTagBy(refcount.Origin{Actor: "bob", Method: "DELETE"}, "team/app", "v1")
	if err != nil {
		t.Fatal(err)
	}
	drain(t, d.Worker("dist"), 10)
	got := rc.bodies()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3 (push, push over the tag, delete)", len(got))
	}
	var evs []events.DistributionEvent
	for _, g := range got {
		if g.contentType != events.MediaTypeDistribution {
			t.Errorf("content type %q", g.contentType)
		}
		if g.signature != events.Sign([]byte("s3cret-dist"), g.body) {
			t.Errorf("signature %q does not verify", g.signature)
		}
		var env events.Envelope
		if err := json.Unmarshal(g.body, &env); err != nil || len(env.Events) != 1 {
			t.Fatalf("envelope %s: %v", g.body, err)
		}
		evs = append(evs, env.Events[0])
	}
	p := evs[0]
	wantURL := "https://reg.example:5000/v2/team/app/manifests/" + string(d1)
	if p.Action != "push" || p.Target.MediaType != refcount.MediaTypeOCIManifest || p.Target.Size == 0 || p.Target.Length != p.Target.Size ||
		p.Target.Digest != string(d1) || p.Target.Repository != "team/app" || p.Target.URL != wantURL || p.Target.Tag != "v1" {
		t.Errorf("push target %+v", p.Target)
	}
	if p.Actor.Name != "alice" || p.Request.Addr != alice.Addr || p.Request.Host != alice.Host || p.Request.Method != "PUT" ||
		p.Request.UserAgent != "docker/27" || p.Request.ID != "req-1" || p.Source.Addr != "127.0.0.1:5000" || p.Source.InstanceID != "p1" {
		t.Errorf("push event %+v", p)
	}
	if ts, err := time.Parse(time.RFC3339Nano, p.Timestamp); err != nil || !ts.Equal(regtest.Start) {
		t.Errorf("timestamp %q: %v", p.Timestamp, err)
	}
	if evs[1].Action != "push" || evs[1].Target.Digest != string(d2) || evs[1].Target.Tag != "v1" {
		t.Errorf("overwrite: %+v", evs[1].Target)
	}
	del := evs[2]
	if del.Action != "delete" || del.Target.Repository != "team/app" || del.Target.Tag != "v1" || del.Target.Digest != string(d2) ||
		del.Target.ReclaimedBytes != freed || freed == 0 || del.Actor.Name != "bob" {
		t.Errorf("delete event %+v, freed %d", del, freed)
	}
	ids := map[string]bool{}
	for _, e := range evs {
		if e.ID == "" || ids[e.ID] {
			t.Errorf("id %q empty or repeated", e.ID)
		}
		ids[e.ID] = true
	}
	if n := len(pending(t, reg, "dist")); n != 0 {
		t.Errorf("%d rows left after delivery", n)
	}
}

// A CloudEvent in structured mode: specversion 1.0, the event's id, a
// source, a type per change, the time, the content type and the change in
// data.
func TestCloudEvents(t *testing.T) {
	rc := newReceiver(t)
	ep := endpoint(rc, "ce", events.FormatCloudEvents, "push", "tag", "delete", "pull")
	reg, d := open(t, []events.Endpoint{ep}, regtest.Options{})
	d1 := push(t, reg, alice, "app", "v1")
	d2 := push(t, reg, alice, "app", "v1")
	info, err := reg.GetManifest("app", "v1", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.RecordPull(refcount.Origin{Actor: "carol"}, "app", "v1", info); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.DeleteManifestBy(refcount.Origin{}, "app", d2); err != nil {
		t.Fatal(err)
	}
	drain(t, d.Worker("ce"), 10)
	var types, subjects []string
	for _, g := range rc.bodies() {
		if g.contentType != events.MediaTypeCloudEvents || g.signature != events.Sign([]byte("s3cret-ce"), g.body) {
			t.Errorf("content type %q, signature %q", g.contentType, g.signature)
		}
		var ce events.CloudEvent
		if err := json.Unmarshal(g.body, &ce); err != nil {
			t.Fatal(err)
		}
		if ce.SpecVersion != "1.0" || ce.ID == "" || ce.Source != "kvreg" || ce.DataContentType != "application/json" || ce.Time == "" || ce.Data.Repository != "app" {
			t.Errorf("cloudevent %+v", ce)
		}
		types, subjects = append(types, ce.Type), append(subjects, ce.Subject)
		if ce.Type == events.TypeTagMoved && (ce.Data.From != string(d1) || ce.Data.Digest != string(d2) || ce.Data.Actor != "alice") {
			t.Errorf("tag moved data %+v", ce.Data)
		}
		if ce.Type == events.TypeManifestDeleted && (ce.Data.ReclaimedBytes == 0 || len(ce.Data.Tags) != 1) {
			t.Errorf("manifest deleted data %+v", ce.Data)
		}
	}
	want := fmt.Sprint([]string{events.TypePushed, events.TypePushed, events.TypeTagMoved, events.TypePulled, events.TypeManifestDeleted})
	if fmt.Sprint(types) != want {
		t.Fatalf("types %v, want %v", types, want)
	}
	if subjects[2] != "app:v1" || subjects[4] != "app@"+string(d2) {
		t.Errorf("subjects %v", subjects)
	}
}

// The receiver down: each attempt is recorded on the row (attempts, error,
// next attempt), the waits double up to the cap, nothing is tried before
// its time and no later event overtakes; once it is up, every event
// arrives in commit order with the id it had.
func TestReceiverDownThenUp(t *testing.T) {
	rc := newReceiver(t)
	rc.set(http.StatusServiceUnavailable)
	ep := endpoint(rc, "dist", events.FormatDistribution)
	reg, d := open(t, []events.Endpoint{ep}, regtest.Options{})
	w := d.Worker("dist")
	var want []string
	for i := 0; i < 3; i++ {
		push(t, reg, refcount.Origin{}, "app", fmt.Sprint("t", i))
	}
	for _, e := range pending(t, reg, "dist") {
		want = append(want, e.Event.ID)
	}
	var waits []time.Duration
	for steps := 0; len(waits) < 6; steps++ {
		if steps == 50 {
			t.Fatalf("6 attempts not made in 50 steps: waits %v", waits)
		}
		calls := rc.callCount()
		wait := drain(t, w, 1)
		row := pending(t, reg, "dist")[0]
		switch {
		case rc.callCount() == calls+1:
			// The backoff, as the row records it.
			waits = append(waits, row.Next.Sub(reg.Clock.Now()))
		case rc.callCount() != calls:
			t.Fatalf("%d calls in one step", rc.callCount()-calls)
		case !reg.Clock.Now().Before(row.Next):
			t.Fatalf("a due row was not tried: next %v, now %v", row.Next, reg.Clock.Now())
		}
		if wait > row.Next.Sub(reg.Clock.Now()) && row.Next.After(reg.Clock.Now()) {
			t.Fatalf("a wait of %v past the next attempt at %v", wait, row.Next)
		}
		reg.Clock.Advance(wait)
	}
	if fmt.Sprint(waits) != "[1s 2s 4s 8s 8s 8s]" {
		t.Errorf("waits %v", waits)
	}
	rows := pending(t, reg, "dist")
	if len(rows) != 3 || rows[0].Attempts != 6 || rows[0].LastError == "" || rows[1].Attempts != 0 {
		t.Fatalf("rows while down: %+v", rows)
	}
	if rc.callCount() != 6 {
		t.Fatalf("%d calls while down, want 6 (one row at a time)", rc.callCount())
	}
	rc.set(http.StatusAccepted)
	reg.Clock.Advance(8 * time.Second)
	drain(t, w, 10)
	var got []string
	for _, g := range rc.bodies() {
		var env events.Envelope
		if err := json.Unmarshal(g.body, &env); err != nil {
			t.Fatal(err)
		}
		got = append(got, env.Events[0].ID)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if len(pending(t, reg, "dist")) != 0 {
		t.Fatal("rows left")
	}
}

// Two workers of one endpoint (two replicas on PostgreSQL when chosen,
// else two deliveries over one store): only the claim's owner delivers, so
// every event arrives once; when the owner stops (dies), the other takes
// over once the claim has expired and delivers what is left.
func TestTwoWorkersDeliverOnce(t *testing.T) {
	rc := newReceiver(t)
	eps := []events.Endpoint{endpoint(rc, "dist", events.FormatDistribution)}
	o := regtest.Options{}
	if bs, err := regtest.Backends(); err == nil && bs[0].DB == "postgres" {
		o.Shared = true
	}
	reg, d1 := open(t, eps, o)
	reg2 := reg
	if o.Shared {
		reg2 = reg.Replica()
	}
	d2 := delivery(t, reg2, eps, "p2")
	w1, w2 := d1.Worker("dist"), d2.Worker("dist")
	for i := 0; i < 4; i++ {
		push(t, reg, refcount.Origin{}, "app", fmt.Sprint("a", i))
		push(t, reg2, refcount.Origin{}, "app", fmt.Sprint("b", i))
	}
	for i := 0; i < 20; i++ {
		if _, err := w1.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := w2.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[string]int{}
	for _, g := range rc.bodies() {
		var env events.Envelope
		json.Unmarshal(g.body, &env)
		ids[env.Events[0].ID]++
		if env.Events[0].Source.InstanceID != "p1" {
			t.Errorf("delivered by %s while p1 holds the claim", env.Events[0].Source.InstanceID)
		}
	}
	if len(ids) != 8 {
		t.Fatalf("%d events delivered, want 8", len(ids))
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	// p1 dies (stops stepping) with rows left.
	push(t, reg2, refcount.Origin{}, "app", "late")
	drain(t, w2, 3)
	if len(rc.bodies()) != 8 {
		t.Fatal("p2 delivered under p1's live claim")
	}
	reg.Clock.Advance(31 * time.Second)
	drain(t, w2, 5)
	got := rc.bodies()
	var env events.Envelope
	json.Unmarshal(got[len(got)-1].body, &env)
	if len(got) != 9 || env.Events[0].Source.InstanceID != "p2" || env.Events[0].Target.Tag != "late" {
		t.Fatalf("after p1's claim expired: %d requests, last %+v", len(got), env.Events[0])
	}
}

// Run delivers on its own: a commit of this process wakes the worker, no
// timer needed; cancelling it gives the claim up.
func TestRunWakesOnCommit(t *testing.T) {
	rc := newReceiver(t)
	eps := []events.Endpoint{endpoint(rc, "dist", events.FormatDistribution)}
	reg, d := open(t, eps, regtest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	push(t, reg, refcount.Origin{}, "app", "v1")
	select {
	case <-rc.notify:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery after a commit")
	}
	cancel()
	<-done
	// Released: another owner claims at once, without waiting for expiry.
	if ok, err := reg.ClaimEvents("dist", "p9", reg.Clock.Now(), reg.Clock.Now().Add(time.Minute)); err != nil || !ok {
		t.Fatalf("claim after Run ended: %v %v", ok, err)
	}
}

// A replica whose clock runs behind still believes in a claim that the
// others, by theirs, saw expire and took over: the claim it reads with
// each row is then another's, and it delivers nothing.
func TestLapsedClaimDeliversNothing(t *testing.T) {
	rc := newReceiver(t)
	eps := []events.Endpoint{endpoint(rc, "dist", events.FormatDistribution)}
	o := regtest.Options{}
	if bs, err := regtest.Backends(); err == nil && bs[0].DB == "postgres" {
		o.Shared = true
	}
	reg, d2 := open(t, eps, o)
	reg1 := reg
	if o.Shared {
		reg1 = reg.Replica()
	}
	behind := func() time.Time { return reg.Clock.Now().Add(-25 * time.Second) }
	d1, err := events.New(reg1.Registry, eps, events.Options{
		Owner: "slow", Source: events.Source{Addr: "127.0.0.1:5001"},
		Now: behind, After: never, ClaimTTL: 30 * time.Second,
		BackoffMin: time.Second, BackoffMax: 8 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	w1, w2 := d1.Worker("dist"), d2.Worker("dist")
	// The slow replica takes the claim (until its clock's now + 30 s, 5 s
	// from the true now) and delivers.
	push(t, reg, refcount.Origin{}, "app", "one")
	drain(t, w1, 3)
	if n := len(rc.bodies()); n != 1 {
		t.Fatalf("%d deliveries by the slow replica, want 1", n)
	}
	// 6 s on, the claim has expired by the true clock: p1 takes it over.
	reg.Clock.Advance(6 * time.Second)
	push(t, reg, refcount.Origin{}, "app", "two")
	if _, err := w2.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(rc.bodies()); n != 2 {
		t.Fatalf("%d deliveries after the take-over, want 2", n)
	}
	// The slow replica, whose clock says its claim has 11 s left, steps
	// before p1 has removed anything more: it delivers nothing.
	push(t, reg, refcount.Origin{}, "app", "three")
	for range 3 {
		if _, err := w1.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range rc.bodies() {
		var env events.Envelope
		json.Unmarshal(g.body, &env)
		if env.Events[0].Target.Tag == "three" && env.Events[0].Source.Addr == "127.0.0.1:5001" {
			t.Fatal("the replica whose claim lapsed delivered an event")
		}
	}
}
