// Package backend is the ordered key-value interface under package kv:
// named tables of byte keys kept in byte order, read and written in
// transactions. It owns that contract and nothing else: no record format,
// table name or key layout is known here (those are kv's), and no
// implementation lives here (bbolt's is kv/bolt; each runs the conformance
// suite in backend/backendtest).
package backend

// Store is an open key-value store.
type Store interface {
	// Update runs fn in a read-write transaction, committed when fn returns
	// nil and rolled back when it returns an error. fn may run more than
	// once (concurrent callers may share a commit, and a shared one that
	// fails is retried alone), so it must have no effect outside the
	// transaction that it does not redo.
	Update(fn func(Tx) error) error
	// View runs fn in a read-only transaction that sees a consistent
	// snapshot of committed data. Writes in it fail with ErrReadOnly.
	// fn may run twice when it begins with a batch read (BatchGetter):
	// a store may answer that batch alone, outside a transaction, and run
	// fn again in one if fn then reads anything else; such an fn must
	// leave nothing behind from its first run that the second does not
	// redo.
	View(fn func(Tx) error) error
	// Close releases the store; transactions must have ended.
	Close() error
}

// Tx is one transaction. Tables are named by byte strings; a table that was
// never written reads as empty, and writing to it creates it. Keys are
// non-empty. A value returned by Get or passed to a Scan callback is valid
// only until the next write in the transaction or its end: copy it to keep
// it. A present key always reads as a non-nil value (possibly empty).
type Tx interface {
	// Get returns a key's value, or nil when the key is absent.
	Get(table, key []byte) ([]byte, error)
	// Put sets a key's value.
	Put(table, key, value []byte) error
	// Delete removes a key; deleting an absent key is not an error.
	Delete(table, key []byte) error
	// Scan calls fn for every key at or after from (every key when from is
	// empty) in ascending byte order, until fn returns false or an error
	// (which Scan returns). fn may read but must not write.
	Scan(table, from []byte, fn func(k, v []byte) (bool, error)) error
	// Add adds delta to the counter named key in table; a counter never added
	// reads 0. Counters are a namespace of their own: Get, Put, Delete and Scan
	// never see them, and a table's counters and its values do not mix. Add
	// reads nothing, so that transactions adding to the same counter at once do
	// not conflict (bbolt: read-modify-write in place, writers are serial
	// anyway; PostgreSQL: an insert of a delta row, folded into a base row
	// later by one job).
	Add(table, key []byte, delta int64) error
	// Counter reads a counter: the sum of every Add committed before the
	// transaction's snapshot and of the transaction's own Adds. A write
	// transaction that reads a counter conflicts with concurrent Adds to it on
	// a backend with serializable isolation, so kv reads counters only in
	// read-only transactions (stats, fsck, metrics).
	Counter(table, key []byte) (int64, error)
}

// Key names one key of one table.
type Key struct {
	Table, Key []byte
	// Of, when not 0, makes the key Key followed by the value of the
	// batch's key number Of (from 1; a key whose Of is 0): the key of a
	// record that another one names. It reads as absent when that value
	// is absent.
	Of int
}

// Aborter is a Tx that tells, through OnAbort, that an attempt of Update
// did not commit, as soon as that is known: before a backoff and a rerun,
// or before Update returns. A store whose failed attempts run again at
// once, or alone, need not be one.
type Aborter interface {
	// OnAbort calls f, once, if this attempt surely did not commit (the
	// function failed, a statement failed, or the server refused the
	// COMMIT); not when the outcome is unknown (the connection was lost
	// with the COMMIT sent).
	OnAbort(f func())
}

// BatchGetter is implemented by transactions that can read several keys
// known in advance in one exchange with a database server. GetBatch
// returns the value of each key, in the order given, nil for an absent
// one, as Get would; later Gets of those keys in the transaction are
// answered from what the batch read, without another exchange. kv calls it
// to read at once what it is about to read one key at a time.
//
// In a View, a store may send a first GetBatch alone, outside a
// transaction (one statement is its own snapshot); a read of anything
// else after it then fails and the View runs its fn again in a
// transaction (see Store.View).
type BatchGetter interface {
	GetBatch(keys []Key) ([][]byte, error)
}

// Inserter is implemented by transactions that can write a key only if
// it is absent without reading it: on a backend with serializable
// isolation, a read that finds a key absent locks where the key would be,
// and conflicts with other writers' keys stored nearby; an insert locks
// nothing it did not write. Insert sets the key's value if the key is
// absent; if it is present, the transaction fails with ErrExists, at
// Insert or when it commits (Update returns it), and stores nothing.
type Inserter interface {
	Insert(table, key, value []byte) error
}

// Replacer is implemented by transactions that can write a key only if
// its present value is one the caller saw, without a read of their own
// first (a round trip fewer where a read is one). Replace sets the key's
// value to value if the key is present with old, byte for byte; if it is
// absent or holds anything else, the transaction fails with ErrStale, at
// Replace or when it commits (Update returns it), and stores nothing.
type Replacer interface {
	Replace(table, key, old, value []byte) error
}

// Sizer is implemented by stores that can tell how many bytes they occupy
// (for statistics; a store that cannot simply does not implement it).
type Sizer interface {
	Size() (int64, error)
}

// RangeScanner is implemented by transactions that can scan a bounded
// range of keys. Scan has no upper bound, so a scan that stops at the
// first key past what it wants (the end of a prefix, an expiry) has read
// that key, which belongs to someone else (the next repository, the next
// digest); on a backend with serializable isolation that read conflicts
// with whoever writes the key. ScanRange reads no key at or after to
// (PostgreSQL: key >= from AND key < to). kv uses it when a transaction
// offers it.
type RangeScanner interface {
	// ScanRange is Scan over the keys k with from <= k < to (to nil: no
	// upper bound).
	ScanRange(table, from, to []byte, fn func(k, v []byte) (bool, error)) error
}

// Readier is implemented by stores that can be unable to take writes while
// they answer reads (PostgreSQL's, while it retakes a write lock it lost).
// Ready returns nil when the store takes writes, else an error wrapping
// ErrUnavailable.
type Readier interface {
	Ready() error
}

// TxStats are a store's running totals of its transactional work since it
// opened, for operators: how often a write was rerun after a conflict
// with another writer, and how many exchanges with a database server the
// work took.
type TxStats struct {
	Updates    uint64 // read-write transactions asked for (reruns not counted)
	RoundTrips uint64 // exchanges with the server (statements, BEGIN, COMMIT)
	Retries    uint64 // reruns of an Update after a serialization failure, a deadlock or a lock wait
	GaveUp     uint64 // Updates that failed with ErrConflict after their last rerun
	// LockWaits counts the shared locks (Locker) that another holder had
	// when asked for, so that the asker waited.
	LockWaits uint64
}

// StatsReporter is implemented by stores that count their transactions'
// round trips and reruns (PostgreSQL's); an embedded store that never
// reruns and has no server does not implement it.
type StatsReporter interface {
	TxStats() TxStats
}

// Serial is implemented by stores whose write transactions run one at a
// time (concurrent callers may share one commit, as bbolt's batches do):
// no write transaction ever sees another's uncommitted work, nor runs
// beside it. Stores that do not implement it may run writers side by side.
type Serial interface {
	SerialWrites()
}

// Locker is implemented by stores that several processes may share and
// that can hold a lock across them (PostgreSQL's advisory locks): what
// one process serialises in memory, all of them serialise there. Lock
// waits for the locks on keys, all of them, for a bounded time; locks it
// could not take in that time, or at all, are an error wrapping
// ErrUnavailable, and none is held then. They are held until unlock is
// called, or until the process loses the store (then another may take
// them: the holder's next step with the store fails too, most likely, but
// not surely). Holders of several keys never wait for each other in a
// ring.
type Locker interface {
	Lock(keys ...[]byte) (unlock func(), err error)
}
