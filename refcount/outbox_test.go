package refcount_test

import (
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

var testEndpoints = []refcount.Endpoint{
	{Name: "all", Actions: []string{refcount.ActionPush, refcount.ActionTag, refcount.ActionDelete}},
	{Name: "team", Repos: []string{"team/*"}, Actions: []string{refcount.ActionPush}},
	{Name: "pulls", Repos: []string{"a"}, Actions: []string{refcount.ActionPull}},
}

// outbox reads every endpoint's rows, oldest first.
func outbox(t *testing.T, f *fixture) map[string][]refcount.OutboxEntry {
	t.Helper()
	rep, err := f.Outbox(0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]refcount.OutboxEntry{}
	for _, ep := range rep.Endpoints {
		if ep.Pending != int64(len(ep.Entries)) {
			t.Errorf("endpoint %s: pending %d, %d rows", ep.Name, ep.Pending, len(ep.Entries))
		}
		out[ep.Name] = ep.Entries
	}
	return out
}

// summary is "action repo tag digest-prefix" per event, for comparison.
func summary(es []refcount.OutboxEntry) []string {
	var out []string
	for _, e := range es {
		d := e.Event.Digest
		if len(d) > 15 {
			d = d[:15]
		}
		out = append(out, fmt.Sprintf("%s %s %s %s", e.Event.Action, e.Event.Repository, e.Event.Tag, d))
	}
	return out
}

// Every push, tag move, delete and wanted pull is a row of each endpoint
// that wants it, in the order of the changes, with the change's origin,
// the push's tags and the bytes a delete freed; an endpoint sees only
// its repositories and actions, and one event has one id everywhere.
func TestOutboxRowsFollowTheChanges(t *testing.T) {
	f := newFixture(t, regtest.Options{Events: testEndpoints})
	alice := refcount.Origin{Actor: "alice", Addr: "127.0.0.1:5", Method: "PUT"}
	push := func(repo, tag string, o refcount.Origin) digest.Digest {
		t.Helper()
		bl := []string{string(f.blob(repo, 100)), string(f.blob(repo, 1000))}
		res, err := f.PutManifestBy(o, repo, "", []string{tag}, refcount.MediaTypeOCIManifest, imageBody(bl, f.size), "")
		if err != nil {
			t.Fatal(err)
		}
		return res.Digest
	}
	d1 := push("a", "v1", alice)
	d2 := push("a", "v1", alice) // moves v1
	d3 := push("team/x", "1", refcount.Origin{})
	freed, err := f.DeleteTagBy(refcount.Origin{Actor: "bob"}, "a", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if freed == 0 {
		t.Fatal("the delete freed nothing")
	}
	info, err := f.GetManifest("team/x", "1", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.RecordPull(refcount.Origin{}, "team/x", "1", info); err != nil {
		t.Fatal(err)
	}
	if err := f.RecordPull(refcount.Origin{Actor: "carol"}, "a", "", refcount.ManifestInfo{Digest: d1, MediaType: refcount.MediaTypeOCIManifest, Size: 5}); err != nil {
		t.Fatal(err)
	}

	rows := outbox(t, f)
	s := func(d digest.Digest) string { return string(d)[:15] }
	want := []string{
		"push a  " + s(d1),
		"push a  " + s(d2),
		"tag a v1 " + s(d2),
		"push team/x  " + s(d3),
		"delete a v1 " + s(d2),
	}
	if got := summary(rows["all"]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows of all:\n%q\nwant\n%q", got, want)
	}
	all := rows["all"]
	for i, e := range all {
		if e.Seq != uint64(i+1) || e.Event.ID == "" || e.Attempts != 0 {
			t.Errorf("row %d: seq %d id %q attempts %d", i, e.Seq, e.Event.ID, e.Attempts)
		}
	}
	if p := all[0].Event; p.Tags[0] != "v1" || p.Size == 0 || p.MediaType != refcount.MediaTypeOCIManifest || p.Origin != alice || p.Time == 0 {
		t.Errorf("push event %+v", p)
	}
	if tg := all[2].Event; tg.From != string(d1) || tg.Origin != alice {
		t.Errorf("tag event %+v: from %s", tg, d1)
	}
	del := all[4].Event
	if del.Reclaimed != freed || del.Origin.Actor != "bob" || len(del.Manifests) != 1 || del.Manifests[0] != string(d2) || len(del.Tags) != 1 || del.Tags[0] != "v1" {
		t.Errorf("delete event %+v, freed %d", del, freed)
	}
	if got := summary(rows["team"]); len(got) != 1 || rows["team"][0].Event.ID != all[3].Event.ID {
		t.Errorf("rows of team: %q (id %s, want %s)", got, rows["team"][0].Event.ID, all[3].Event.ID)
	}
	if p := rows["pulls"]; len(p) != 1 || p[0].Event.Action != refcount.ActionPull || p[0].Event.Origin.Actor != "carol" || p[0].Event.Digest != string(d1) {
		t.Errorf("rows of pulls: %+v", p)
	}
	ids := map[string]bool{}
	for _, e := range all {
		if ids[e.Event.ID] {
			t.Errorf("id %s twice", e.Event.ID)
		}
		ids[e.Event.ID] = true
	}
}

// A change that is refused writes no event: a push of a manifest whose
// layers are missing, a delete of an unknown tag, a dry run of a delete.
func TestOutboxRefusedChangeWritesNothing(t *testing.T) {
	f := newFixture(t, regtest.Options{Events: testEndpoints})
	f.image("a", "v1")
	before := summary(outbox(t, f)["all"])
	missing := digest.FromString("not uploaded")
	_, err := f.PutManifestBy(refcount.Origin{Actor: "x"}, "a", "", []string{"v2"}, refcount.MediaTypeOCIManifest,
		imageBody([]string{string(f.blob("a", 10)), string(missing)}, func(string) int64 { return 10 }), "")
	if _, ok := refcount.IsMissing(err); !ok {
		t.Fatalf("push with a missing layer: %v", err)
	}
	if _, err := f.DeleteTag("a", "nope"); !errors.Is(err, refcount.ErrManifestUnknown) {
		t.Fatalf("delete of an unknown tag: %v", err)
	}
	if _, err := f.RemovePlan("a:v1"); err != nil {
		t.Fatal(err)
	}
	if after := summary(outbox(t, f)["all"]); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("rows after refused changes:\n%q\nwant\n%q", after, before)
	}
	// Remove (kvreg rm) is a delete like the others.
	rep, err := f.Remove("a")
	if err != nil {
		t.Fatal(err)
	}
	rows := outbox(t, f)["all"]
	last := rows[len(rows)-1].Event
	if last.Action != refcount.ActionDelete || last.Repository != "a" || last.Tag != "" || last.Reclaimed != rep.ReclaimedBytes || len(last.Tags) != 1 {
		t.Errorf("repository delete event %+v, report %+v", last, rep)
	}
}

// Delivery bookkeeping: a failed attempt is recorded on the row, a
// delivered row goes, and a claim is one owner's until it expires.
func TestOutboxDeliveryBookkeeping(t *testing.T) {
	f := newFixture(t, regtest.Options{Events: testEndpoints})
	f.image("a", "v1")
	f.image("a", "v2")
	now := f.Clock.Now()
	if ok, err := f.ClaimEvents("all", "p1", now, now.Add(10e9)); err != nil || !ok {
		t.Fatalf("first claim: %v %v", ok, err)
	}
	if ok, err := f.ClaimEvents("all", "p2", now.Add(5e9), now.Add(15e9)); err != nil || ok {
		t.Fatalf("claim of a live claim: %v %v", ok, err)
	}
	if ok, err := f.ClaimEvents("all", "p1", now.Add(5e9), now.Add(15e9)); err != nil || !ok {
		t.Fatalf("renewal: %v %v", ok, err)
	}
	if ok, err := f.ClaimEvents("all", "p2", now.Add(15e9), now.Add(25e9)); err != nil || !ok {
		t.Fatalf("takeover of an expired claim: %v %v", ok, err)
	}
	e, ok, err := f.OldestEvent("all")
	if err != nil || !ok || e.Seq != 1 {
		t.Fatalf("oldest %+v %v %v", e, ok, err)
	}
	if err := f.EventFailed("all", 1, 1, "503 Service Unavailable", now.Add(1e9)); err != nil {
		t.Fatal(err)
	}
	e, _, _ = f.OldestEvent("all")
	if e.Attempts != 1 || e.LastError != "503 Service Unavailable" || !e.Next.Equal(now.Add(1e9)) {
		t.Errorf("after a failure: %+v", e)
	}
	if err := f.EventDelivered("all", 1); err != nil {
		t.Fatal(err)
	}
	// A failure recorded after another delivered the row does not bring it back.
	if err := f.EventFailed("all", 1, 2, "late", now); err != nil {
		t.Fatal(err)
	}
	e, ok, _ = f.OldestEvent("all")
	if !ok || e.Seq != 2 {
		t.Fatalf("oldest after delivery: %+v %v", e, ok)
	}
	if n, err := f.EventsPending("all"); err != nil || n != 1 {
		t.Errorf("pending %d %v", n, err)
	}
}

// Replicas pushing at once on PostgreSQL: every push is one row of the
// endpoint, numbered without a gap or a duplicate (a transaction that
// reran took its number again), each with its own id, and each replica's
// pushes, committed one after another, in the order they committed.
func TestOutboxReplicasNumberInCommitOrder(t *testing.T) {
	ra, rb := eventReplicas(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i, f := range []*fixture{ra, rb} {
		repo := fmt.Sprintf("r%d", i)
		bl := []string{string(f.blob(repo, 50))}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < n; j++ {
				body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":50},"layers":[],"annotations":{"n":"%d"}}`, refcount.MediaTypeOCIManifest, bl[0], j)
				if _, err := f.PutManifest(repo, "", []string{fmt.Sprint("t", j)}, refcount.MediaTypeOCIManifest, []byte(body), ""); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rows := outbox(t, ra)["all"]
	if len(rows) != 2*n {
		t.Fatalf("%d rows, want %d", len(rows), 2*n)
	}
	ids := map[string]bool{}
	next := map[string]int{} // per repository, the tag its next row must have
	for i, e := range rows {
		if e.Seq != uint64(i+1) || ids[e.Event.ID] {
			t.Errorf("row %d: seq %d id %s", i, e.Seq, e.Event.ID)
		}
		ids[e.Event.ID] = true
		// A replica's pushes commit one after another: their rows follow
		// in that order.
		repo := e.Event.Repository
		if want := fmt.Sprint("t", next[repo]); len(e.Event.Tags) != 1 || e.Event.Tags[0] != want {
			t.Errorf("row %d of %s: tags %v, want %s", i, repo, e.Event.Tags, want)
		}
		next[repo]++
	}
	sa, _ := ra.StoreStats()
	sb, _ := rb.StoreStats()
	t.Logf("%d pushes from two replicas: %d reruns after conflicts", 2*n, sa.Retries+sb.Retries)
}

// eventReplicas is replicas with the test's endpoints.
func eventReplicas(t *testing.T) (a, b *fixture) {
	t.Helper()
	bs, err := regtest.Backends()
	if err != nil {
		t.Fatal(err)
	}
	for _, be := range bs {
		if be.DB == "postgres" {
			a = newFixture(t, regtest.Options{Backend: be, Shared: true, Events: testEndpoints})
			b = &fixture{Registry: a.Replica(), t: t, rnd: rand.New(rand.NewSource(2))}
			return a, b
		}
	}
	t.Skipf("replicas share a PostgreSQL database: %s=postgres", regtest.EnvBackends)
	return nil, nil
}

// DropEvents removes an endpoint's rows up to a sequence number, or all of
// them, and leaves the other endpoints' alone.
func TestOutboxDrop(t *testing.T) {
	f := newFixture(t, regtest.Options{Events: testEndpoints})
	for i := range 3 {
		bl := []string{string(f.blob("team/a", 100+i)), string(f.blob("team/a", 1000+i))}
		if _, err := f.PutManifest("team/a", "", []string{fmt.Sprintf("v%d", i)}, refcount.MediaTypeOCIManifest, imageBody(bl, f.size), ""); err != nil {
			t.Fatal(err)
		}
	}
	before := outbox(t, f)
	if len(before["all"]) != 3 || len(before["team"]) != 3 {
		t.Fatalf("rows before: all %d team %d", len(before["all"]), len(before["team"]))
	}
	rep, err := f.DropEvents("all", before["all"][1].Seq)
	if err != nil || rep.Dropped != 2 {
		t.Fatalf("drop up to the second row: %+v %v", rep, err)
	}
	after := outbox(t, f)
	if len(after["all"]) != 1 || after["all"][0].Seq != before["all"][2].Seq || len(after["team"]) != 3 {
		t.Fatalf("rows after: all %v team %d", summary(after["all"]), len(after["team"]))
	}
	if rep, err = f.DropEvents("team", 0); err != nil || rep.Dropped != 3 {
		t.Fatalf("drop all of team: %+v %v", rep, err)
	}
	if rows := outbox(t, f); len(rows["team"]) != 0 {
		t.Fatalf("team's rows after dropping all: %d", len(rows["team"]))
	}
}

// fsck compares each endpoint's count of pending events with its rows
// (configured endpoints with no row left included) and repair sets the
// count to the rows.
func TestFsckChecksOutboxCounts(t *testing.T) {
	f := newFixture(t, regtest.Options{Events: testEndpoints})
	bl := []string{string(f.blob("team/a", 100)), string(f.blob("team/a", 1000))}
	if _, err := f.PutManifest("team/a", "", []string{"v1"}, refcount.MediaTypeOCIManifest, imageBody(bl, f.size), ""); err != nil {
		t.Fatal(err)
	}
	if probs, err := f.Check(false); err != nil || len(probs) != 0 {
		t.Fatalf("fsck before the damage: %v %v", probs, err)
	}
	f.update(func(tx *kv.Tx) error {
		if err := tx.AddOutboxPending("all", 2); err != nil {
			return err
		}
		return tx.AddOutboxPending("pulls", 1) // no row at all
	})
	probs, err := f.Check(false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range probs {
		got = append(got, p.Kind+" "+p.Object)
	}
	want := []string{refcount.ProblemCounter + " events endpoint all", refcount.ProblemCounter + " events endpoint pulls"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fsck after the damage: %v, want %v", probs, want)
	}
	if _, err := f.Repair(false, false); err != nil {
		t.Fatal(err)
	}
	if probs, err := f.Check(false); err != nil || len(probs) != 0 {
		t.Fatalf("fsck after repair: %v %v", probs, err)
	}
	for ep, want := range map[string]int64{"all": 1, "team": 1, "pulls": 0} {
		if n, err := f.EventsPending(ep); err != nil || n != want {
			t.Errorf("endpoint %s after repair: %d pending (%v), want %d", ep, n, err, want)
		}
	}
}
