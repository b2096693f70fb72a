package refcount

import (
	"testing"

	"github.com/kvreg/kvreg/kv"
)

// A pin a manifest's transaction takes counts for nobody else from the
// moment it is marked, before the transaction commits and finish forgets
// it; an attempt that does not commit gives it back.
func TestMarkedPinCountsOnlyForItsTaker(t *testing.T) {
	var p pins
	k := pinKey{kind: kv.LeaseLink, repo: "r", digest: "sha256:x", client: "10.0.0.1"}
	p.addUpload(k, 100)
	taker, other := &change{}, &change{}
	p.mark(k, taker)
	if _, _, ok := p.peek(k, 0, other); ok {
		t.Fatal("another transaction sees a pin being taken")
	}
	if p.live(k, 0) {
		t.Fatal("a pin being taken is live")
	}
	if _, ok := p.client(k, 0, other); ok {
		t.Fatal("another manifest of the client finds the pin being taken")
	}
	if v, ok := p.client(k, 0, taker); !ok || v.uploads != 1 {
		t.Fatalf("the taker's own read: %+v %v", v, ok)
	}
	p.unmark(taker) // only the keys the change lists are unmarked
	if _, _, ok := p.peek(k, 0, other); ok {
		t.Fatal("unmark of a change that lists nothing took the mark away")
	}
	taker.usedPins = []pinKey{k}
	p.unmark(taker)
	if _, n, ok := p.peek(k, 0, other); !ok || n != 1 {
		t.Fatal("the pin of an attempt that did not commit does not count again")
	}
	p.mark(k, taker)
	p.take(taker.usedPins, taker)
	if _, _, ok := p.peek(k, 0, nil); ok || len(p.taken) != 0 {
		t.Fatalf("after the taker committed: pins %v, marks %v", p.m, p.taken)
	}
}
