package s3

import (
	"encoding/json"
	"sync"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

var _ driver.Holder = (*Driver)(nil)

// holds are the uploads held (driver.Holder): the state object of each as
// last read or written by this process, so that one request reads it once.
type holds struct {
	mu sync.Mutex
	m  map[string]*hold
}

type hold struct {
	n     int    // Holds not yet released
	state []byte // the state's JSON; nil until read or written
	// stored: the state's JSON as storage holds it, as last read or
	// written (state differs after a Seal kept in memory); nil: unknown.
	stored []byte
	// fresh: state is what Vouch made, not yet written; the first
	// write is made only if no state object exists.
	fresh bool
	// vouched: the state a read that finds no state object takes
	// instead (Vouch).
	vouched []byte
	// created is the digest whose index this hold's Promote wrote,
	// naming the upload's data object, and no Unpromote removed since.
	created digest.Digest
	// stateGone: the caller removed the state from the database with the
	// record of the upload's blob (StateRemoved).
	stateGone bool
}

// Hold keeps upload id's state in memory until release: readState then
// answers from the copy this process read or wrote last. The caller
// holds the upload, so nothing else writes the state meanwhile.
func (d *Driver) Hold(id string) (release func()) {
	d.holds.mu.Lock()
	defer d.holds.mu.Unlock()
	if d.holds.m == nil {
		d.holds.m = map[string]*hold{}
	}
	h := d.holds.m[id]
	if h == nil {
		h = &hold{}
		d.holds.m[id] = h
	}
	h.n++
	var once sync.Once
	return func() {
		once.Do(func() {
			d.holds.mu.Lock()
			defer d.holds.mu.Unlock()
			if h.n--; h.n == 0 && d.holds.m[id] == h {
				delete(d.holds.m, id)
			}
		})
	}
}

// held calls fn with upload id's hold, if it is held, and reports whether
// it is.
func (d *Driver) held(id string, fn func(h *hold)) bool {
	d.holds.mu.Lock()
	defer d.holds.mu.Unlock()
	h := d.holds.m[id]
	if h != nil {
		fn(h)
	}
	return h != nil
}

// heldState is the held copy of upload id's state, or nil.
func (d *Driver) heldState(id string) *state {
	var b, stored []byte
	d.held(id, func(h *hold) { b, stored = h.state, h.stored })
	if b == nil {
		return nil
	}
	st := new(state)
	if json.Unmarshal(b, st) != nil {
		return nil
	}
	st.stored = stored
	return st
}

// keepState makes b the held copy of upload id's state, as storage holds
// it (nil: unknown, to be read again), if it is held, and reports whether
// it is.
func (d *Driver) keepState(id string, b []byte) bool {
	return d.held(id, func(h *hold) { h.state, h.stored, h.fresh = b, b, false })
}

// keepFresh is keepState of a state Vouch made, which no write stored.
func (d *Driver) keepFresh(id string, b []byte) bool {
	return d.held(id, func(h *hold) { h.state, h.stored, h.fresh = b, nil, true })
}

// keepUnwritten makes b the held copy of upload id's state where no write
// stored it (a Seal that moves nothing): storage holds what it did.
func (d *Driver) keepUnwritten(id string, b []byte) bool {
	return d.held(id, func(h *hold) { h.state = b })
}

// heldFresh reports whether upload id's held state is one Vouch made.
func (d *Driver) heldFresh(id string) bool {
	fresh := false
	d.held(id, func(h *hold) { fresh = h.fresh })
	return fresh
}

// created reports whether this hold's Promote wrote dg's index, naming
// upload id's data object.
func (d *Driver) created(id string, dg digest.Digest) bool {
	ok := false
	d.held(id, func(h *hold) { ok = h.created != "" && h.created == dg })
	return ok
}

func (d *Driver) setCreated(id string, dg digest.Digest) {
	d.held(id, func(h *hold) { h.created = dg })
}
