package refcount_test

import (
	"slices"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
)

// fsck reports a push time without its tag and a tag without its push
// time; repair deletes the one and gives the other its manifest's Created.
func TestFsckTagPushed(t *testing.T) {
	f := newFixture(t, regtest.Options{})
	f.Clock.Advance(time.Hour)
	created := f.Clock.Now().UnixNano()
	f.image("p/a", "v1")
	f.Clock.Advance(time.Hour)
	f.update(func(tx *kv.Tx) error {
		if err := tx.DeleteTagPushed("p/a", "v1"); err != nil {
			return err
		}
		return tx.SetTagPushed("p/a", "gone", 5)
	})
	got := kinds(f.Problems())
	want := []string{refcount.ProblemTagPushed + " p/a:gone", refcount.ProblemTagPushed + " p/a:v1"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("fsck found %v, want %v", got, want)
	}
	if _, err := f.Repair(false, false); err != nil {
		t.Fatal(err)
	}
	f.MustClean()
	err := f.DB().View(func(tx *kv.Tx) error {
		if p, ok, err := tx.TagPushed("p/a", "v1"); err != nil || !ok || p != created {
			t.Errorf("v1 pushed %d %v %v, want its manifest's Created %d", p, ok, err, created)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
