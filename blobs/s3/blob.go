package s3

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

// index is a blob's index object: which data object holds its bytes.
type index struct {
	Object string `json:"object"`
	Size   int64  `json:"size"`
}

func (d *Driver) indexKey(dg digest.Digest) string {
	return d.key("blobs", string(dg.Algorithm()), dg.Encoded())
}

func (d *Driver) readIndex(ctx context.Context, dg digest.Digest) (index, error) {
	var ix index
	b, err := d.getSmall(ctx, d.indexKey(dg))
	if err != nil {
		return ix, err
	}
	if err := json.Unmarshal(b, &ix); err != nil || ix.Object == "" {
		return ix, fmt.Errorf("%w: index of %s: %q", ErrCorrupt, dg, b)
	}
	return ix, nil
}

// Stat reads the blob's index.
func (d *Driver) Stat(dg digest.Digest) (int64, error) {
	ix, err := d.readIndex(context.Background(), dg)
	if err != nil {
		return 0, err
	}
	return ix.Size, nil
}

// Open returns a reader of the data object the index names, which streams
// with Range requests. Its first request is made now, so a blob removed
// after Open stays readable to the end where the server keeps an object's
// bytes for a response already started (a Read at another offset after
// the removal fails).
//
// The data object's name comes from the locations remembered when it is
// there, else from the index; a remembered object that is gone sends Open
// back to the index.
func (d *Driver) Open(dg digest.Digest) (io.ReadSeekCloser, error) {
	ctx := context.Background()
	if loc, ok := d.locs.get(dg); ok {
		ix := loc.ix
		r := &reader{d: d, key: ix.Object, size: ix.Size}
		if ix.Size == 0 {
			return r, nil
		}
		err := r.open(ctx)
		if err == nil {
			return r, nil
		}
		d.locs.drop(dg)
		if !errors.Is(err, driver.ErrNotFound) {
			return nil, err
		}
	}
	ix, err := d.readIndex(ctx, dg)
	if err != nil {
		return nil, err
	}
	r := &reader{d: d, key: ix.Object, size: ix.Size}
	if ix.Size > 0 {
		if err := r.open(ctx); err != nil {
			if errors.Is(err, driver.ErrNotFound) {
				return nil, fmt.Errorf("%w: %s: data object %s is gone", driver.ErrNotFound, dg, ix.Object)
			}
			return nil, err
		}
	}
	d.locs.put(dg, location{ix: ix})
	return r, nil
}

// Remove deletes the index, then the data object: a crash in between
// leaves an orphan object (which fsck lists), never an index naming
// nothing.
func (d *Driver) Remove(dg digest.Digest) error {
	ctx := context.Background()
	ix, err := d.readIndex(ctx, dg)
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	d.locs.drop(dg)
	if err := d.del(ctx, d.indexKey(dg)); err != nil {
		return err
	}
	return d.del(ctx, ix.Object)
}

// Promote writes the blob's index naming the upload's data object, unless
// an index of dg exists. The upload is marked as promoting first, so that
// after a crash its index, if written, can be found and unpromoted.
func (d *Driver) Promote(id string, dg digest.Digest) (bool, error) {
	ctx := context.Background()
	if err := validID(id); err != nil {
		return false, err
	}
	st, err := d.readState(ctx, id)
	if err != nil {
		return false, err
	}
	if !st.Sealed {
		return false, fmt.Errorf("%w: promote of %q", ErrNotSealed, id)
	}
	// Where conditional writes are honoured, the index's write below is
	// the check; elsewhere it is read first.
	if !d.honoured(ctx) {
		if ok, err := d.exists(ctx, d.indexKey(dg)); err != nil || ok {
			return false, err
		}
	}
	st.Promoting = dg
	if err := d.writeState(ctx, id, st); err != nil {
		return false, err
	}
	b, _ := json.Marshal(index{Object: st.Object, Size: st.Size})
	err = d.put(ctx, d.indexKey(dg), b, true)
	if errors.Is(err, errExists) {
		// Another process promoted dg in between: nothing of this upload
		// is in the blob.
		st.Promoting = ""
		return false, d.writeState(ctx, id, st)
	}
	if err != nil {
		return false, err
	}
	d.setCreated(id, dg)
	return true, nil
}

// Unpromote removes dg's index if it names upload id's data object.
func (d *Driver) Unpromote(id string, dg digest.Digest) error {
	if ok, err := d.Promoted(id, dg); err != nil || !ok {
		return err
	}
	d.locs.drop(dg)
	d.setCreated(id, "")
	return d.del(context.Background(), d.indexKey(dg))
}

// Promoted reports whether dg's index names upload id's data object (see
// driver.PromoteTeller).
func (d *Driver) Promoted(id string, dg digest.Digest) (bool, error) {
	ctx := context.Background()
	if err := validID(id); err != nil {
		return false, err
	}
	st, err := d.readState(ctx, id)
	if errors.Is(err, driver.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ix, err := d.readIndex(ctx, dg)
	if errors.Is(err, driver.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return ix.Object == st.Object, nil
}
