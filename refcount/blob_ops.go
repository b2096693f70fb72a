package refcount

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/kv"
	"github.com/opencontainers/go-digest"
)

// linkVisible: a link is visible while a manifest uses it or its lease or a
// pin is live. An expired one that no sweep has reached yet is not.
func (r *Registry) linkVisible(tx *kv.Tx, l kv.Link, repo, d string, now int64) (bool, error) {
	if l.Refs > 0 || leaseLive(l.Lease, now) {
		return true, nil
	}
	return r.pinLive(tx, pinKey{kind: kv.LeaseLink, repo: repo, digest: d}, now)
}

// StatBlob returns the size of a blob visible in repo. With pin, an answer
// of "exists" pins the link for the pin window (a HEAD before a push) on
// behalf of client, whose manifest then takes that pin over: see headPin.
// Without pin, client is not used.
func (r *Registry) StatBlob(repo string, d digest.Digest, pin bool, client string) (int64, error) {
	var b kv.Blob
	var pinned int64 // the end of the link's pin row (Shared), 0 if none
	now := r.now()
	k := pinKey{kind: kv.LeaseLink, repo: repo, digest: string(d), client: client}
	err := r.db.View(func(tx *kv.Tx) error {
		var err error
		b, pinned, err = r.statBlobTx(tx, k, now, pin)
		return err
	})
	if err != nil || !pin {
		return b.Size, err
	}
	return b.Size, r.headPin(k, now, pinned)
}

// BlobStat is what a read of a visible blob learns of its record.
type BlobStat struct {
	Size int64
	// Created names the record's incarnation (Unix ns of the commit that
	// made it; 0: unknown, a record older than the field): while it stays
	// the same, the blob's bytes stay where they were stored.
	Created int64
	// Location is where the blob store keeps this incarnation's bytes, as
	// recorded at its commit ("": not known).
	Location string
}

// StatBlobRecord is StatBlob without a pin, answering the record's
// incarnation and location as well, so that the blob store may presign
// without a request (see blobs.Store.PresignGet).
func (r *Registry) StatBlobRecord(repo string, d digest.Digest) (BlobStat, error) {
	var b kv.Blob
	now := r.now()
	k := pinKey{kind: kv.LeaseLink, repo: repo, digest: string(d)}
	err := r.db.View(func(tx *kv.Tx) error {
		var err error
		b, _, err = r.statBlobTx(tx, k, now, false)
		return err
	})
	return BlobStat{Size: b.Size, Created: b.Created, Location: b.Location}, err
}

// statBlobTx reads the record of a visible blob and, for a HEAD (pin) when
// pins are rows, the end of its link's pin row of k.client.
func (r *Registry) statBlobTx(tx *kv.Tx, k pinKey, now int64, pin bool) (rec kv.Blob, pinned int64, err error) {
	// Everything it may read, in one batch: as a View's first read, the
	// whole View is one round trip on PostgreSQL.
	// A pin row is read first of all by a HEAD, of its own client; a blob
	// that a manifest or a lease keeps visible needs no other.
	pf := tx.Prefetch().Link(k.repo, k.digest).Blob(k.digest)
	if r.opts.Shared && pin {
		pf.Pin(k.kind, k.repo, k.digest, k.client)
	}
	if err := pf.Read(); err != nil {
		return kv.Blob{}, 0, err
	}
	l, ok, err := tx.Link(k.repo, k.digest)
	if err == nil && ok {
		ok, err = r.linkVisible(tx, l, k.repo, k.digest, now)
	}
	if err != nil {
		return kv.Blob{}, 0, err
	}
	if !ok {
		return kv.Blob{}, 0, ErrBlobUnknown
	}
	b, ok, err := tx.Blob(k.digest)
	if err != nil {
		return kv.Blob{}, 0, err
	}
	if !ok {
		return kv.Blob{}, 0, ErrBlobUnknown
	}
	if pin {
		if pinned, err = r.headPinEnd(tx, k); err != nil {
			return kv.Blob{}, 0, err
		}
	}
	return b, pinned, nil
}

// OpenBlob opens a blob visible in repo. The open file stays readable even
// if the blob is deleted while it is served.
// The reader of the directory store is an *os.File, so that copying it to
// a connection uses sendfile.
func (r *Registry) OpenBlob(repo string, d digest.Digest) (io.ReadSeekCloser, int64, error) {
	size, err := r.StatBlob(repo, d, false, "")
	if err != nil {
		return nil, 0, err
	}
	f, err := r.blobs.Open(d)
	if errors.Is(err, blobs.ErrNotFound) {
		return nil, 0, ErrBlobUnknown
	}
	return f, size, err
}

// StartUpload opens an upload session in repo.
func (r *Registry) StartUpload(repo string) (string, error) {
	return r.blobs.NewUpload(repo)
}

// CommitUpload finishes an upload as blob d and links it in repo under a
// lease. size, if not negative, is the size the client announced.
func (r *Registry) CommitUpload(repo, id string, d digest.Digest, size int64) (int64, error) {
	return r.CommitUploadFor(repo, id, d, size, "")
}

// CommitUploadFor is CommitUpload for a client (api's client: the user,
// else the address), whose pin counts the upload: its manifest then takes
// the upload's pending hold, and another client's does not (see
// takePinTx). An empty client counts none.
func (r *Registry) CommitUploadFor(repo, id string, d digest.Digest, size int64, client string) (int64, error) {
	var c *change
	n, err := r.blobs.Commit(repo, id, d, size, func(size int64, loc, state string) error {
		if r.recordHook != nil {
			r.recordHook(d)
		}
		var err error
		c, err = r.updateTx(func(tx *kv.Tx, c *change) error {
			c.pinClient = client
			if state != "" {
				// The upload ends with the record of its blob.
				if err := tx.DeleteUploadState(state); err != nil {
					return err
				}
			}
			return r.linkBlobTx(tx, c, repo, string(d), size, loc)
		})
		if errors.Is(err, kv.ErrCommitUnknown) {
			// Recorded or not, the blob store must keep its bytes
			// until a sweep (or the client's retry) knows which.
			return fmt.Errorf("%w: %w", blobs.ErrRecordUnknown, err)
		}
		if errors.Is(err, kv.ErrConflict) || errors.Is(err, kv.ErrUnavailable) {
			// The blob store undoes the blob it promoted only once it
			// is unrecorded for good: not while another record of it
			// may still commit (an earlier attempt's, whose answer was
			// lost, which this one may have waited behind until it
			// gave up) or has. A refusal of the record itself (a full
			// disk, say) is no such case.
			if recorded, ferr := r.recordedOrFenced(d); ferr != nil || recorded {
				return fmt.Errorf("%w: %w", blobs.ErrRecordUnknown, err)
			}
		}
		return err
	})
	// Files freed by the sweep in that transaction go after the digest
	// lock is released.
	if ferr := r.finish(c); err == nil {
		err = ferr
	}
	return n, err
}

// PutBlob stores a whole blob in one call (monolithic upload).
func (r *Registry) PutBlob(repo string, d digest.Digest, body io.Reader, size, max int64) (int64, error) {
	return r.PutBlobFor(repo, d, body, size, max, "")
}

// PutBlobFor is PutBlob for a client, as CommitUploadFor.
func (r *Registry) PutBlobFor(repo string, d digest.Digest, body io.Reader, size, max int64, client string) (int64, error) {
	id, err := r.blobs.NewUpload(repo)
	if err != nil {
		return 0, err
	}
	if _, err := r.blobs.Append(repo, id, 0, body, max); err != nil {
		r.blobs.Cancel(repo, id)
		return 0, err
	}
	return r.CommitUploadFor(repo, id, d, size, client)
}

// Mount links a blob into repo from repository from, or, when from is empty,
// from wherever it is stored. It reports whether it mounted. Every
// repository may serve as the source; MountIf restricts them.
func (r *Registry) Mount(repo, from string, d digest.Digest) (bool, error) {
	return r.MountIf(repo, from, d, nil)
}

// MountIf is Mount with a say on the source: allowed (nil: every
// repository) decides which repositories the blob may be mounted from. The
// source must be allowed and its link visible; a mount without from needs
// one such repository among those that link the blob. A refused mount
// answers false, exactly as for a blob that is not there, so that the
// answer tells nothing about repositories the caller may not read.
func (r *Registry) MountIf(repo, from string, d digest.Digest, allowed func(repo string) bool) (bool, error) {
	mounted := false
	_, err := r.update(func(tx *kv.Tx, c *change) error {
		// The closure may run again (a shared commit that failed, a
		// serialization failure on PostgreSQL): only the run that commits
		// says whether it mounted.
		mounted = false
		usable := func(src string) (bool, error) {
			if allowed != nil && !allowed(src) {
				return false, nil
			}
			l, ok, err := tx.Link(src, string(d))
			if err != nil || !ok {
				return false, err
			}
			return r.linkVisible(tx, l, src, string(d), c.now)
		}
		found := false
		if from != "" {
			ok, err := usable(from)
			if err != nil {
				return err
			}
			found = ok
		} else {
			srcs, err := tx.LinkingRepos(string(d))
			if err != nil {
				return err
			}
			for _, src := range srcs {
				ok, err := usable(src)
				if err != nil {
					return err
				}
				if ok {
					found = true
					break
				}
			}
		}
		if !found {
			return nil
		}
		err := r.linkBlobTx(tx, c, repo, string(d), -1, "")
		if errors.Is(err, ErrBlobUnknown) {
			return nil
		}
		mounted = err == nil
		return err
	})
	// The mount's hold is in the database already: no pin on top of it,
	// or the manifest that takes the hold over would leave the pin behind.
	return mounted, err
}

// DeleteBlob removes repo's link to a blob (and the blob, if that was its
// last link). It refuses while a manifest of repo references the blob.
func (r *Registry) DeleteBlob(repo string, d digest.Digest) (int64, error) {
	c, err := r.update(func(tx *kv.Tx, c *change) error {
		l, ok, err := tx.Link(repo, string(d))
		if err != nil {
			return err
		}
		if !ok {
			return ErrBlobUnknown
		}
		if l.Refs > 0 {
			return fmt.Errorf("%w: blob %s is referenced by %d manifest(s) of %s; delete them first", ErrInUse, d, l.Refs, repo)
		}
		if err := r.dropPinTx(tx, c, pinKey{kind: kv.LeaseLink, repo: repo, digest: string(d)}); err != nil {
			return err
		}
		return r.deleteLinkTx(tx, c, repo, string(d), l)
	})
	if err != nil {
		return 0, err
	}
	return c.Reclaimed, nil
}

// AppendUpload adds a chunk to an upload (start < 0: wherever it ends).
func (r *Registry) AppendUpload(repo, id string, start int64, body io.Reader, max int64) (int64, error) {
	return r.blobs.Append(repo, id, start, body, max)
}

// AppendUploadExact adds a chunk that must be exactly length bytes.
func (r *Registry) AppendUploadExact(repo, id string, start, length int64, body io.Reader, max int64) (int64, error) {
	return r.blobs.AppendExact(repo, id, start, length, body, max)
}

// UploadSize is how many bytes an upload has received.
func (r *Registry) UploadSize(repo, id string) (int64, error) { return r.blobs.UploadSize(repo, id) }

// ExpireUploads ends the uploads idle for longer than maxAge (0: none).
func (r *Registry) ExpireUploads(maxAge time.Duration) (int, error) {
	if maxAge <= 0 {
		return 0, nil
	}
	return r.blobs.ExpireUploads(r.opts.Now().Add(-maxAge))
}

// UploadsInProgress counts the upload sessions.
func (r *Registry) UploadsInProgress() (int, error) {
	ids, err := r.blobs.Uploads()
	return len(ids), err
}

// CancelUpload ends an upload and drops its bytes.
func (r *Registry) CancelUpload(repo, id string) error { return r.blobs.Cancel(repo, id) }
