package refcount

import "github.com/kvreg/kvreg/kv"

// Pins live in one of two places. With one process (bbolt has one writer;
// a PostgreSQL database that this process holds alone), they stay in
// memory (pins): a HEAD stays a read, and commitMu orders it after the
// writes already running. With several processes sharing the database
// (Options.Shared), a HEAD on one and a delete on another never see each
// other's memory, so a pin is a row of the database: written by a HEAD
// that answers "exists" only when no row of that key lives for half the
// window more, so that most HEADs stay reads; read by the cascade in its
// own transaction. On PostgreSQL both are SERIALIZABLE, so a HEAD's write
// (which reads the link) and a delete's read of the pin (which removes the
// link) are ordered by the database: whichever commits, the other saw it
// or is rerun.
//
// A row is one client's: the client (api's clientKey: the user, else the
// remote address) that was told "exists", so that a row stands for at least
// one push in flight of that client, however many HEADs it answered (most
// did not write). A cascade turns the live rows of an object into a lease
// ending at the latest of them, with one pending hold per row. A manifest
// that references the object deletes its own client's row (takePinTx), as
// it takes one pin over in memory, and leaves the rows of other clients,
// whose pushes are still in flight: a complete push leaves nothing behind,
// so that deleting the image right after its push still frees its layers
// at once. Letting the rows expire would save the manifest a point read
// per referenced object, but would keep the layers of every image deleted
// within the window after its push for up to the window. Two pushes of
// one client (the same user, or anonymous from the same address) still
// share one row: the first one's manifest ends it.

// pinLive reports whether a pin, of any client, holds the object at now.
func (r *Registry) pinLive(tx *kv.Tx, k pinKey, now int64) (bool, error) {
	if !r.opts.Shared {
		return r.pins.live(k, now), nil
	}
	ps, err := tx.Pins(k.kind, k.repo, k.digest)
	for _, p := range ps {
		if p.Until > now {
			return true, err
		}
	}
	return false, err
}

// headPinEnd is the end of the pin row of k's client (Shared), as a HEAD
// reads it to decide whether to write one; 0 if none.
func (r *Registry) headPinEnd(tx *kv.Tx, k pinKey) (int64, error) {
	if !r.opts.Shared {
		return 0, nil
	}
	p, ok, err := tx.Pin(k.kind, k.repo, k.digest, k.client)
	if err != nil || !ok {
		return 0, err
	}
	return p.Until, nil
}

// headPin pins a blob that a HEAD of k.client found visible at now; pinned
// is the end of that client's pin row as that read saw it (Shared), 0 if
// none.
func (r *Registry) headPin(k pinKey, now, pinned int64) error {
	window := int64(r.opts.PinWindow)
	if r.opts.Shared {
		if pinned-now >= window/2 {
			// A committed row that lives long enough: every delete
			// that commits from now on reads it.
			return nil
		}
		wrote := false
		_, err := r.update(func(tx *kv.Tx, c *change) error {
			wrote = false
			// Look again in the write: a delete committed since the
			// read made the link go, and then the answer is "unknown".
			_, pinned, err := r.statBlobTx(tx, k, c.now, true)
			if err != nil || pinned-c.now >= window/2 {
				return err // another HEAD of the client pinned it meanwhile
			}
			wrote = true
			// An upload's mark stays: the client's manifest takes
			// that upload's hold too.
			old, _, err := tx.Pin(k.kind, k.repo, k.digest, k.client)
			if err != nil {
				return err
			}
			return tx.PutPin(kv.Pin{Kind: k.kind, Repo: k.repo, Digest: k.digest, Client: k.client, Until: c.now + window, Upload: old.Upload})
		})
		if err == nil && wrote {
			r.pinWrites.Add(1)
		}
		return err
	}
	// The answer read a snapshot; a delete may have decided without the
	// pin meanwhile. Pin, let every write that began before the pin
	// finish, and look again: from now on writes see the pin.
	r.pins.add(k, now+window)
	r.commitMu.Lock()
	r.commitMu.Unlock()
	var still bool
	err := r.db.View(func(tx *kv.Tx) error {
		var err error
		_, still, err = tx.Link(k.repo, k.digest)
		return err
	})
	if err != nil || !still {
		r.pins.take([]pinKey{k}, nil)
		if err == nil {
			err = ErrBlobUnknown
		}
		return err
	}
	return nil
}

// convertPinTx, for an object whose last edge goes, reports the live pins
// that now become its lease: the end of the latest, and one pending hold
// per live row (per answer of "exists" in memory). Rows are deleted, live
// or expired (the lease takes over, or they hold nothing); a pin in memory
// is forgotten after commit.
func (r *Registry) convertPinTx(tx *kv.Tx, c *change, k pinKey) (until int64, pending uint64, ok bool, err error) {
	if !r.opts.Shared {
		until, n, ok := r.pins.peek(k, c.now, c)
		if !ok {
			return 0, 0, false, nil
		}
		c.droppedPins = append(c.droppedPins, k)
		return until, uint64(n), true, nil
	}
	ps, err := tx.Pins(k.kind, k.repo, k.digest)
	if err != nil || len(ps) == 0 {
		return 0, 0, false, err
	}
	if err := tx.DeletePins(ps); err != nil {
		return 0, 0, false, err
	}
	for _, p := range ps {
		if p.Until > c.now {
			pending++
			until = max(until, p.Until)
		}
	}
	return until, pending, pending > 0, nil
}

// takePinTx: a manifest that references the object takes over its own
// client's pin (k.client), in memory or its row. hold reports whether it
// takes a pending hold as well: when that pin counts an upload of the
// client's (which left the hold), or when the client has no pin (a hold of
// unknown origin: an upload older than the pin window, a mount). A client
// told "exists" for an object that another client uploaded and has not
// referenced yet takes its pin only, and leaves that upload's hold to the
// uploader's manifest: taking it would let a deletion of the first
// client's image free the object under the uploader's push.
func (r *Registry) takePinTx(tx *kv.Tx, c *change, k pinKey) (hold bool, err error) {
	if !r.opts.Shared {
		p, ok := r.pins.client(k, c.now, c)
		if !ok {
			return true, nil
		}
		r.pins.mark(k, c)
		c.usedPins = append(c.usedPins, k)
		return p.uploads > 0, nil
	}
	p, ok, err := tx.Pin(k.kind, k.repo, k.digest, k.client)
	if err != nil || !ok {
		return true, err
	}
	if err := tx.DeletePin(k.kind, k.repo, k.digest, k.client); err != nil {
		return false, err
	}
	return p.Upload || p.Until <= c.now, nil
}

// uploadPinTx: k's client finished an upload of the object, which left a
// pending hold; its pin says so (a row marked as an upload's, or a count in
// memory after commit) until the pin window ends, so that the client's
// manifest takes that hold and another client's does not.
func (r *Registry) uploadPinTx(tx *kv.Tx, c *change, k pinKey) error {
	until := c.now + int64(r.opts.PinWindow)
	if !r.opts.Shared {
		c.uploadPins = append(c.uploadPins, k)
		return nil
	}
	p, ok, err := tx.Pin(k.kind, k.repo, k.digest, k.client)
	if err != nil {
		return err
	}
	if ok && p.Until > until {
		until = p.Until
	}
	return tx.PutPin(kv.Pin{Kind: k.kind, Repo: k.repo, Digest: k.digest, Client: k.client, Until: until, Upload: true})
}

// dropPinTx forgets every pin of the object, whoever holds it: the object
// is deleted on purpose.
func (r *Registry) dropPinTx(tx *kv.Tx, c *change, k pinKey) error {
	if !r.opts.Shared {
		c.droppedPins = append(c.droppedPins, k)
		return nil
	}
	ps, err := tx.Pins(k.kind, k.repo, k.digest)
	if err != nil {
		return err
	}
	return tx.DeletePins(ps)
}

// expirePins forgets up to max pins that have ended. Rows are read first in
// a read transaction, so that a sweep with nothing to do writes nothing.
func (r *Registry) expirePins(max int) error {
	if !r.opts.Shared {
		r.pins.expire(r.now())
		return nil
	}
	var n int
	if err := r.db.View(func(tx *kv.Tx) error {
		ps, err := tx.ExpiredPins(r.now(), 1)
		n = len(ps)
		return err
	}); err != nil || n == 0 {
		return err
	}
	_, err := r.update(func(tx *kv.Tx, c *change) error {
		ps, err := tx.ExpiredPins(c.now, max)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if err := tx.EndPin(p); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}
