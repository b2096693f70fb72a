package pgkv

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migration is one step of the schema; a database records the steps it
// has taken in kv_migrations, and a step is never changed once released
// (a change is a new step).
type migration struct {
	version int
	name    string
	sql     []string
}

var migrations = []migration{
	{1, "kv table, counter base and deltas", []string{
		// One table for every kv table; bytea compares bytewise, so the
		// primary key is in the contract's byte order.
		`CREATE TABLE kv (tbl bytea NOT NULL, k bytea NOT NULL, v bytea NOT NULL, PRIMARY KEY (tbl, k))`,
		`CREATE TABLE kv_counter_base (tbl bytea NOT NULL, k bytea NOT NULL, n bigint NOT NULL, PRIMARY KEY (tbl, k))`,
		`CREATE TABLE kv_counter_delta (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tbl bytea NOT NULL, k bytea NOT NULL, n bigint NOT NULL)`,
		`CREATE INDEX kv_counter_delta_key ON kv_counter_delta (tbl, k)`,
	}},
}

// SchemaVersion is the schema version this package writes.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// migrate brings the schema to SchemaVersion under a session advisory
// lock, so that processes opening one database at once migrate it once.
func (s *Store) migrate() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return migrateTo(ctx, s.pool, SchemaVersion(), &s.roundTrips)
}

type counter interface{ Add(uint64) uint64 }

func migrateTo(ctx context.Context, pool *pgxpool.Pool, target int, rt counter) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("pgkv: migrate: %w", mapErr(err))
	}
	defer conn.Release()
	// The migration may wait for another process's; statement_timeout
	// must not cut that wait or a long migration.
	rt.Add(1)
	if _, err := conn.Exec(ctx, "SET statement_timeout = 0"); err != nil {
		return fmt.Errorf("pgkv: migrate: %w", mapErr(err))
	}
	defer func() {
		rt.Add(1)
		conn.Exec(context.Background(), "RESET statement_timeout") //nolint:errcheck // a failure leaves a connection the pool drops
	}()
	rt.Add(1)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return fmt.Errorf("pgkv: migrate: lock: %w", mapErr(err))
	}
	defer func() {
		rt.Add(1)
		conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", migrateLockKey) //nolint:errcheck // ends with the session anyway
	}()
	rt.Add(2)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS kv_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("pgkv: migrate: %w", mapErr(err))
	}
	var have int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM kv_migrations").Scan(&have); err != nil {
		return fmt.Errorf("pgkv: migrate: %w", mapErr(err))
	}
	if have > SchemaVersion() {
		return fmt.Errorf("%w: version %d, this kvreg knows up to %d", ErrSchemaTooNew, have, SchemaVersion())
	}
	for _, m := range migrations {
		if m.version <= have || m.version > target {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(t pgx.Tx) error {
			for _, q := range m.sql {
				rt.Add(1)
				if _, err := t.Exec(ctx, q); err != nil {
					return err
				}
			}
			rt.Add(1)
			_, err := t.Exec(ctx, "INSERT INTO kv_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		rt.Add(2)
		if err != nil {
			return fmt.Errorf("pgkv: migrate to version %d (%s): %w", m.version, m.name, mapErr(err))
		}
	}
	return nil
}
