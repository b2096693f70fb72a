package kv

import (
	"errors"

	"github.com/kvreg/kvreg/kv/backend"
)

var (
	// ErrSchemaTooNew: the database was written by a newer kvreg.
	ErrSchemaTooNew = errors.New("kv: database schema is newer than this kvreg understands")
	// ErrLocked: another process holds the database open.
	ErrLocked = backend.ErrLocked
	// ErrCorrupt: a record could not be decoded, or the store is damaged.
	ErrCorrupt = backend.ErrCorrupt
	// ErrNoSpace: a commit failed for lack of disk space; nothing was stored.
	ErrNoSpace = backend.ErrNoSpace
	// ErrReadOnly: a write in a read-only transaction.
	ErrReadOnly = backend.ErrReadOnly
	// ErrConflict: a transaction kept conflicting and was given up.
	ErrConflict = backend.ErrConflict
	// ErrUnavailable: the database cannot be reached or did not answer in
	// time.
	ErrUnavailable = backend.ErrUnavailable
	// ErrExists: a record written only if absent (CreateUploadState) was
	// present; nothing of the transaction was stored.
	ErrExists = backend.ErrExists
	// ErrStale: a record written only if it was as the caller saw it
	// (ReplaceUploadState) was not, or was gone; nothing of the
	// transaction was stored.
	ErrStale = backend.ErrStale
	// ErrCommitUnknown: a transaction's commit was cut off: it may have
	// been stored (ErrUnavailable too).
	ErrCommitUnknown = backend.ErrCommitUnknown
)

// ErrSchemaTooOld: the database needs an upgrade, which a read-only open
// does not do.
var ErrSchemaTooOld = errors.New("kv: database schema is older than this kvreg reads; open it writable (kvreg serve) once to upgrade it")
