// Package pgkv is the PostgreSQL implementation of backend.Store, over
// pgx's connection pool. It is the only package that imports pgx (with
// its test helper, pgkv/pgtest). It owns its own schema and migrations,
// the isolation and retry of transactions, the mapping of PostgreSQL's
// errors to backend's sentinels, the write lock of an exclusive store and
// the folding of counter deltas; it knows no table, key or record of
// kvreg.
//
// # Schema
//
// Every kv table lives in one SQL table, kv (tbl bytea, k bytea, v bytea,
// primary key (tbl, k)). bytea compares bytewise, so the primary key's
// order is the byte order the contract asks for, and a scan is an index
// range scan. One SQL table rather than one per kv table because kv's
// tables are created by their first write: one table needs no DDL inside
// a transaction (DDL takes locks that serialise writers and conflicts with
// concurrent creations of the same table), a missing table is simply a
// prefix with no rows, and migrations of the schema touch one table.
//
// Counters live apart (counter_base and counter_delta). Add inserts a row
// into counter_delta and reads nothing, so that writers adding to the
// same counter never conflict; Counter reads base plus the sum of deltas
// in the transaction's snapshot; Fold, run by whichever process wins
// pg_try_advisory_xact_lock, moves the deltas into the base in one short
// transaction of its own.
//
// # Transactions
//
// Update runs at SERIALIZABLE and reruns the whole closure on a
// serialization failure (40001) or a deadlock (40P01), with a jittered
// backoff, a bounded number of times (then backend.ErrConflict). The
// contract already lets a closure run more than once, and serializable
// isolation keeps kv's read-then-write bookkeeping correct with several
// writers without a lock order to get right in every caller. An Update
// waits at most Options.LockWait for a row lock, then reruns too: at
// SERIALIZABLE a writer that waited for a row fails anyway once the holder
// commits, and PostgreSQL finds deadlocks only after deadlock_timeout. A
// rerun goes alone among this process's Updates, so that a hot row cannot
// starve it. A closure must not call Update of its own store. View runs at
// REPEATABLE READ, READ ONLY: one snapshot. Connections carry lock_timeout
// and statement_timeout, and plan_cache_mode=force_generic_plan: every
// statement finds rows by their primary key, and is planned once per
// connection rather than at each execution. A timeout, a lost or refused
// connection becomes backend.ErrUnavailable; lost once the COMMIT was sent,
// backend.ErrCommitUnknown as well (it may have been stored, and is not
// run again). A transaction is held open only while its closure runs.
//
// Round trips: writes are queued and sent in one pipelined batch with the
// next read or with COMMIT, BEGIN with the first batch, and a key read or
// written once in a transaction is served again from memory (the
// snapshot does not change under the transaction), and so is the first
// page of a range scanned, until a write of the transaction falls in the
// range. GetBatch
// (backend.BatchGetter) reads keys known in advance in one statement, one
// primary key lookup per key (a key that ends with another's value, after
// that one); as a View's first read it goes alone,
// outside a transaction (one statement sees one snapshot), so that a View
// served by its batch costs one round trip and no BEGIN or ROLLBACK; if
// the closure then reads anything else, that read fails and View runs the
// closure again in a REPEATABLE READ transaction. A failed write is thus
// reported by a later call or by the commit; the transaction fails all
// the same. Insert (backend.Inserter) is queued as a write too, a plain
// INSERT whose unique_violation is backend.ErrExists: a create that reads
// nothing, so that it takes no predicate lock where the key would be.
// Replace (backend.Replacer) likewise, an UPDATE of the row only if it
// holds the value the caller saw, which raises division_by_zero
// (backend.ErrStale) when it updated none: a compare-and-swap in the
// round trip of the COMMIT, with no read before it.
// TxStats (backend.StatsReporter, the registry's
// kvreg_db_* metrics) count the round trips, the write transactions and
// their reruns.
//
// # Exclusive writer
//
// With Options.Exclusive the store holds a session advisory lock on a
// dedicated connection for its lifetime, so that one process writes to a
// database at a time; while the lock is not held (lost with its
// connection, not yet retaken) Update refuses with backend.ErrUnavailable.
//
// # Key locks
//
// Lock (backend.Locker) is a lock shared by every process on the
// database: a session advisory lock of the two-int form, class
// keyLockClass and a 32-bit hash of the key, taken on a connection of a
// pool of its own (Options.LockConns) and held there until unlock, so that
// holders, which run transactions while they hold, never wait for a
// connection of the pool they hold one of. It costs a round trip to take
// when free and one to release. The lock ends with its session: a holder
// whose connection is cut loses it without knowing until it unlocks.
package pgkv
