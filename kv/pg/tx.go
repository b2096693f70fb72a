package pgkv

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/kvreg/kvreg/kv/backend"
)

// Scans read pages of rows, the first small (a scan that stops at its
// first key is the common case: "is there any reference left?") and each
// next one twice as large.
const (
	firstPage = 16
	maxPage   = 1024
)

// tx is one PostgreSQL transaction. Every kv table is a range of the kv
// table's primary key (tbl, k).
type tx struct {
	s        *Store
	tx       pgx.Tx
	readOnly bool
	adds     int64
	// err is the first failed statement's: the transaction is dead after
	// it (25P02), so every later call returns it.
	err error
}

var _ backend.Tx = (*tx)(nil)

// fail records a statement's error and returns it mapped.
func (t *tx) fail(err error) error {
	if t.err == nil {
		t.err = mapErr(err)
	}
	return t.err
}

func (t *tx) Get(table, key []byte) ([]byte, error) {
	if t.err != nil {
		return nil, t.err
	}
	ctx, cancel := t.s.statementContext()
	defer cancel()
	t.s.roundTrips.Add(1)
	var v []byte
	err := t.tx.QueryRow(ctx, "SELECT v FROM kv WHERE tbl = $1 AND k = $2", table, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, t.fail(err)
	}
	if v == nil {
		v = []byte{} // present, empty
	}
	return v, nil
}

func (t *tx) write(what string, table []byte, sql string, args ...any) error {
	if t.readOnly {
		return fmt.Errorf("%w: %s in %q", backend.ErrReadOnly, what, table)
	}
	if t.err != nil {
		return t.err
	}
	ctx, cancel := t.s.statementContext()
	defer cancel()
	t.s.roundTrips.Add(1)
	if _, err := t.tx.Exec(ctx, sql, args...); err != nil {
		return t.fail(err)
	}
	return nil
}

func (t *tx) Put(table, key, value []byte) error {
	if value == nil {
		value = []byte{} // NULL is not a value
	}
	return t.write("put", table, "INSERT INTO kv (tbl, k, v) VALUES ($1, $2, $3) ON CONFLICT (tbl, k) DO UPDATE SET v = excluded.v", table, key, value)
}

func (t *tx) Delete(table, key []byte) error {
	return t.write("delete", table, "DELETE FROM kv WHERE tbl = $1 AND k = $2", table, key)
}

func (t *tx) Scan(table, from []byte, fn func(k, v []byte) (bool, error)) error {
	if t.err != nil {
		return t.err
	}
	if from == nil {
		from = []byte{}
	}
	sql := "SELECT k, v FROM kv WHERE tbl = $1 AND k >= $2 ORDER BY k LIMIT $3"
	for page := firstPage; ; page = min(2*page, maxPage) {
		ks, vs, err := t.page(sql, table, from, page)
		if err != nil {
			return err
		}
		// The page is read whole before fn runs: fn may Get, on the same
		// connection.
		for i := range ks {
			more, err := fn(ks[i], vs[i])
			if err != nil || !more {
				return err
			}
		}
		if len(ks) < page {
			return nil
		}
		from = ks[len(ks)-1]
		sql = "SELECT k, v FROM kv WHERE tbl = $1 AND k > $2 ORDER BY k LIMIT $3"
	}
}

func (t *tx) page(sql string, table, from []byte, limit int) (ks, vs [][]byte, err error) {
	ctx, cancel := t.s.statementContext()
	defer cancel()
	t.s.roundTrips.Add(1)
	rows, err := t.tx.Query(ctx, sql, table, from, limit)
	if err != nil {
		return nil, nil, t.fail(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, nil, t.fail(err)
		}
		if v == nil {
			v = []byte{}
		}
		ks, vs = append(ks, k), append(vs, v)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, t.fail(err)
	}
	return ks, vs, nil
}

// Add inserts a delta row: it reads nothing, so concurrent Adds to one
// counter never conflict.
func (t *tx) Add(table, key []byte, delta int64) error {
	if delta == 0 {
		return nil
	}
	if err := t.write("add", table, "INSERT INTO kv_counter_delta (tbl, k, n) VALUES ($1, $2, $3)", table, key, delta); err != nil {
		return err
	}
	t.adds++
	return nil
}

// Counter reads the base row and the deltas not yet folded into it, in
// one statement (one snapshot).
func (t *tx) Counter(table, key []byte) (int64, error) {
	if t.err != nil {
		return 0, t.err
	}
	ctx, cancel := t.s.statementContext()
	defer cancel()
	t.s.roundTrips.Add(1)
	var n int64
	err := t.tx.QueryRow(ctx, `SELECT coalesce((SELECT n FROM kv_counter_base WHERE tbl = $1 AND k = $2), 0)
		+ coalesce((SELECT sum(n) FROM kv_counter_delta WHERE tbl = $1 AND k = $2), 0)::bigint`, table, key).Scan(&n)
	if err != nil {
		return 0, t.fail(err)
	}
	return n, nil
}
