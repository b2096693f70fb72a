package refcount

import (
	"testing"
	"time"

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

// Where writers run side by side, a pin being taken still holds the
// object for the others until its taker commits: a taker that fails and
// runs again must find the object it was told exists. A reader that meets
// a taker in the middle of its commit waits for the outcome, and counts
// the pin if none comes in time.
func TestMarkedPinOnConcurrentStore(t *testing.T) {
	k := pinKey{kind: kv.LeaseLink, repo: "r", digest: "sha256:x", client: "10.0.0.1"}
	p := pins{concurrent: true, wait: time.Minute}
	p.addUpload(k, 100)
	taker, other := &change{usedPins: []pinKey{k}}, &change{}
	p.mark(k, taker)
	if _, n, ok := p.peek(k, 0, other); !ok || n != 1 {
		t.Fatal("a pin whose taker has not committed no longer holds the object for another transaction")
	}
	if !p.live(k, 0) {
		t.Fatal("a pin whose taker has not committed is not live")
	}
	if _, ok := p.client(k, 0, other); ok {
		t.Fatal("another manifest of the client finds the pin being taken")
	}
	if v, ok := p.client(k, 0, taker); !ok || v.uploads != 1 {
		t.Fatalf("the taker's own read: %+v %v", v, ok)
	}

	// The taker commits while another transaction reads: the reader waits
	// for the outcome and then does not count the pin.
	p.setMarks(taker, committing)
	got := make(chan bool)
	go func() { _, _, ok := p.peek(k, 0, other); got <- ok }()
	p.setMarks(taker, committed)
	if <-got {
		t.Fatal("a pin whose taker committed still counts")
	}

	// A taker that fails: its pin counts again.
	failed := &change{usedPins: []pinKey{k}}
	p.mark(k, failed)
	p.setMarks(failed, committing)
	go func() { _, _, ok := p.peek(k, 0, other); got <- ok }()
	p.unmark(failed)
	if !<-got {
		t.Fatal("the pin of a taker whose commit failed does not count again")
	}

	// No outcome in time: the pin counts, which can only keep the object.
	p.wait = time.Millisecond
	slow := &change{usedPins: []pinKey{k}}
	p.mark(k, slow)
	p.setMarks(slow, committing)
	if _, _, ok := p.peek(k, 0, other); !ok {
		t.Fatal("a pin whose taker's commit has no outcome yet does not count")
	}
}
