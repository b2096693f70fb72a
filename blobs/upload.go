package blobs

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

// session is the in-memory state of an upload: the running sha256 of its
// bytes. It is rebuilt from the driver after a restart.
type session struct {
	mu     sync.Mutex
	repo   string
	hasher hash.Hash // sha256 of the upload's first size bytes
	size   int64
	gone   bool
	// removed: RemoveUpload succeeded, so a second drop sends nothing.
	removed bool
	// release ends the driver's hold of the upload (driver.Holder),
	// taken with mu for the length of one request.
	release func()
}

// lock locks a session and, on a driver that can, holds the upload for
// as long: the driver then reads the upload's record once per request.
// With a deferred upload's token (see NewUpload), a session with no bytes
// has the driver's hold take the token's word for the upload (vouch);
// trust: the request writes the upload's first bytes.
func (s *Store) lock(id, token string, sess *session, trust bool) {
	sess.mu.Lock()
	if h, ok := s.drv.(driver.Holder); ok {
		sess.release = h.Hold(id)
		if sess.size == 0 && !sess.gone {
			s.vouch(id, sess.repo, token, trust)
		}
	}
}

// vouch reports whether token vouches for upload id of repo as a deferred
// upload (driver.Deferrer) that this process has not seen end, started
// within the upload life (SetUploadLife), and if so
// has the driver, which holds the upload, take it as started and empty
// where it finds no record of it, or, with trust, at once: for a write of
// the upload's first bytes (a client sends the token only until it has
// sent some, UploadRef).
func (s *Store) vouch(id, repo, token string, trust bool) bool {
	df, ok := s.drv.(driver.Deferrer)
	if !ok || token == "" || s.ended.has(id) {
		return false
	}
	var notBefore time.Time // no limit
	if s.uploadLife > 0 {
		notBefore = s.now().Add(-s.uploadLife)
	}
	return df.Vouch(id, repo, token, notBefore, trust)
}

// unlock ends what lock began.
func (sess *session) unlock() {
	if sess.release != nil {
		sess.release()
		sess.release = nil
	}
	sess.mu.Unlock()
}

func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// NewUpload starts an upload session for a repository and returns its
// reference, which names it in the other calls: its id, or, on a driver
// that defers uploads (driver.Deferrer), its id, a dot and the token that
// stands for the record not stored yet. A client must name the upload by
// the reference it was given last (UploadRef): the one with the token
// while the upload has no bytes.
func (s *Store) NewUpload(repo string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	ref := id
	if df, ok := s.drv.(driver.Deferrer); ok {
		if token, err := df.DeferUpload(id, repo, s.now()); err == nil {
			ref = id + "." + token
		}
	}
	if ref == id {
		if err := s.drv.CreateUpload(id, repo); err != nil {
			return "", err
		}
	}
	s.adopt(id, &session{repo: repo, hasher: sha256.New()})
	return ref, nil
}

// splitRef is an upload reference's id and token ("" for none).
func splitRef(ref string) (id, token string) {
	id, token, _ = strings.Cut(ref, ".")
	return id, token
}

// UploadRef is the reference that names an upload of size bytes in the
// requests that follow one that named it by ref: ref itself while the
// upload has no bytes (a deferred upload's token stands for its record),
// its id once it has some (its record is stored).
func UploadRef(ref string, size int64) string {
	if size > 0 {
		id, _ := splitRef(ref)
		return id
	}
	return ref
}

// session finds (or, after a restart or when another replica started the
// upload, rebuilds) an upload's state. release is to be called once the
// caller holds the session (lock): an upload this process had not seen is
// read under a hold of its own, so that the reads that follow (its
// checkpoint, its removal) use what this one read. vouched: the token
// made the session, and the hold reads the upload as fresh already.
func (s *Store) session(repo, id, token string, trust bool) (sess *session, release func(), vouched bool, err error) {
	release = func() {}
	if !validUploadID(id) {
		return nil, release, false, fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	s.mu.Lock()
	sess = s.sessions[id]
	s.mu.Unlock()
	if sess == nil {
		h, held := s.drv.(driver.Holder)
		if held {
			release = h.Hold(id)
		}
		// A deferred upload this process has not seen: the token
		// stands for its record, for the write of its first bytes
		// with no request, or where a read finds none.
		vouched = held && s.vouch(id, repo, token, trust)
		if vouched && trust {
			sess = s.adopt(id, &session{repo: repo, hasher: sha256.New()})
		} else {
			info, err := s.drv.Upload(id)
			if errors.Is(err, driver.ErrUnavailable) {
				// Storage that does not answer is an error of its own
				// (503), not an unknown upload (404).
				release()
				return nil, func() {}, false, err
			}
			if err == nil {
				sess = s.adopt(id, &session{repo: info.Repo})
			}
		}
	}
	if sess == nil || sess.repo != repo {
		release()
		return nil, func() {}, false, fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	return sess, release, vouched, nil
}

// adopt keeps sess as upload id's, unless the upload has a session
// already, which it returns instead.
func (s *Store) adopt(id string, sess *session) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if have := s.sessions[id]; have != nil {
		return have
	}
	s.sessions[id] = sess
	return sess
}

// lockSession locks a live session, rebuilding its hash if needed. fresh
// reports that the session was just read from the driver.
func (s *Store) lockSession(repo, id, token string, trust bool) (sess *session, fresh bool, err error) {
	sess, release, vouched, err := s.session(repo, id, token, trust)
	if err != nil {
		return nil, false, err
	}
	// A session the token just vouched for is not vouched for again.
	if vouched {
		token = ""
	}
	s.lock(id, token, sess, trust)
	release()
	if sess.gone {
		sess.unlock()
		return nil, false, fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	if sess.hasher == nil {
		if err := s.rebuild(id, sess); err != nil {
			sess.unlock()
			return nil, false, err
		}
		return sess, true, nil
	}
	return sess, false, nil
}

// rebuild reads an upload's hash and size from the driver: from its
// checkpoint, or else from its bytes.
func (s *Store) rebuild(id string, sess *session) error {
	if ok, err := s.resume(id, sess); err != nil {
		return err
	} else if ok {
		return nil
	}
	rc, err := s.drv.ReadUpload(id)
	if errors.Is(err, driver.ErrUnavailable) {
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	h := sha256.New()
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil {
		return err
	}
	sess.hasher, sess.size = h, n
	return nil
}

// lockCurrent is lockSession for an answer that must be the driver's: with
// a driver that keeps checkpoints (S3, whose bucket other kvreg processes
// may share), another process may have appended to the upload since this
// one last did, so the session is checked against the driver's size (one
// read of the upload's state) and rebuilt from the checkpoint if it is
// behind. A client sends an upload's chunks one after the other, so a
// session of the driver's size holds the driver's bytes.
func (s *Store) lockCurrent(repo, id, token string) (*session, error) {
	sess, fresh, err := s.lockSession(repo, id, token, false)
	if err != nil || fresh {
		return sess, err
	}
	cpr, ok := s.drv.(driver.Checkpointer)
	if !ok {
		return sess, nil
	}
	_, size, err := cpr.Checkpoint(id)
	if err == nil && size == sess.size {
		return sess, nil
	}
	if errors.Is(err, driver.ErrNotFound) {
		err = fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	if err == nil {
		err = s.refresh(id, sess)
	}
	if err != nil {
		s.forgetIfGone(id, sess, err)
		sess.unlock()
		return nil, err
	}
	return sess, nil
}

// refresh rebuilds a locked session that another process moved on.
func (s *Store) refresh(id string, sess *session) error {
	hasher, size := sess.hasher, sess.size
	sess.hasher = nil
	if err := s.rebuild(id, sess); err != nil {
		sess.hasher, sess.size = hasher, size
		return err
	}
	return nil
}

// forgetIfGone drops a locked session whose upload another process ended
// (committed or cancelled), so that it does not stay in memory.
func (s *Store) forgetIfGone(id string, sess *session, err error) {
	if errors.Is(err, ErrUploadUnknown) || errors.Is(err, driver.ErrNotFound) {
		s.ended.add(id)
		s.forgetLocked(id, sess)
	}
}

// resume rebuilds a session's hash from the checkpoint a driver keeps with
// the upload's bytes, if it keeps one: a driver that cannot read an upload
// back before Seal (S3) resumes only so.
func (s *Store) resume(id string, sess *session) (bool, error) {
	cpr, ok := s.drv.(driver.Checkpointer)
	if !ok {
		return false, nil
	}
	cp, size, err := cpr.Checkpoint(id)
	if errors.Is(err, driver.ErrNotFound) {
		return false, fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	if err != nil {
		return false, err
	}
	if cp == nil {
		if size != 0 {
			return false, nil
		}
		// Nothing received: the hash of no bytes.
		sess.hasher, sess.size = sha256.New(), 0
		return true, nil
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(cp); err != nil {
		// Not a checkpoint of ours: read the bytes back if the driver can.
		return false, nil
	}
	sess.hasher, sess.size = h, size
	return true, nil
}

// UploadSize is the number of bytes an upload has received.
func (s *Store) UploadSize(repo, ref string) (int64, error) {
	id, token := splitRef(ref)
	sess, err := s.lockCurrent(repo, id, token)
	if err != nil {
		return 0, err
	}
	defer sess.unlock()
	return sess.size, nil
}

// Append adds r's bytes to an upload. start, if not negative, is where the
// chunk claims to begin; it must equal the bytes received so far. max, if
// positive, bounds the upload's total size. A failed append leaves the upload
// as it was before it. It returns the new size.
func (s *Store) Append(repo, id string, start int64, r io.Reader, max int64) (int64, error) {
	return s.AppendExact(repo, id, start, -1, r, max)
}

// AppendExact is Append for a chunk that must be exactly length bytes
// (length < 0: whatever r holds); a chunk of another length is refused
// whole with ErrSizeInvalid. A disk that fills up ends the upload: its
// bytes are removed and ErrNoSpace returned.
func (s *Store) AppendExact(repo, ref string, start, length int64, r io.Reader, max int64) (int64, error) {
	id, token := splitRef(ref)
	// A write at the upload's start may take the token's word that the
	// upload has no bytes; one further on reads where it stands.
	sess, fresh, err := s.lockSession(repo, id, token, start <= 0)
	if err != nil {
		return 0, err
	}
	defer sess.unlock()
	if start >= 0 && start != sess.size && !fresh {
		// Another process may have received the chunks in between.
		if err := s.moved(id, sess); err != nil {
			return 0, err
		}
	}
	if start >= 0 && start != sess.size {
		return sess.size, fmt.Errorf("%w: chunk starts at %d, upload has %d bytes", ErrRangeInvalid, start, sess.size)
	}
	n, err := s.appendLocked(id, sess, r, length, max)
	if errors.Is(err, driver.ErrSize) && !fresh {
		// The driver refused before reading r: another process
		// appended since this one last did. Catch up and try again
		// (no request more when the session was current).
		if err := s.moved(id, sess); err != nil {
			return 0, err
		}
		if start >= 0 && start != sess.size {
			return sess.size, fmt.Errorf("%w: chunk starts at %d, upload has %d bytes", ErrRangeInvalid, start, sess.size)
		}
		n, err = s.appendLocked(id, sess, r, length, max)
	}
	if errors.Is(err, driver.ErrSize) {
		// Still moving: two requests append to the upload at once.
		return n, fmt.Errorf("%w: another request appended to upload %q at the same time", ErrRangeInvalid, id)
	}
	return n, err
}

// moved rebuilds a locked session from the driver, dropping it if the
// upload is gone.
func (s *Store) moved(id string, sess *session) error {
	if _, ok := s.drv.(driver.Checkpointer); !ok {
		return nil
	}
	err := s.refresh(id, sess)
	if err != nil {
		s.forgetIfGone(id, sess, err)
	}
	return err
}

// appendLocked appends to a locked session.
func (s *Store) appendLocked(id string, sess *session, r io.Reader, length, max int64) (int64, error) {
	saved, _ := sess.hasher.(encoding.BinaryMarshaler).MarshalBinary()
	// The chunk's bounds are checked while it is read, and only there: a
	// driver fails an append whose reader fails (driver.Driver.Append).
	src := &chunkReader{r: r, length: length, room: -1, max: max}
	if max > 0 {
		src.room = max - sess.size
	}
	n, err := s.append(id, sess, io.TeeReader(src, sess.hasher))
	if errors.Is(err, driver.ErrSize) && n == 0 {
		sess.hasher = restore(saved)
		return sess.size, err
	}
	if errors.Is(err, driver.ErrNotFound) {
		sess.hasher = restore(saved)
		s.forgetIfGone(id, sess, err)
		return 0, fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	if errors.Is(err, driver.ErrNoSpace) {
		s.dropLocked(id, sess)
		return 0, fmt.Errorf("%w: the upload is discarded: %v", ErrNoSpace, err)
	}
	if errors.Is(err, driver.ErrStale) {
		// A chunk sent again to the upload's first URL, after the upload
		// got bytes: it did not land, and the upload is as it was.
		sess.hasher = restore(saved)
		if merr := s.moved(id, sess); merr != nil {
			return 0, merr
		}
		return sess.size, fmt.Errorf("%w: the upload has %d bytes, which this request did not count", ErrRangeInvalid, sess.size)
	}
	if err != nil {
		// Roll back to the state before this chunk.
		if terr := s.drv.Truncate(id, sess.size); terr != nil {
			err = errors.Join(err, terr)
		}
		sess.hasher = restore(saved)
		return sess.size, err
	}
	sess.size += n
	return sess.size, nil
}

// chunkReader reads a chunk and refuses it, as a read error, once it is
// longer than length or than room, or ends short of length: the driver
// then fails the append before it records it (a driver records an
// append last), so that a refused chunk is never, even for a moment, part
// of the upload as another process sharing the store could read and
// commit it. length, room: < 0 for no bound; max names the upload's bound
// in the refusal.
type chunkReader struct {
	r                 io.Reader
	n                 int64
	length, room, max int64
	err               error
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	switch {
	case c.room >= 0 && c.n > c.room:
		c.err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.max)
	case c.length >= 0 && c.n > c.length:
		c.err = fmt.Errorf("%w: the chunk has more bytes than its range says (%d)", ErrSizeInvalid, c.length)
	case err == io.EOF && c.length >= 0 && c.n != c.length:
		c.err = fmt.Errorf("%w: the chunk has %d bytes, its range says %d", ErrSizeInvalid, c.n, c.length)
	}
	if c.err != nil {
		return 0, c.err
	}
	return n, err
}

// append hands r to the driver, with the hash of the bytes it will hold as
// their checkpoint when the driver keeps one.
func (s *Store) append(id string, sess *session, r io.Reader) (int64, error) {
	cpr, ok := s.drv.(driver.Checkpointer)
	if !ok {
		return s.drv.Append(id, sess.size, r)
	}
	return cpr.AppendCheckpoint(id, sess.size, r, func() []byte {
		b, _ := sess.hasher.(encoding.BinaryMarshaler).MarshalBinary()
		return b
	})
}

// restore rebuilds a sha256 from its marshalled state.
func restore(saved []byte) hash.Hash {
	h := sha256.New()
	h.(encoding.BinaryUnmarshaler).UnmarshalBinary(saved)
	return h
}

// Cancel ends an upload and removes its bytes. It holds the upload's lock
// while it does, as a commit of the upload holds it (with the digest's)
// from reading the upload to recording the blob: otherwise a cancel (or
// expiry) through one process could take away the bytes that a commit
// through another has read the upload for and is promoting, whatever
// their digest (a chunk may have been appended through a third process in
// between).
func (s *Store) Cancel(repo, ref string) error {
	id, token := splitRef(ref)
	unlock, err := s.lockKeys(uploadLockKey(id))
	if err != nil {
		return err
	}
	defer unlock()
	// As it is now: another process may have ended it.
	sess, err := s.lockCurrent(repo, id, token)
	if err != nil {
		return err
	}
	defer sess.unlock()
	if sess.gone {
		return fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	s.dropLocked(id, sess)
	return nil
}

// forgetLocked drops a locked session and leaves its upload as it is,
// for the next request to read again.
func (s *Store) forgetLocked(id string, sess *session) {
	sess.gone = true
	s.mu.Lock()
	if s.sessions[id] == sess {
		delete(s.sessions, id)
	}
	s.mu.Unlock()
}

// errNotIdle: an upload a sweep found idle received bytes (or began a
// commit) before the sweep took its lock.
var errNotIdle = errors.New("blobs: the upload is no longer idle")

// expire is Cancel of an upload that is still idle since before, as read
// again under its locks: a chunk that this process (or another, before
// the locks) took since the sweep listed the upload keeps it.
func (s *Store) expire(repo, id string, before time.Time) error {
	unlock, err := s.lockKeys(uploadLockKey(id))
	if err != nil {
		return err
	}
	defer unlock()
	sess, err := s.lockCurrent(repo, id, "")
	if err != nil {
		return err
	}
	defer sess.unlock()
	if sess.gone {
		return fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	info, err := s.drv.Upload(id)
	if err != nil {
		return err
	}
	if !info.Modified.Before(before) || info.Promoting != "" {
		return errNotIdle
	}
	s.dropLocked(id, sess)
	return nil
}

func (s *Store) dropLocked(id string, sess *session) {
	s.ended.add(id)
	if !sess.removed && s.drv.RemoveUpload(id) == nil {
		sess.removed = true
	}
	s.forgetLocked(id, sess)
}

// Commit finishes an upload as blob want. The bytes are made durable and
// verified, promoted to the blob of want (unless a blob of that digest is
// already there), durably; then record is called, under the digest's lock,
// to make the blob known, with the blob's size and, when Commit created
// the blob and the driver names where it keeps the bytes
// (driver.LocatingPromoter), that location ("" otherwise), for PresignGet.
// If record fails, a blob Commit created is removed, unless the error is
// ErrRecordUnknown. When the driver
// keeps its upload states in the database (KeepStatesIn), record gets the
// upload's id there (state; "" otherwise) and removes that state in the
// transaction that records the blob: the commit then writes the database
// once. The upload is gone
// afterwards, whatever the outcome, except when the digest is invalid or
// its lock cannot be taken (the upload then stays, for the commit to be
// sent again), or the record's error is ErrRecordUnknown (it stays
// promoted, for a sweep or the commit sent again to settle). size, if not negative, must equal the upload's size.
func (s *Store) Commit(repo, ref string, want digest.Digest, size int64, record func(size int64, loc, state string) error) (int64, error) {
	id, token := splitRef(ref)
	// The digest's lock and the upload's come before the upload is
	// read: a commit of this upload sent at once through another
	// process (a client that retries a slow PUT) then ended it before
	// this one reads it, and this one finds it gone; read first, this
	// one could promote the upload again from what it was before the
	// other ended it, after the blob the other recorded was freed and
	// its bytes removed. The upload's keeps a cancel out (Cancel).
	unlock, err := s.lockKeys(string(want), uploadLockKey(id))
	if err != nil {
		return 0, err
	}
	defer unlock()
	sess, err := s.lockCurrent(repo, id, token)
	if err != nil {
		return 0, err
	}
	// Deferred calls run last first: the upload goes before the lock
	// does, so that whoever takes the lock next never sees a commit in
	// the middle (but for a record that may have been stored: the
	// upload then stays as promoted, for a sweep or a retry to settle).
	defer sess.unlock()
	var unsettled bool
	defer func() {
		if unsettled {
			s.forgetLocked(id, sess)
		} else {
			s.dropLocked(id, sess)
		}
	}()

	if size >= 0 && size != sess.size {
		return 0, fmt.Errorf("%w: announced %d bytes, received %d", ErrSizeInvalid, size, sess.size)
	}
	if err := s.drv.Seal(id); errors.Is(err, driver.ErrStale) {
		return 0, fmt.Errorf("%w: the upload got bytes while it was committed", ErrRangeInvalid)
	} else if err != nil {
		return 0, err
	}
	var got digest.Digest
	if want.Algorithm() == digest.SHA256 {
		got = digest.NewDigest(digest.SHA256, sess.hasher)
	} else {
		rc, err := s.drv.ReadUpload(id)
		if err != nil {
			return 0, err
		}
		got, err = want.Algorithm().FromReader(rc)
		rc.Close()
		if err != nil {
			return 0, err
		}
	}
	if got != want {
		return 0, fmt.Errorf("%w: expected %s, content is %s", ErrDigestMismatch, want, got)
	}

	if err := s.promoteAndRecord(id, want, sess.size, record); err != nil {
		unsettled = errors.Is(err, ErrRecordUnknown)
		return 0, err
	}
	return sess.size, nil
}

// promoteAndRecord makes a verified upload the blob of want (unless one is
// there already) and records it; the caller holds the lock.
func (s *Store) promoteAndRecord(id string, want digest.Digest, size int64, record func(int64, string, string) error) error {
	var created bool
	var loc string
	var err error
	if lp, ok := s.drv.(driver.LocatingPromoter); ok {
		created, loc, err = lp.PromoteLocated(id, want)
	} else {
		created, err = s.drv.Promote(id, want)
	}
	if err != nil {
		return err
	}
	state := ""
	if s.keeper != nil {
		state = id
	}
	if err := record(size, loc, state); err != nil {
		if errors.Is(err, ErrRecordUnknown) {
			// Undone, a blob that was recorded would lose its bytes.
			return err
		}
		if created {
			if uerr := s.drv.Unpromote(id, want); uerr != nil {
				err = errors.Join(err, uerr)
			}
		}
		return err
	}
	if s.keeper != nil {
		s.keeper.StateRemoved(id)
	}
	return nil
}

// Recover runs at startup, before any request of this process. An upload
// that was being committed when a process died (promoting to its digest)
// either made it into the database (recorded reports true) or did not, in
// which case the blob it promoted is removed. Either way the upload is
// removed: its client never got an answer. Other uploads stay, to be
// resumed; whatever the driver holds that is not an upload kvreg would
// create goes.
func (s *Store) Recover(recorded func(digest.Digest) (bool, error)) (removed int, err error) {
	ids, err := s.drv.Uploads()
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		if !validUploadID(id) {
			s.drv.RemoveUpload(id)
		}
	}
	return s.FinishInterrupted(time.Time{}, recorded)
}

// FinishInterrupted finishes, as Recover does, the commits that stopped
// between promoting and recording and whose upload state was last written
// before before (zero: all of them). A commit in progress, in this
// process or in another that shares the lock (SetSharedLock), is not
// one: it holds the digest's lock and the upload's from before its
// promotion to after its upload is removed, so an upload still promoting
// once those locks are taken is one whose committer died. It returns how many it finished.
//
// An upload whose record the driver's listing shows written since before
// is not read at all (driver.WrittenLister): a sweep over uploads in
// flight costs one listing.
func (s *Store) FinishInterrupted(before time.Time, recorded func(digest.Digest) (bool, error)) (finished int, err error) {
	ups, err := s.uploadsWritten()
	if err != nil {
		return 0, err
	}
	for id, info := range s.idleUploads(ups, before) {
		if info.Promoting == "" {
			continue
		}
		ok, err := s.finishInterrupted(id, info.Promoting, recorded)
		if err != nil {
			return finished, err
		}
		if ok {
			finished++
		}
	}
	return finished, s.SyncDirs()
}

func (s *Store) finishInterrupted(id string, d digest.Digest, recorded func(digest.Digest) (bool, error)) (bool, error) {
	unlock, err := s.lockKeys(string(d), uploadLockKey(id))
	if err != nil {
		return false, err
	}
	defer unlock()
	info, err := s.drv.Upload(id)
	if errors.Is(err, driver.ErrNotFound) || (err == nil && info.Promoting != d) {
		return false, nil // its commit ended while this waited for the lock
	}
	if err != nil {
		return false, err
	}
	ok, err := recorded(d)
	if err != nil {
		return false, err
	}
	if !ok {
		if err := s.drv.Unpromote(id, d); err != nil {
			return false, err
		}
	}
	return true, s.drv.RemoveUpload(id)
}

// Uploads lists the ids of uploads in progress.
func (s *Store) Uploads() ([]string, error) { return s.drv.Uploads() }

// CancelRepo ends every upload of a repository.
func (s *Store) CancelRepo(repo string) {
	ids, _ := s.Uploads()
	for _, id := range ids {
		if info, err := s.drv.Upload(id); err == nil && info.Repo == repo {
			s.Cancel(repo, id)
		}
	}
}

// ExpireUploads ends the uploads that have received nothing since before,
// as each reads under its locks (a chunk taken since the listing keeps
// it). Uploads caught in a commit are FinishInterrupted's, not touched. It returns how
// many went. As FinishInterrupted, it reads no upload the driver's listing
// shows written since before.
func (s *Store) ExpireUploads(before time.Time) (int, error) {
	s.mu.Lock()
	cached := make([]string, 0, len(s.sessions))
	for id := range s.sessions {
		cached = append(cached, id)
	}
	s.mu.Unlock()
	ups, err := s.uploadsWritten()
	if err != nil {
		return 0, err
	}
	ids := make([]string, len(ups))
	for i, u := range ups {
		ids[i] = u.ID
	}
	s.forgetEnded(cached, ids)
	n := 0
	if before.IsZero() {
		return 0, nil // nothing has been idle since before the zero time
	}
	for id, info := range s.idleUploads(ups, before) {
		if info.Promoting != "" {
			continue
		}
		if s.expiring != nil {
			s.expiring(id)
		}
		if s.expire(info.Repo, id, before) == nil {
			n++
		}
	}
	return n, nil
}

// forgetEnded drops the sessions, cached before live was listed, of
// uploads that live no longer holds: another process sharing the store
// committed or cancelled them. A session dropped while in use is only
// rebuilt from the driver by its next request.
func (s *Store) forgetEnded(cached, live []string) {
	alive := make(map[string]bool, len(live))
	for _, id := range live {
		alive[id] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range cached {
		if !alive[id] {
			delete(s.sessions, id)
		}
	}
}

// Interrupted lists uploads that were being committed when a process died
// (promoting to a digest), by id, with that digest; Recover finishes them.
func (s *Store) Interrupted() (map[string]digest.Digest, error) {
	ids, err := s.drv.Uploads()
	if err != nil {
		return nil, err
	}
	out := map[string]digest.Digest{}
	for _, id := range ids {
		if info, err := s.drv.Upload(id); err == nil && info.Promoting != "" {
			out[id] = info.Promoting
		}
	}
	return out, nil
}

// Promoted reports whether the blob of d is the one interrupted upload id
// promoted, which Recover removes unless the database records it. A
// driver that cannot tell answers false: the blob is then nobody's work.
func (s *Store) Promoted(id string, d digest.Digest) (bool, error) {
	pt, ok := s.drv.(driver.PromoteTeller)
	if !ok {
		return false, nil
	}
	return pt.Promoted(id, d)
}
