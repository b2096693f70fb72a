package refcount

import (
	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/kv"
	"github.com/opencontainers/go-digest"
)

// What the external tests need of the write path below the public calls:
// a transaction whose after-commit work they run themselves, to stage the
// interleavings of a crash or a race.

// Change is what a write transaction did that must be acted on after it
// commits.
type Change = change

// UpdateTx runs fn in a write transaction as every write does; the caller
// finishes the change (or leaves it unfinished, as a crash would).
func (r *Registry) UpdateTx(fn func(tx *kv.Tx, c *Change) error) (*Change, error) {
	return r.updateTx(fn)
}

// Finish acts on a committed change: used pins forgotten, the files of
// freed blobs removed.
func (r *Registry) Finish(c *Change) error { return r.finish(c) }

// LinkBlobTx records d in repo as a finished upload does: a link under a
// lease.
func (r *Registry) LinkBlobTx(tx *kv.Tx, c *Change, repo, d string, size int64) error {
	return r.linkBlobTx(tx, c, repo, d, size, "")
}

// DeleteLinkTx removes the link l of repo to d as a delete does, and the
// blob record with it if it was the last.
func (r *Registry) DeleteLinkTx(tx *kv.Tx, c *Change, repo, d string, l kv.Link) error {
	return r.deleteLinkTx(tx, c, repo, d, l)
}

// StatBlobRead is the read of a HEAD (StatBlob with pin) before it pins:
// the blob's size, the end of its link's pin row (Shared; 0 if none) and
// the time it read at. HeadPin is the rest of that HEAD. Apart, they let a
// test put another process's write between the answer and the pin.
func (r *Registry) StatBlobRead(repo string, d digest.Digest) (size, pinned, now int64, err error) {
	now = r.now()
	err = r.db.View(func(tx *kv.Tx) error {
		b, p, err := r.statBlobTx(tx, pinKey{kind: kv.LeaseLink, repo: repo, digest: string(d)}, now, true)
		size, pinned = b.Size, p
		return err
	})
	return size, pinned, now, err
}

// HeadPin pins what StatBlobRead answered "exists" for.
func (r *Registry) HeadPin(repo string, d digest.Digest, pinned, now int64) error {
	return r.headPin(pinKey{kind: kv.LeaseLink, repo: repo, digest: string(d)}, now, pinned)
}

// PinWrites counts the pin rows this registry wrote: HEADs that were
// write transactions.
func (r *Registry) PinWrites() uint64 { return r.pinWrites.Load() }

// UploadStates is the blob store's upload states in db, as New gives them
// to a driver that keeps them apart (blobs.Store.KeepStatesIn).
func UploadStates(db *kv.DB) driver.States { return uploadStates{db} }
