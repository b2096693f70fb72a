package refcount

import (
	"sync"
	"time"

	"github.com/kvreg/kvreg/kv"
)

// pinKey names a pin: an object and the client that was told "exists"
// (api's client: the user, else the remote address).
type pinKey struct {
	kind   kv.LeaseKind
	repo   string
	digest string
	client string
}

// object is the key of the object alone.
func (k pinKey) object() pinKey {
	k.client = ""
	return k
}

// pin is one client's hold on an object, in memory: its answers of
// "exists" and its uploads not yet followed by its manifest, which takes
// the whole pin.
type pin struct {
	until   int64 // Unix ns
	uploads int   // uploads of the object by the client among them
}

// pins are short holds kept in memory, one per object and client, so that
// a HEAD stays a read-only transaction: each answer of "exists" to a
// client adds to that client's pin, and so does each upload the client
// finishes; the client's manifest that then references the object takes
// its pin over (and the upload's pending hold, if the pin counts one). A
// pin matters only if the object's last edge goes while it is live: the
// cascade then turns the live pins into a lease, one pending hold each.
//
// A manifest's transaction marks the pins it takes (mark) as it runs, and
// they are forgotten (take) only after it commits: between the two,
// another write transaction would otherwise see them live and turn them
// into a lease when the object's last edge goes, keeping an object that
// nothing holds. The marks of an attempt that does not commit are undone
// (unmark).
//
// Whether a marked pin still holds the object for another transaction
// depends on the store. Where write transactions run one at a time
// (bbolt), or share one commit (a batch), a mark hides the pin from the
// moment it is made: whatever another attempt decides is committed with
// the taker's transaction or undone with it, and a failed attempt unmarks
// before the others run again. Where they run side by side (PostgreSQL,
// concurrent), hiding it then would let another transaction free the
// object under a taker that is yet to fail and run again, which would
// then find the object gone although its client was told "exists". There
// a marked pin still holds the object for the others until its taker's
// transaction is about to commit (settling), and no longer once it has;
// one that reads a pin whose taker is committing waits for the outcome:
// a COMMIT the database refused unmarks at once (kv.Tx.OnAbort), before
// the taker's rerun backs off. Only an outcome nobody knows (the
// connection lost with the COMMIT sent) is waited for no longer than
// settleWait, and the pin then counts, which at worst keeps the object
// for the pin's window.
type pins struct {
	mu    sync.Mutex
	m     map[pinKey]map[string]pin // object -> client -> pin
	taken map[pinKey]*change        // object and client -> the change taking that pin
	// concurrent: write transactions may run side by side (see above).
	concurrent bool
	// wait bounds settle's wait (settleWait when zero).
	wait time.Duration
}

// markState is how far the transaction of a change that marked pins got.
type markState int

const (
	marking    markState = iota // running
	committing                  // fn done, the commit under way
	committed
	aborted
)

// settleWait bounds how long a transaction waits for the outcome of
// another's commit before it counts that one's marked pins.
const settleWait = 50 * time.Millisecond

// counts reports whether the pin of object o's client c counts for a
// transaction of change by (nil: for nobody in particular); a pin counts
// for the change taking it. own: the question is whether the pin is there
// for by's client to take (client), not whether it holds the object; a
// pin another change is taking is not taken twice.
func (p *pins) counts(o pinKey, c string, by *change, own bool) bool {
	o.client = c
	t, ok := p.taken[o]
	switch {
	case !ok || t == by:
		return true
	case own || !p.concurrent:
		return false
	}
	return t.marks != committed
}

// settle waits (at most settleWait) while a change taking one of the
// object's pins is committing, so that counts sees its outcome.
func (p *pins) settle(k pinKey) {
	if !p.concurrent {
		return
	}
	wait := p.wait
	if wait == 0 {
		wait = settleWait
	}
	deadline := time.Now().Add(wait)
	for {
		p.mu.Lock()
		var outcome chan struct{}
		o := k.object()
		for c := range p.m[o] {
			o.client = c
			if t, ok := p.taken[o]; ok && t.marks == committing {
				outcome = t.settled
				break
			}
		}
		p.mu.Unlock()
		left := time.Until(deadline)
		if outcome == nil || left <= 0 {
			return
		}
		timer := time.NewTimer(left)
		select {
		case <-outcome:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// setMarks moves change c's marks to state st, waking whoever waits for
// their outcome once it is known.
func (p *pins) setMarks(c *change, st markState) {
	if c == nil || len(c.usedPins) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.marks == committed || c.marks == aborted {
		return
	}
	c.marks = st
	if st == committed || st == aborted {
		close(c.settled)
	}
}

// mark records that change c takes k's client's pin.
func (p *pins) mark(k pinKey, c *change) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.taken == nil {
		p.taken = map[pinKey]*change{}
	}
	if c.settled == nil {
		c.settled = make(chan struct{})
	}
	p.taken[k] = c
}

// unmark undoes the marks of change c, whose attempt did not commit.
func (p *pins) unmark(c *change) {
	if c == nil || len(c.usedPins) == 0 {
		return
	}
	p.setMarks(c, aborted)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range c.usedPins {
		if p.taken[k] == c {
			delete(p.taken, k)
		}
	}
}

func (p *pins) update(k pinKey, until int64, upload bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[pinKey]map[string]pin{}
	}
	o := k.object()
	cs := p.m[o]
	if cs == nil {
		cs = map[string]pin{}
		p.m[o] = cs
	}
	v := cs[k.client]
	if upload {
		v.uploads++
	}
	if v.until < until {
		v.until = until
	}
	cs[k.client] = v
}

// add counts an answer of "exists" to k's client.
func (p *pins) add(k pinKey, until int64) { p.update(k, until, false) }

// addUpload counts an upload of the object that k's client finished.
func (p *pins) addUpload(k pinKey, until int64) { p.update(k, until, true) }

// live reports whether a pin of any client, not being taken, holds the
// object at now.
func (p *pins) live(k pinKey, now int64) bool {
	p.settle(k)
	p.mu.Lock()
	defer p.mu.Unlock()
	o := k.object()
	for c, v := range p.m[o] {
		if v.until > now && p.counts(o, c, nil, false) {
			return true
		}
	}
	return false
}

// client returns the live pin of k's client, unless another change is
// taking it.
func (p *pins) client(k pinKey, now int64, by *change) (pin, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[k.object()][k.client]
	return v, ok && v.until > now && p.counts(k.object(), k.client, by, true)
}

// take lets each key's client's manifest take over its pin, once the
// transaction of change by committed (by nil: no transaction marked it).
func (p *pins) take(keys []pinKey, by *change) {
	if len(keys) == 0 {
		return
	}
	p.mu.Lock()
	for _, k := range keys {
		if by != nil && p.taken[k] == by {
			delete(p.taken, k)
		}
		o := k.object()
		if cs := p.m[o]; cs != nil {
			delete(cs, k.client)
			if len(cs) == 0 {
				delete(p.m, o)
			}
		}
	}
	p.mu.Unlock()
}

// drop forgets every client's pin of the object (deleted on purpose, or
// its pins turned into a lease).
func (p *pins) drop(k pinKey) {
	p.mu.Lock()
	delete(p.m, k.object())
	p.mu.Unlock()
}

// peek sums up the live pins of an object: the latest end and how many
// clients hold one. A transaction that turns them into a lease forgets
// them only after commit: a batched transaction may run twice.
func (p *pins) peek(k pinKey, now int64, by *change) (until int64, n int, ok bool) {
	p.settle(k)
	p.mu.Lock()
	defer p.mu.Unlock()
	o := k.object()
	for c, v := range p.m[o] {
		if v.until > now && p.counts(o, c, by, false) {
			until, n = max(until, v.until), n+1
		}
	}
	return until, n, n > 0
}

// expire forgets pins that ended at or before now.
func (p *pins) expire(now int64) {
	p.mu.Lock()
	for o, cs := range p.m {
		for c, v := range cs {
			if v.until <= now {
				delete(cs, c)
			}
		}
		if len(cs) == 0 {
			delete(p.m, o)
		}
	}
	p.mu.Unlock()
}
