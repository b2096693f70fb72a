package refcount_test

import (
	"bytes"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// crashState is what a crash leaves beside real damage, by hand.
type crashState struct {
	*fixture
	unrecorded, recorded, replaced digest.Digest // the interrupted uploads' blobs
	uploads                        []string      // their ids
	lone                           digest.Digest // a tombstone with its file
	orphan                         digest.Digest // damage: a file nothing will remove
}

func newCrashState(t *testing.T) *crashState {
	f := newFixture(t, regtest.Options{NoCheck: true})
	s := &crashState{fixture: f}
	base := f.blob("r", 1000)
	f.image("r", "x", base)
	// Promoted, not recorded: Recover removes the blob.
	s.unrecorded = f.interrupt("r", []byte("promoted, never recorded"))
	// Promoted and recorded, the upload not yet removed: Recover removes
	// the upload only.
	s.recorded = f.interrupt("r", []byte("promoted and recorded"))
	body := []byte("promoted and recorded")
	if _, err := f.PutBlob("r", s.recorded, bytes.NewReader(body), int64(len(body)), 0); err != nil {
		t.Fatal(err)
	}
	// Promoted, then replaced by other bytes: the blob is not the upload's,
	// so Recover leaves it, and it is damage.
	s.replaced = f.interrupt("r", []byte("promoted, then replaced"))
	f.plant(s.replaced, []byte("someone else's bytes"))
	// A delete whose record went and whose file stayed.
	s.lone = f.blob("r", 700)
	f.update(func(tx *kv.Tx) error { return dropBlobTx(tx, "r", s.lone) })
	// A file with no record and nothing pending: damage.
	s.orphan = digest.FromBytes([]byte("nobody knows me"))
	f.plant(s.orphan, []byte("nobody knows me"))
	ids, err := f.Blobs().Interrupted()
	if err != nil {
		t.Fatal(err)
	}
	for id := range ids {
		s.uploads = append(s.uploads, id)
	}
	sort.Strings(s.uploads)
	if len(s.uploads) != 3 {
		t.Fatalf("interrupted uploads %v, want 3", ids)
	}
	return s
}

func (s *crashState) fsck() *refcount.CheckReport {
	s.t.Helper()
	rep, err := s.Fsck(false, 0)
	if err != nil {
		s.t.Fatal(err)
	}
	return rep
}

func (s *crashState) wantPending() []string {
	var want []string
	for _, id := range s.uploads {
		want = append(want, refcount.ProblemInterrupted+" "+id)
	}
	want = append(want,
		refcount.ProblemOrphanFile+" "+string(s.unrecorded),
		refcount.ProblemPendingDelete+" "+string(s.lone))
	return want
}

func (s *crashState) wantDamage() []string {
	want := []string{
		refcount.ProblemOrphanFile + " " + string(s.orphan),
		refcount.ProblemOrphanFile + " " + string(s.replaced),
	}
	sort.Strings(want)
	return want
}

// What a crash leaves that Recover finishes is pending, not damage; damage
// beside it stays damage; the next open finishes the pending work and
// leaves the damage; Check still counts both.
func TestFsckPendingWorkIsNotDamage(t *testing.T) {
	s := newCrashState(t)
	rep := s.fsck()
	if got, want := kinds(rep.Pending), s.wantPending(); !slices.Equal(got, want) {
		t.Fatalf("pending %v, want %v", got, want)
	}
	if got, want := kinds(rep.Problems), s.wantDamage(); !slices.Equal(got, want) {
		t.Fatalf("problems %v, want %v", got, want)
	}
	all, err := s.Check(false)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(rep.Pending)+len(rep.Problems) {
		t.Fatalf("check found %v, fsck %v and %v", kinds(all), kinds(rep.Problems), kinds(rep.Pending))
	}

	s.Reopen()
	rep = s.fsck()
	if len(rep.Pending) != 0 {
		t.Fatalf("pending after the next open: %v", kinds(rep.Pending))
	}
	if got, want := kinds(rep.Problems), s.wantDamage(); !slices.Equal(got, want) {
		t.Fatalf("problems after the next open %v, want %v", got, want)
	}
	if s.exists(s.unrecorded) || s.exists(s.lone) || !s.exists(s.recorded) {
		t.Fatalf("after the open: unrecorded blob %v, deleted blob %v, recorded blob %v",
			s.exists(s.unrecorded), s.exists(s.lone), s.exists(s.recorded))
	}
	if ids, _ := s.Blobs().Interrupted(); len(ids) != 0 {
		t.Fatalf("interrupted uploads after the open: %v", ids)
	}
}

// Repair finishes the pending work and fixes the damage beside it.
func TestRepairFinishesPendingWork(t *testing.T) {
	s := newCrashState(t)
	rep, err := s.Repair(false, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Remaining) != 0 {
		t.Fatalf("after repair: %v", kinds(rep.Remaining))
	}
	if after := s.fsck(); len(after.Pending)+len(after.Problems) != 0 {
		t.Fatalf("fsck after repair: %v %v", kinds(after.Problems), kinds(after.Pending))
	}
	if s.exists(s.unrecorded) || s.exists(s.lone) || s.exists(s.orphan) || s.exists(s.replaced) || !s.exists(s.recorded) {
		t.Fatal("repair left an unrecorded file or removed a recorded one")
	}
	if ids, _ := s.Blobs().Interrupted(); len(ids) != 0 {
		t.Fatalf("interrupted uploads after repair: %v", ids)
	}
	s.MustClean()
}

// A lease that expired while nothing swept is the sweeper's work, not
// damage.
func TestFsckExpiredLeaseIsPending(t *testing.T) {
	f := newFixture(t, regtest.Options{})
	lone := f.blob("r", 500)
	f.Clock.Advance(2 * time.Hour)
	rep, err := f.Fsck(false, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{refcount.ProblemLeaseExpired + " r@" + string(lone)}
	if !slices.Equal(kinds(rep.Pending), want) || len(rep.Problems) != 0 {
		t.Fatalf("problems %v, pending %v; want pending %v", kinds(rep.Problems), kinds(rep.Pending), want)
	}
	if _, err := f.Sweep(100); err != nil {
		t.Fatal(err)
	}
	f.MustClean()
}
