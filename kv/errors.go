package kv

import "errors"

var (
	// ErrSchemaTooNew: the database was written by a newer kvreg.
	ErrSchemaTooNew = errors.New("kv: database schema is newer than this kvreg understands")
	// ErrLocked: another process holds the database open.
	ErrLocked = errors.New("kv: database is locked by another process")
	// ErrCorrupt: a record could not be decoded.
	ErrCorrupt = errors.New("kv: corrupt record")
)
