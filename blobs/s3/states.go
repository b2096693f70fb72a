package s3

import (
	"context"
	"errors"

	"github.com/kvreg/kvreg/blobs/driver"
)

var _ driver.StateKeeper = (*Driver)(nil)

// KeepStates makes the driver keep its uploads' states in states (the
// registry's database) rather than as objects under uploads/: a state's
// write is then a statement rather than a PUT, its read and its removal at
// the commit likewise, and the sweeps find uploads in the database rather
// than in a listing of the bucket. Call it before the driver is used.
// States written as objects before are no longer read: those uploads are
// unknown, and their objects are strays (Strays).
func (d *Driver) KeepStates(states driver.States) { d.states = states }

// StateRemoved marks upload id's held state as removed by the caller,
// with the transaction that recorded the upload's blob: RemoveUpload of
// it under this hold then deletes what the state names and not the state.
func (d *Driver) StateRemoved(id string) {
	d.held(id, func(h *hold) { h.stateGone = true })
}

// getState reads upload id's state as stored: driver.ErrNotFound if it has
// none.
func (d *Driver) getState(ctx context.Context, id string) ([]byte, error) {
	if d.states != nil {
		return d.states.GetState(id)
	}
	return d.getSmall(ctx, d.stateKey(id))
}

// putState writes upload id's state: with prev nil, only if it has none
// (errExists); otherwise, with states in the database, only if the state
// stored is prev (driver.ErrStale), and as objects over whatever is there.
func (d *Driver) putState(ctx context.Context, id string, b, prev []byte) error {
	if d.states == nil {
		return d.put(ctx, d.stateKey(id), b, prev == nil)
	}
	err := d.states.PutState(id, b, prev)
	if errors.Is(err, driver.ErrExists) {
		return errExists
	}
	return err
}

// delState removes upload id's state; none is success. One the caller
// removed already (StateRemoved) costs nothing.
func (d *Driver) delState(ctx context.Context, id string) error {
	if d.states != nil {
		gone := false
		d.held(id, func(h *hold) { gone = h.stateGone })
		if gone {
			return nil
		}
		return d.states.DeleteState(id)
	}
	return d.del(ctx, d.stateKey(id))
}

// eachState calls fn with every upload's state, read after the listing
// of the objects under uploads/ (under: the ids found there, which are
// where states are when the driver keeps them as objects): as readState
// reads it, so the copy this process holds if it holds the upload, and
// nil for a state that does not parse. An upload whose state went since
// the listing is left out.
func (d *Driver) eachState(ctx context.Context, under []string, fn func(id string, st *state) error) error {
	if d.states != nil {
		return d.states.EachState(func(id string, b []byte) error {
			st := d.heldState(id)
			if st == nil {
				st, _ = parseState(id, b)
			}
			return fn(id, st)
		})
	}
	for _, id := range under {
		st, err := d.readState(ctx, id)
		switch {
		case errors.Is(err, driver.ErrNotFound):
			continue
		case errors.Is(err, ErrCorrupt):
			st = nil
		case err != nil:
			return err
		}
		if err := fn(id, st); err != nil {
			return err
		}
	}
	return nil
}
