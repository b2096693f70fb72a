package blobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/blobs/local"
	blobs3 "github.com/kvreg/kvreg/blobs/s3"
	"github.com/opencontainers/go-digest"
)

// Store is the blobs and the uploads in progress, kept by a driver.
type Store struct {
	drv driver.Driver

	locksMu sync.Mutex
	locks   map[string]*keyLock // see Lock
	shared  func(keys ...string) (unlock func(), err error)

	mu       sync.Mutex
	sessions map[string]*session
	ended    endedUploads

	// keeper is the driver when it keeps its upload states in the
	// registry's database (KeepStatesIn), else nil.
	keeper driver.StateKeeper

	// now and uploadLife date deferred uploads' tokens (SetUploadLife).
	now        func() time.Time
	uploadLife time.Duration // 0: no limit

	// expiring, if set, is called by ExpireUploads with each upload it
	// found idle, before it takes the upload's locks (a test's seam).
	expiring func(id string)
}

// New returns a Store over a driver.
func New(drv driver.Driver) *Store {
	return &Store{drv: drv, sessions: map[string]*session{}, now: time.Now}
}

// SetUploadLife sets how long an upload may stay idle, the age past
// which the token of a deferred upload (driver.Deferrer) that never got
// a record no longer vouches for it, as ExpireUploads would have ended it
// by then; and the clock that dates tokens. Set it before the store is
// used. A life of 0, as before it is set, is no limit, as ExpireUploads
// of the zero time ends nothing.
func (s *Store) SetUploadLife(life time.Duration, now func() time.Time) {
	s.uploadLife = life
	if now != nil {
		s.now = now
	}
}

// Open returns a Store over the blob directory under root.
func Open(root string) (*Store, error) {
	drv, err := local.Open(root)
	if err != nil {
		return nil, fmt.Errorf("blobs: %w", err)
	}
	return New(drv), nil
}

// OpenTarget returns a Store over target: an S3 bucket for an s3:// URL
// (see s3.ParseURL), else the blob directory under target, or under root
// when target is empty.
func OpenTarget(root, target string) (*Store, error) {
	if !blobs3.IsURL(target) {
		if target == "" {
			target = root
		}
		return Open(target)
	}
	cfg, err := blobs3.ParseURL(target)
	if err != nil {
		return nil, err
	}
	drv, err := blobs3.New(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("blobs: %w", err)
	}
	return New(drv), nil
}

// Driver is the storage under the store, for tools and tests that look at
// it directly.
func (s *Store) Driver() driver.Driver { return s.drv }

// KeepStatesIn has a driver that can keep its uploads' states apart from
// its storage (driver.StateKeeper: S3) keep them in states, the registry's
// database, and reports whether it does. Call it before the store is used.
func (s *Store) KeepStatesIn(states driver.States) bool {
	sk, ok := s.drv.(driver.StateKeeper)
	if ok {
		sk.KeepStates(states)
		s.keeper = sk
	}
	return ok
}

// SetSharedLock makes Lock take lock too, after the in-process one, so
// that processes sharing the driver's storage serialise on a digest (and
// on an upload) as well: lock takes the locks of all its keys or none (a
// lock their shared database holds). Set it before the store is used.
func (s *Store) SetSharedLock(lock func(keys ...string) (unlock func(), err error)) {
	s.shared = lock
}

// keyLock is the in-process lock of one key, with the lockKeys that hold
// or wait for it.
type keyLock struct {
	mu sync.Mutex
	n  int
}

// uploadLockKey is the lock key of upload id; a digest's is the digest,
// which never starts so.
func uploadLockKey(id string) string { return "upload/" + id }

// Lock serialises everything that creates or removes the blob of one digest
// with the database record of it: a commit holds it from reading the
// upload to recording the blob, and a removal from checking the record to
// removing. The in-process lock, one per key (a commit may hold it while a
// multipart upload completes), comes first, so that one process asks for
// the shared lock (SetSharedLock) once per key at a time. A shared lock
// that cannot be taken is an error wrapping ErrLockUnavailable and the
// cause. Several digests are locked together, all of them or none (on
// PostgreSQL, in one round trip).
func (s *Store) Lock(ds ...digest.Digest) (unlock func(), err error) {
	keys := make([]string, len(ds))
	for i, d := range ds {
		keys[i] = string(d)
	}
	return s.lockKeys(keys...)
}

// lockKeys takes the locks of keys, in-process then shared, all of them
// (in order, so that two holders of several never wait in a ring).
func (s *Store) lockKeys(keys ...string) (unlock func(), err error) {
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	held := make([]func(), 0, len(keys))
	local := func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i]()
		}
	}
	for _, k := range keys {
		held = append(held, s.lockLocal(k))
	}
	if s.shared == nil {
		return local, nil
	}
	su, err := s.shared(keys...)
	if err != nil {
		local()
		return nil, fmt.Errorf("%w: %s: %w", ErrLockUnavailable, strings.Join(keys, ", "), err)
	}
	return func() {
		su()
		local()
	}, nil
}

// lockLocal takes the in-process lock of key.
func (s *Store) lockLocal(key string) (unlock func()) {
	s.locksMu.Lock()
	if s.locks == nil {
		s.locks = map[string]*keyLock{}
	}
	l := s.locks[key]
	if l == nil {
		l = &keyLock{}
		s.locks[key] = l
	}
	l.n++
	s.locksMu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.locksMu.Lock()
		if l.n--; l.n == 0 {
			delete(s.locks, key)
		}
		s.locksMu.Unlock()
	}
}

// notFound turns the driver's ErrNotFound into ErrNotFound for blob d.
func notFound(err error, d digest.Digest) error {
	if errors.Is(err, driver.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	return err
}

// Open opens a blob for reading. It stays readable if the blob is removed
// while it is open. The local driver's reader is an *os.File.
func (s *Store) Open(d digest.Digest) (io.ReadSeekCloser, error) {
	f, err := s.drv.Open(d)
	if err != nil {
		return nil, notFound(err, d)
	}
	return f, nil
}

// Stat returns a blob's size.
func (s *Store) Stat(d digest.Digest) (int64, error) {
	n, err := s.drv.Stat(d)
	return n, notFound(err, d)
}

// Has reports whether a blob's bytes are stored.
func (s *Store) Has(d digest.Digest) (bool, error) {
	_, err := s.Stat(d)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Remove deletes a blob. The caller holds Lock(d) and has checked that no
// record names the digest. A missing blob is not an error.
func (s *Store) Remove(d digest.Digest) error { return s.drv.Remove(d) }

// RemoveAt is Remove of bytes the driver named loc when their upload was
// promoted (driver.LocatingPromoter); a driver that names bytes by digest
// alone, or loc "", has Remove find them.
func (s *Store) RemoveAt(d digest.Digest, loc string) error {
	if lr, ok := s.drv.(driver.LocatingRemover); ok && loc != "" {
		return lr.RemoveLocated(d, loc)
	}
	return s.drv.Remove(d)
}

// SyncDirs makes removals durable, on drivers where they need it.
func (s *Store) SyncDirs() error {
	if sy, ok := s.drv.(driver.Syncer); ok {
		return sy.Sync()
	}
	return nil
}

// Walk calls fn for every blob stored. An object whose name is not a valid
// digest is reported with d == "" and the driver's name for it.
func (s *Store) Walk(fn func(d digest.Digest, name string, size int64) error) error {
	return s.drv.Walk(fn)
}

// Blobs lists the digests of the blobs stored.
func (s *Store) Blobs() ([]digest.Digest, error) {
	var out []digest.Digest
	err := s.drv.Walk(func(d digest.Digest, _ string, _ int64) error {
		if d != "" {
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// Verify rehashes a blob and reports whether its bytes match its digest.
func (s *Store) Verify(d digest.Digest) (bool, error) {
	f, err := s.Open(d)
	if err != nil {
		return false, err
	}
	defer f.Close()
	v := d.Algorithm().Digester()
	if _, err := io.Copy(v.Hash(), f); err != nil {
		return false, err
	}
	return v.Digest() == d, nil
}
