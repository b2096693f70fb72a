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
)
