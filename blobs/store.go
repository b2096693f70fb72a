package blobs

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
)

// Store is the blob directory and the uploads in progress under one root.
type Store struct {
	blobDir   string
	uploadDir string

	locks [256]sync.Mutex // striped by digest; see Lock

	mu       sync.Mutex
	sessions map[string]*session

	syncers map[digest.Algorithm]*dirSyncer // one per blob directory
}

func (s *Store) dirSync(a digest.Algorithm) *dirSyncer { return s.syncers[a] }

// Open prepares the directories under root.
func Open(root string) (*Store, error) {
	s := &Store{
		blobDir:   filepath.Join(root, "blobs"),
		uploadDir: filepath.Join(root, "uploads"),
		sessions:  map[string]*session{},
		syncers:   map[digest.Algorithm]*dirSyncer{digest.SHA256: newDirSyncer(), digest.SHA512: newDirSyncer()},
	}
	for _, d := range []string{
		filepath.Join(s.blobDir, string(digest.SHA256)),
		filepath.Join(s.blobDir, string(digest.SHA512)),
		s.uploadDir,
	} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("blobs: %w", err)
		}
	}
	return s, nil
}

// Path is where a blob's file lives. d must have passed ParseDigest.
func (s *Store) Path(d digest.Digest) string {
	return filepath.Join(s.blobDir, string(d.Algorithm()), d.Encoded())
}

// Lock serialises everything that creates or removes the file of one digest
// with the database record of it: an upload holds it from linking the file
// to recording it, and a removal from checking the record to unlinking.
func (s *Store) Lock(d digest.Digest) (unlock func()) {
	h := fnv.New32a()
	h.Write([]byte(d))
	m := &s.locks[h.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// Open opens a blob's file for reading.
func (s *Store) Open(d digest.Digest) (*os.File, error) {
	f, err := os.Open(s.Path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	return f, err
}

// Stat returns a blob file's size.
func (s *Store) Stat(d digest.Digest) (int64, error) {
	fi, err := os.Stat(s.Path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Remove unlinks a blob's file. The caller holds Lock(d) and has checked
// that no record names the digest. A missing file is not an error.
func (s *Store) Remove(d digest.Digest) error {
	err := os.Remove(s.Path(d))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// SyncDirs fsyncs the blob directories, making removals and links durable.
func (s *Store) SyncDirs() error {
	for _, a := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		if err := syncDir(filepath.Join(s.blobDir, string(a))); err != nil {
			return err
		}
	}
	return nil
}

// Walk calls fn for every file in the blob directory. A file whose name is
// not a valid digest is reported with d == "" and its path.
func (s *Store) Walk(fn func(d digest.Digest, path string, size int64) error) error {
	algs, err := os.ReadDir(s.blobDir)
	if err != nil {
		return err
	}
	for _, a := range algs {
		dir := filepath.Join(s.blobDir, a.Name())
		if !a.IsDir() {
			if err := fn("", dir, 0); err != nil {
				return err
			}
			continue
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			info, err := e.Info()
			if err != nil {
				continue
			}
			d, perr := ParseDigest(a.Name() + ":" + e.Name())
			if perr != nil || strings.ContainsRune(e.Name(), '.') {
				d = ""
			}
			if err := fn(d, p, info.Size()); err != nil {
				return err
			}
		}
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
