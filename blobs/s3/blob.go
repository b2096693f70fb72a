package s3

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

var (
	_ driver.LocatingPromoter = (*Driver)(nil)
	_ driver.LocatingRemover  = (*Driver)(nil)
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
// there (with its size: not one taken from a blob's record), else from
// the index; a remembered object that is gone sends Open
// back to the index.
func (d *Driver) Open(dg digest.Digest) (io.ReadSeekCloser, error) {
	ctx := context.Background()
	if loc, ok := d.locs.get(dg); ok && !loc.recorded {
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

// RemoveLocated is Remove of a blob whose data object PromoteLocated named
// loc: its index, then loc, with no read. An index that names another
// object (a record out of step with the bucket) goes all the same, and
// leaves that object to Strays. A loc that is not a data object of this
// driver is not trusted: the index is read, as by Remove.
func (d *Driver) RemoveLocated(dg digest.Digest, loc string) error {
	if !strings.HasPrefix(loc, d.key("data")+"/") {
		return d.Remove(dg)
	}
	ctx := context.Background()
	d.locs.drop(dg)
	if err := d.del(ctx, d.indexKey(dg)); err != nil {
		return err
	}
	return d.del(ctx, loc)
}

// Promote writes the blob's index naming the upload's data object, unless
// an index of dg exists. Before the index is written, the upload's state
// must name dg, so that after a crash its index, if written, can be found
// and unpromoted (promoting). The state written by the upload's last
// Append already does when dg is the sha256 its checkpoint is of (the
// digest blobs verified, from that same running hash): no state is
// written then. For any other digest the state is marked with dg first.
func (d *Driver) Promote(id string, dg digest.Digest) (bool, error) {
	created, _, err := d.PromoteLocated(id, dg)
	return created, err
}

// PromoteLocated is Promote, and for a blob it created the data object
// that holds its bytes, which the index names.
func (d *Driver) PromoteLocated(id string, dg digest.Digest) (bool, string, error) {
	created, st, err := d.promote(id, dg)
	if err != nil || !created {
		return false, "", err
	}
	return true, st.Object, nil
}

// promote is Promote, with the upload's state it read.
func (d *Driver) promote(id string, dg digest.Digest) (bool, *state, error) {
	ctx := context.Background()
	if err := validID(id); err != nil {
		return false, nil, err
	}
	st, err := d.readState(ctx, id)
	if err != nil {
		return false, nil, err
	}
	if !st.Sealed {
		return false, nil, fmt.Errorf("%w: promote of %q", ErrNotSealed, id)
	}
	// Where conditional writes are honoured, the index's write below is
	// the check; elsewhere it is read first.
	if !d.honoured(ctx) {
		if ok, err := d.exists(ctx, d.indexKey(dg)); err != nil || ok {
			return false, nil, err
		}
	}
	marked := false
	// The state stored is st but for a Seal in place kept in memory
	// (Seal), which changes neither Object, Size nor Checkpoint.
	if st.Promoting != "" || sumDigest(st) != dg {
		st.Promoting = dg
		if err := d.writeState(ctx, id, st); err != nil {
			return false, nil, err
		}
		marked = true
	}
	b, _ := json.Marshal(index{Object: st.Object, Size: st.Size})
	err = d.put(ctx, d.indexKey(dg), b, true)
	if errors.Is(err, errExists) {
		ix, rerr := d.readIndex(ctx, dg)
		if rerr != nil && !errors.Is(rerr, driver.ErrNotFound) {
			return false, nil, rerr
		}
		if rerr == nil && ix.Object == st.Object {
			// This upload's own, from a commit that died after
			// writing it: the blob is this upload's, as if created
			// now. Unless the upload has ended since this request
			// read it (the state, read again past the hold, is
			// gone): another commit of it, sent at once elsewhere,
			// wrote the index and recorded the blob, which is not
			// this one's to take back.
			if _, err := d.getState(ctx, id); errors.Is(err, driver.ErrNotFound) {
				return false, nil, nil
			} else if err != nil {
				return false, nil, err
			}
			d.setCreated(id, dg)
			return true, st, nil
		}
		// Another upload's: nothing of this upload is in the blob.
		if !marked {
			return false, nil, nil
		}
		st.Promoting = ""
		return false, nil, d.writeState(ctx, id, st)
	}
	if err != nil {
		return false, nil, err
	}
	d.setCreated(id, dg)
	return true, st, nil
}

// sumDigest is the digest the upload's bytes have by its checkpoint: the
// sha256 the checkpoint is the state of, if it is one of all st.Size
// bytes; "" otherwise.
func sumDigest(st *state) digest.Digest {
	sum := checkpointSum(st.Checkpoint, st.Size)
	if sum == nil {
		return ""
	}
	return digest.NewDigestFromBytes(digest.SHA256, sum)
}

// promoting is the digest upload id is being promoted to: the state's
// mark, or, unmarked, the digest of its checkpoint if that blob's index
// names the upload's data object (only this upload's Promote writes one
// naming it, and then writes no mark). That costs a read of the index,
// unless this process's hold wrote it.
func (d *Driver) promoting(ctx context.Context, id string, st *state) (digest.Digest, error) {
	if st.Promoting != "" {
		return st.Promoting, nil
	}
	dg := sumDigest(st)
	if dg == "" {
		return "", nil
	}
	if d.created(id, dg) {
		return dg, nil
	}
	ix, err := d.readIndex(ctx, dg)
	if errors.Is(err, driver.ErrNotFound) || errors.Is(err, ErrCorrupt) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if ix.Object != st.Object {
		return "", nil
	}
	return dg, nil
}

// reportedPromoting is promoting, as Upload reports it: also an unmarked
// upload whose bytes are all in its data object (sealed, or one segment
// in place) and whose data object is gone. Only a Remove of the blob its
// Promote created, or a RemoveUpload cut short, deletes that object while
// the state stands, so the upload is dead either way, as one whose commit
// was interrupted: finishing it (Unpromote, which finds no index naming
// it, then RemoveUpload) is what is left to do. An upload whose bytes are
// elsewhere (parts, tail segments) has no data object until Seal.
func (d *Driver) reportedPromoting(ctx context.Context, id string, st *state) (digest.Digest, error) {
	dg, err := d.promoting(ctx, id, st)
	if err != nil || dg != "" || st.Promoting != "" {
		return dg, err
	}
	whole := st.Sealed || (len(st.Parts) == 0 && len(st.Tail) == 1 && st.Tail[0].Key == st.Object)
	if dg = sumDigest(st); dg == "" || !whole {
		return "", nil
	}
	ok, err := d.exists(ctx, st.Object)
	if err != nil || ok {
		return "", err
	}
	return dg, nil
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
