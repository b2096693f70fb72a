package pgkv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kvreg/kvreg/kv/backend"
)

// Update runs fn in a SERIALIZABLE transaction, rerunning it after a
// serialization failure or a deadlock (backend.ErrConflict after
// Options.MaxAttempts runs).
func (s *Store) Update(fn func(backend.Tx) error) error {
	for attempt := 1; ; attempt++ {
		if !s.HoldsWriteLock() {
			s.lock.wakeUp()
			return fmt.Errorf("%w: %w", backend.ErrUnavailable, errNoWriteLock)
		}
		err := s.updateOnce(fn)
		if !retryable(err) {
			return err
		}
		s.retries.Add(1)
		if attempt >= s.o.MaxAttempts {
			return fmt.Errorf("%w: gave up after %d attempts: %w", backend.ErrConflict, attempt, err)
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

func (s *Store) updateOnce(fn func(backend.Tx) error) error {
	t, err := s.begin(pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		s.lostConnection(err)
		return err
	}
	ferr := fn(t)
	if t.err != nil || ferr != nil {
		s.rollback(t)
		if t.err != nil && (ferr == nil || retryable(t.err)) {
			s.lostConnection(t.err)
			return t.err
		}
		return ferr
	}
	ctx, cancel := s.statementContext()
	defer cancel()
	s.roundTrips.Add(1)
	if err := t.tx.Commit(ctx); err != nil {
		err = mapErr(err)
		s.lostConnection(err)
		return err
	}
	if t.adds > 0 && s.adds.Add(t.adds) >= int64(s.o.FoldEvery) {
		select {
		case s.foldc <- struct{}{}:
		default:
		}
	}
	return nil
}

// View runs fn in a REPEATABLE READ, READ ONLY transaction: one snapshot.
func (s *Store) View(fn func(backend.Tx) error) error {
	t, err := s.begin(pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	t.readOnly = true
	defer s.rollback(t)
	if err := fn(t); err != nil {
		return err
	}
	return t.err
}

// begin starts a transaction. A connection the pool handed out that
// turns out dead (cut by a restart since its last use) is replaced once:
// nothing of the transaction ran on it.
func (s *Store) begin(opts pgx.TxOptions) (*tx, error) {
	var err error
	for try := 0; try < 2; try++ {
		ctx, cancel := s.statementContext()
		s.roundTrips.Add(1)
		var ptx pgx.Tx
		ptx, err = s.pool.BeginTx(ctx, opts)
		cancel()
		if err == nil {
			return &tx{s: s, tx: ptx}, nil
		}
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
	}
	return nil, mapErr(err)
}

func (s *Store) rollback(t *tx) {
	ctx, cancel := s.statementContext()
	defer cancel()
	s.roundTrips.Add(1)
	t.tx.Rollback(ctx) //nolint:errcheck // a dead connection is dropped by the pool
}

// lostConnection asks an exclusive store to check its write lock at once
// when a transaction found the database unreachable.
func (s *Store) lostConnection(err error) {
	if s.lock != nil && errors.Is(err, backend.ErrUnavailable) {
		s.lock.wakeUp()
	}
}
