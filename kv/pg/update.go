package pgkv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/kvreg/kvreg/kv/backend"
)

const (
	beginUpdate = "BEGIN ISOLATION LEVEL SERIALIZABLE"
	beginView   = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
)

// Update runs fn in a SERIALIZABLE transaction, rerunning it after a
// serialization failure or a deadlock (backend.ErrConflict after
// Options.MaxAttempts runs).
func (s *Store) Update(fn func(backend.Tx) error) error {
	s.updates.Add(1)
	replaced := false
	for attempt := 1; ; attempt++ {
		if !s.HoldsWriteLock() {
			s.lock.wakeUp()
			return fmt.Errorf("%w: %w", backend.ErrUnavailable, errNoWriteLock)
		}
		// A transaction runs beside this process's others at first; once
		// it has conflicted, alone among them (first attempts wait for it),
		// so that a hot row cannot starve it: this process's writers then
		// go one at a time, as on a single-writer store, until the
		// conflicts pass; only other processes' writers can still conflict
		// with it.
		gate, ungate := s.gate.RLock, s.gate.RUnlock
		if attempt > 1 {
			gate, ungate = s.gate.Lock, s.gate.Unlock
		}
		gate()
		err, firstTripLost := s.updateOnce(fn)
		ungate()
		if firstTripLost && !replaced {
			// A pooled connection cut since its last use (a restart)
			// failed the first round trip, before anything of the
			// transaction reached the database: once, on a new one.
			replaced = true
			attempt--
			continue
		}
		if !retryable(err) && !lockWaitTimedOut(err) {
			return err
		}
		s.retries.Add(1)
		if attempt >= s.o.MaxAttempts {
			// The cause is text, so that the error is ErrConflict alone
			// (a lock wait's is ErrUnavailable too).
			s.gaveUp.Add(1)
			return fmt.Errorf("%w: gave up after %d attempts: %v", backend.ErrConflict, attempt, err)
		}
		backoff(attempt)
	}
}

// backoff sleeps a random time below a bound that doubles with each
// attempt (1 ms, 2 ms, ... up to 128 ms), so that transactions that
// conflicted do not meet again in step.
func backoff(attempt int) {
	bound := time.Millisecond << min(attempt-1, 7)
	time.Sleep(time.Duration(rand.Int64N(int64(bound))) + 100*time.Microsecond)
}

func (s *Store) updateOnce(fn func(backend.Tx) error) (err error, firstTripLost bool) {
	t, err := s.begin(beginUpdate)
	if err != nil {
		s.lostConnection(err)
		return err, false
	}
	t.setup = s.lockWait
	defer s.end(t)
	ferr := fn(t)
	if t.err == nil && ferr == nil {
		if !t.begun && len(t.pending) == 0 {
			return nil, false // nothing was read or written
		}
		t.committing = true
		t.send(&stmt{sql: "COMMIT"}, nil, "COMMIT") //nolint:errcheck // in t.err
		if t.err == nil {
			s.folded(t.adds)
			return nil, false
		}
	}
	if t.outcomeUnknown() {
		// The COMMIT went out and no answer came back: the caller must
		// not take the transaction for one that stored nothing.
		t.err = fmt.Errorf("%w: %w", backend.ErrCommitUnknown, t.err)
	}
	t.aborted()
	if t.err != nil && (ferr == nil || retryable(t.err) || lockWaitTimedOut(t.err)) {
		s.lostConnection(t.err)
		// Replayed only when the lost round trip held no COMMIT: one that
		// did may have committed, and Adds must not count twice.
		return t.err, t.trips == 1 && !t.committing && errors.Is(t.err, backend.ErrUnavailable)
	}
	return ferr, false
}

// folded counts committed Adds and sets the fold job off every FoldEvery.
func (s *Store) folded(adds int64) {
	if adds > 0 && s.adds.Add(adds) >= int64(s.o.FoldEvery) {
		select {
		case s.foldc <- struct{}{}:
		default:
		}
	}
}

// View runs fn in a REPEATABLE READ, READ ONLY transaction: one snapshot.
// When fn begins with a GetBatch, that batch goes alone, outside a
// transaction, as one statement (its own snapshot): a View that reads
// nothing else is one round trip. If fn reads anything else after it, that
// read fails and fn runs again in a transaction, so that every read it
// acts on comes from one snapshot.
func (s *Store) View(fn func(backend.Tx) error) error {
	err, again := s.viewOnce(fn, true)
	if again {
		err, _ = s.viewOnce(fn, false)
	}
	return err
}

func (s *Store) viewOnce(fn func(backend.Tx) error, detachable bool) (err error, again bool) {
	t, err := s.begin(beginView)
	if err != nil {
		return err, false
	}
	t.readOnly = true
	t.detachable = detachable
	defer s.end(t)
	ferr := fn(t)
	if errors.Is(t.err, errNeedsTx) {
		return nil, true
	}
	if ferr != nil {
		return ferr, false
	}
	return t.err, false
}

// begin takes a connection for a transaction, whose BEGIN goes out with
// its first round trip.
func (s *Store) begin(begin string) (*tx, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.ConnectTimeout+time.Second)
	defer cancel()
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	return &tx{s: s, conn: c, begin: begin}, nil
}

// end rolls back a transaction that is still open and returns its
// connection (the pool drops one left in a transaction or broken).
func (s *Store) end(t *tx) {
	if t.begun && t.conn.Conn().PgConn().TxStatus() != 'I' && !t.conn.Conn().IsClosed() {
		ctx, cancel := s.statementContext()
		s.roundTrips.Add(1)
		t.conn.Exec(ctx, "ROLLBACK") //nolint:errcheck // a broken connection is dropped below
		cancel()
	}
	t.conn.Release()
}

// lostConnection asks an exclusive store to check its write lock at once
// when a transaction found the database unreachable.
func (s *Store) lostConnection(err error) {
	if s.lock != nil && errors.Is(err, backend.ErrUnavailable) {
		s.lock.wakeUp()
	}
}
