package pgkv

import (
	"fmt"

	"github.com/jackc/pgx/v5"
)

// folder runs Fold whenever enough Adds have committed.
func (s *Store) folder() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.foldc:
			s.Fold() //nolint:errcheck // the deltas wait for the next fold
		}
	}
}

// Fold moves the counter deltas into the base rows in one short
// transaction, unless another process is folding (pg_try_advisory_xact_lock);
// it returns the number of counters whose base changed. Counter reads the
// same sum before and after. It runs at READ COMMITTED: it deletes the
// deltas its snapshot sees and adds exactly those, and concurrent Adds,
// which insert new rows, neither wait for it nor conflict with it.
func (s *Store) Fold() (int64, error) {
	s.adds.Store(0)
	ctx, cancel := s.statementContext()
	defer cancel()
	s.roundTrips.Add(1)
	t, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return 0, mapErr(err)
	}
	defer t.Rollback(ctx) //nolint:errcheck // after Commit, a no-op
	var mine bool
	s.roundTrips.Add(1)
	if err := t.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", foldLockKey).Scan(&mine); err != nil {
		return 0, fmt.Errorf("pgkv: fold: %w", mapErr(err))
	}
	if !mine {
		return 0, nil
	}
	s.roundTrips.Add(1)
	tag, err := t.Exec(ctx, `WITH d AS (DELETE FROM kv_counter_delta RETURNING tbl, k, n)
		INSERT INTO kv_counter_base (tbl, k, n) SELECT tbl, k, sum(n)::bigint FROM d GROUP BY tbl, k
		ON CONFLICT (tbl, k) DO UPDATE SET n = kv_counter_base.n + excluded.n`)
	if err != nil {
		return 0, fmt.Errorf("pgkv: fold: %w", mapErr(err))
	}
	s.roundTrips.Add(1)
	if err := t.Commit(ctx); err != nil {
		return 0, fmt.Errorf("pgkv: fold: %w", mapErr(err))
	}
	return tag.RowsAffected(), nil
}
