package backend

import "errors"

// Implementations wrap these with %w so that callers can tell the cases
// apart without knowing which store is underneath.
var (
	// ErrLocked: another process holds the store.
	ErrLocked = errors.New("kv store is locked by another process")
	// ErrCorrupt: the store's data is damaged or cannot be decoded.
	ErrCorrupt = errors.New("kv store is corrupt")
	// ErrNoSpace: a commit failed for lack of disk space or quota; nothing
	// of the transaction was stored.
	ErrNoSpace = errors.New("no space left for the kv store")
	// ErrReadOnly: a write in a read-only transaction or store.
	ErrReadOnly = errors.New("kv store is read-only")
	// ErrConflict: a transaction kept conflicting with concurrent ones and
	// was given up after a bounded number of attempts; nothing of it was
	// stored.
	ErrConflict = errors.New("kv transaction kept conflicting with concurrent ones")
	// ErrUnavailable: the store cannot be reached or did not answer in
	// time (a lost connection, a restart, a lock or statement timeout), or
	// this process no longer holds the store's write lock; nothing of the
	// transaction was stored unless the commit itself was cut off.
	ErrUnavailable = errors.New("kv store is unavailable")
	// ErrExists: an Insert (Inserter) of a key that is present; nothing of
	// the transaction was stored.
	ErrExists = errors.New("kv key exists")
	// ErrStale: a Replace (Replacer) of a key that is absent or holds
	// another value than the one the caller saw; nothing of the
	// transaction was stored.
	ErrStale = errors.New("kv key is not as the caller saw it")
	// ErrCommitUnknown: the transaction's commit was sent and its answer
	// lost (the connection was cut): it may or may not have been stored.
	// Returned wrapped with ErrUnavailable, so that it is that too.
	ErrCommitUnknown = errors.New("kv commit's outcome is unknown")
)
