package pgkv

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

func migratedTo(t *testing.T, version int) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var rt atomic.Uint64
	if err := migrateTo(t.Context(), pool, version, &rt); err != nil {
		t.Fatal(err)
	}
	return pool
}

// Version 1: the kv table orders bytea keys bytewise (0x80 after 0x7f,
// unlike a signed char), and the counter tables take deltas and bases.
func TestMigration1(t *testing.T) {
	pool := migratedTo(t, 1)
	ctx := t.Context()
	for _, q := range []string{
		`INSERT INTO kv (tbl, k, v) VALUES ('\x74', '\x80', ''), ('\x74', '\x7f', ''), ('\x74', '\x7f00', '')`,
		`INSERT INTO kv_counter_delta (tbl, k, n) VALUES ('\x74', '\x01', 5), ('\x74', '\x01', -2)`,
		`INSERT INTO kv_counter_base (tbl, k, n) VALUES ('\x74', '\x01', 10)`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rows, err := pool.Query(ctx, `SELECT k FROM kv WHERE tbl = '\x74' ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for rows.Next() {
		var k []byte
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, string(k))
	}
	if want := []string{"\x7f", "\x7f\x00", "\x80"}; len(keys) != 3 || keys[0] != want[0] || keys[1] != want[1] || keys[2] != want[2] {
		t.Fatalf("key order %q, want %q", keys, want)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO kv (tbl, k, v) VALUES ('\x74', '\x80', '')`); err == nil {
		t.Fatal("a duplicate key was inserted")
	}
	var v int
	if err := pool.QueryRow(ctx, "SELECT max(version) FROM kv_migrations").Scan(&v); err != nil || v != 1 {
		t.Fatalf("recorded version %d, %v", v, err)
	}
}

// Migrating again from the current version does nothing.
func TestMigrateIsIdempotent(t *testing.T) {
	pool := migratedTo(t, SchemaVersion())
	var rt atomic.Uint64
	if err := migrateTo(t.Context(), pool, SchemaVersion(), &rt); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM kv_migrations").Scan(&n); err != nil || n != len(migrations) {
		t.Fatalf("%d migrations recorded, %v", n, err)
	}
}
