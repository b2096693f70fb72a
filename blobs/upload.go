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
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
)

// An upload in progress is a directory uploads/<id>/ holding:
//
//	repo            the repository it was started in
//	data            the bytes received so far
//	<alg>-<hex>     data, renamed once verified: the digest it is being
//	                committed as (recovery uses the name)
const (
	fileRepo = "repo"
	fileData = "data"
)

// copyBufs are the buffers uploads are copied through: large, so that a
// big layer costs few system calls.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// session is the in-memory state of an upload: the running sha256 of data.
// It is rebuilt from the file after a restart.
type session struct {
	mu     sync.Mutex
	repo   string
	hasher hash.Hash // sha256 of data[:size]
	size   int64
	gone   bool
}

func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

func (s *Store) uploadPath(id string, name string) string {
	return filepath.Join(s.uploadDir, id, name)
}

// NewUpload starts an upload session for a repository.
func (s *Store) NewUpload(repo string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	dir := filepath.Join(s.uploadDir, id)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, fileRepo), []byte(repo), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	f, err := os.OpenFile(filepath.Join(dir, fileData), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	f.Close()
	s.mu.Lock()
	s.sessions[id] = &session{repo: repo, hasher: sha256.New()}
	s.mu.Unlock()
	return id, nil
}

// session finds (or, after a restart, rebuilds) an upload's state.
func (s *Store) session(repo, id string) (*session, error) {
	if !validUploadID(id) {
		return nil, fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	s.mu.Lock()
	sess := s.sessions[id]
	if sess == nil {
		if r, ok := s.uploadRepo(id); ok {
			sess = &session{repo: r}
			s.sessions[id] = sess
		}
	}
	s.mu.Unlock()
	if sess == nil || sess.repo != repo {
		return nil, fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	return sess, nil
}

// lockSession locks a live session, rebuilding its hash if needed.
func (s *Store) lockSession(repo, id string) (*session, error) {
	sess, err := s.session(repo, id)
	if err != nil {
		return nil, err
	}
	sess.mu.Lock()
	if sess.gone {
		sess.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	if sess.hasher == nil {
		f, err := os.Open(s.uploadPath(id, fileData))
		if err != nil {
			sess.mu.Unlock()
			return nil, fmt.Errorf("%w: %q", ErrUploadUnknown, id)
		}
		h := sha256.New()
		n, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			sess.mu.Unlock()
			return nil, err
		}
		sess.hasher, sess.size = h, n
	}
	return sess, nil
}

// UploadSize is the number of bytes an upload has received.
func (s *Store) UploadSize(repo, id string) (int64, error) {
	sess, err := s.lockSession(repo, id)
	if err != nil {
		return 0, err
	}
	defer sess.mu.Unlock()
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
func (s *Store) AppendExact(repo, id string, start, length int64, r io.Reader, max int64) (int64, error) {
	sess, err := s.lockSession(repo, id)
	if err != nil {
		return 0, err
	}
	defer sess.mu.Unlock()
	if start >= 0 && start != sess.size {
		return sess.size, fmt.Errorf("%w: chunk starts at %d, upload has %d bytes", ErrRangeInvalid, start, sess.size)
	}
	f, err := os.OpenFile(s.uploadPath(id, fileData), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	defer f.Close()
	saved, _ := sess.hasher.(encoding.BinaryMarshaler).MarshalBinary()
	src := r
	if max > 0 {
		src = io.LimitReader(src, max-sess.size+1)
	}
	if length >= 0 {
		src = io.LimitReader(src, length+1)
	}
	buf := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(io.MultiWriter(&writebackWriter{f: f, off: sess.size}, sess.hasher), src, *buf)
	copyBufs.Put(buf)
	if err == nil && max > 0 && sess.size+n > max {
		err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	if err == nil && length >= 0 && n != length {
		err = fmt.Errorf("%w: the chunk has %d bytes, its range says %d", ErrSizeInvalid, n, length)
	}
	if noSpace(err) {
		s.dropLocked(id, sess)
		return 0, fmt.Errorf("%w: the upload is discarded: %v", ErrNoSpace, err)
	}
	if err != nil {
		// Roll back to the state before this chunk.
		if terr := f.Truncate(sess.size); terr != nil {
			err = errors.Join(err, terr)
		}
		h := sha256.New()
		h.(encoding.BinaryUnmarshaler).UnmarshalBinary(saved)
		sess.hasher = h
		return sess.size, err
	}
	sess.size += n
	return sess.size, nil
}

// noSpace reports a full disk or an exhausted quota.
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Cancel ends an upload and removes its bytes.
func (s *Store) Cancel(repo, id string) error {
	sess, err := s.session(repo, id)
	if err != nil {
		return err
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.gone {
		return fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	s.dropLocked(id, sess)
	return nil
}

func (s *Store) dropLocked(id string, sess *session) {
	sess.gone = true
	os.RemoveAll(filepath.Join(s.uploadDir, id))
	s.mu.Lock()
	delete(s.sessions, id)
	s.mu.Unlock()
}

// Commit finishes an upload as blob want. The bytes are fsynced and verified,
// linked into the blob directory (unless a file of that digest is already
// there) and the directory fsynced; then record is called, under the digest's
// lock, to make the blob known. If record fails, a file Commit created is
// removed. The upload is gone afterwards, whatever the outcome, except when
// the digest is invalid. size, if not negative, must equal the upload's size.
func (s *Store) Commit(repo, id string, want digest.Digest, size int64, record func(size int64) error) (int64, error) {
	sess, err := s.lockSession(repo, id)
	if err != nil {
		return 0, err
	}
	defer sess.mu.Unlock()
	defer s.dropLocked(id, sess)

	data := s.uploadPath(id, fileData)
	if size >= 0 && size != sess.size {
		return 0, fmt.Errorf("%w: announced %d bytes, received %d", ErrSizeInvalid, size, sess.size)
	}
	f, err := os.Open(data)
	if err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, err
	}
	var got digest.Digest
	if want.Algorithm() == digest.SHA256 {
		got = digest.NewDigest(digest.SHA256, sess.hasher)
	} else {
		got, err = want.Algorithm().FromReader(f)
	}
	f.Close()
	if err != nil {
		return 0, err
	}
	if got != want {
		return 0, fmt.Errorf("%w: expected %s, content is %s", ErrDigestMismatch, want, got)
	}

	unlock := s.Lock(want)
	err = s.linkAndRecord(id, want, data, sess.size, record)
	// The upload goes before the lock does, so that whoever takes the lock
	// next never sees a commit in the middle.
	s.dropLocked(id, sess)
	unlock()
	if err != nil {
		return 0, err
	}
	return sess.size, nil
}

// linkAndRecord puts a verified upload's file in place (unless one of that
// digest is there already) and records it; the caller holds the lock.
func (s *Store) linkAndRecord(id string, want digest.Digest, data string, size int64, record func(int64) error) error {
	final := s.Path(want)
	created := false
	if _, err := os.Stat(final); errors.Is(err, fs.ErrNotExist) {
		marked := s.uploadPath(id, string(want.Algorithm())+"-"+want.Encoded())
		if err := os.Rename(data, marked); err != nil {
			return err
		}
		if err := os.Link(marked, final); err != nil {
			return err
		}
		if err := s.dirSync(want.Algorithm()).sync(filepath.Dir(final)); err != nil {
			os.Remove(final)
			return err
		}
		created = true
	} else if err != nil {
		return err
	}
	if err := record(size); err != nil {
		if created {
			os.Remove(final)
		}
		return err
	}
	return nil
}

// Recover runs at startup, before any request. An upload that was being
// committed when the process died (its file renamed to its digest) either
// made it into the database (recorded reports true) or did not, in which
// case the blob file it linked is removed. Either way the upload is removed:
// its client never got an answer. Other uploads stay, to be resumed.
func (s *Store) Recover(recorded func(digest.Digest) (bool, error)) (removed int, err error) {
	ents, err := os.ReadDir(s.uploadDir)
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		if !e.IsDir() || !validUploadID(e.Name()) {
			os.RemoveAll(filepath.Join(s.uploadDir, e.Name()))
		}
	}
	interrupted, err := s.Interrupted()
	if err != nil {
		return 0, err
	}
	for id, d := range interrupted {
		marked := s.uploadPath(id, string(d.Algorithm())+"-"+d.Encoded())
		// A commit in progress in this process holds the lock from
		// before the rename to after the record: wait for it.
		unlock := s.Lock(d)
		ok, err := recorded(d)
		if err == nil && !ok {
			m, _ := os.Stat(marked)
			final, ferr := os.Stat(s.Path(d))
			if ferr == nil && m != nil && os.SameFile(m, final) {
				err = os.Remove(s.Path(d))
			}
		}
		unlock()
		if err != nil {
			return removed, err
		}
		if err := os.RemoveAll(filepath.Join(s.uploadDir, id)); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, s.SyncDirs()
}

// Uploads lists the ids of uploads in progress.
func (s *Store) Uploads() ([]string, error) {
	ents, err := os.ReadDir(s.uploadDir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, nil
}

// uploadRepo reads the repository an upload was started in.
func (s *Store) uploadRepo(id string) (string, bool) {
	r, err := os.ReadFile(s.uploadPath(id, fileRepo))
	return string(r), err == nil
}

// CancelRepo ends every upload of a repository.
func (s *Store) CancelRepo(repo string) {
	ids, _ := s.Uploads()
	for _, id := range ids {
		if r, ok := s.uploadRepo(id); ok && r == repo {
			s.Cancel(repo, id)
		}
	}
}

// ExpireUploads ends the uploads that have received nothing since before:
// their data was last written earlier. Uploads caught in a commit (their
// data renamed to a digest) are Recover's, not touched. It returns how
// many went.
func (s *Store) ExpireUploads(before time.Time) (int, error) {
	ids, err := s.Uploads()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		fi, err := os.Stat(s.uploadPath(id, fileData))
		if err != nil || !fi.ModTime().Before(before) {
			continue
		}
		if repo, ok := s.uploadRepo(id); ok && s.Cancel(repo, id) == nil {
			n++
		}
	}
	return n, nil
}

// Interrupted lists uploads that were being committed when a process died
// (their data renamed to a digest), by id, with that digest; Recover
// finishes them.
func (s *Store) Interrupted() (map[string]digest.Digest, error) {
	ents, err := os.ReadDir(s.uploadDir)
	if err != nil {
		return nil, err
	}
	out := map[string]digest.Digest{}
	for _, e := range ents {
		files, err := os.ReadDir(filepath.Join(s.uploadDir, e.Name()))
		if err != nil {
			continue
		}
		for _, fe := range files {
			alg, hexpart, ok := strings.Cut(fe.Name(), "-")
			if !ok {
				continue
			}
			if d, err := ParseDigest(alg + ":" + hexpart); err == nil {
				out[e.Name()] = d
				break
			}
		}
	}
	return out, nil
}
