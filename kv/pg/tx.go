package pgkv

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/kvreg/kvreg/kv/backend"
)

// Scans read pages of rows, the first small (a scan that stops at its
// first key is the common case: "is there any reference left?") and each
// next one twice as large.
const (
	firstPage = 16
	maxPage   = 1024
)

// tx is one PostgreSQL transaction on a connection of the pool. Every kv
// table is a range of the kv table's primary key (tbl, k).
//
// Round trips are what a transaction costs on a network, so they are
// few: writes (Put, Delete, Add) return nothing to wait for and are
// queued; the queue goes out in one pipelined batch before the next read
// (which rides in the same batch, so that it sees them) or with COMMIT.
// BEGIN rides with the first batch too. A key read or written once is
// read again from memory: the transaction's snapshot cannot change under
// it, and its own writes are known. An Update is thus one round trip per
// distinct key read (or scan page) plus one, and a failed write is
// reported by the next read or by the commit, ending the transaction all
// the same.
type tx struct {
	s        *Store
	conn     *pgxpool.Conn
	begin    string // sent with the first batch
	setup    string // sent after begin, when not ""
	begun    bool
	readOnly bool
	pending  []stmt
	trips    int // round trips made
	// committing: COMMIT was sent, so a lost connection leaves the
	// outcome unknown.
	committing bool
	adds       int64
	seen       map[rowKey][]byte // values read or written; nil for absent
	// detachable: a View whose first read, when it is a GetBatch, may go
	// alone outside a transaction; detached: it did, so every read from
	// the server after it fails with errNeedsTx.
	detachable, detached bool
	// ranges are the first pages of the ranges scanned, served again
	// until a write of the transaction falls in the range.
	ranges map[rangeKey]scanPage
	// err is the first failed statement's: the transaction is dead after
	// it (25P02), so every later call returns it.
	err error
	// onAbort run when the attempt surely did not commit (OnAbort).
	onAbort []func()
}

var _ backend.Aborter = (*tx)(nil)

// OnAbort implements backend.Aborter.
func (t *tx) OnAbort(f func()) { t.onAbort = append(t.onAbort, f) }

// outcomeUnknown reports whether the attempt failed after its COMMIT was
// sent with no answer of the server's that says it failed: it may have
// committed. A COMMIT that never left (pgx says so: safe to retry) did
// not.
func (t *tx) outcomeUnknown() bool {
	var pe *pgconn.PgError
	return t.committing && t.err != nil && !errors.As(t.err, &pe) && !pgconn.SafeToRetry(t.err)
}

// aborted runs the OnAbort functions of an attempt that did not commit,
// unless its outcome is unknown.
func (t *tx) aborted() {
	if t.outcomeUnknown() {
		return
	}
	fs := t.onAbort
	t.onAbort = nil
	for _, f := range fs {
		f()
	}
}

type rowKey struct{ tbl, k string }

type rangeKey struct {
	tbl, from, to string
	bounded       bool // to is a bound (else: to the end of the table)
}

type scanPage struct{ ks, vs [][]byte }

type stmt struct {
	sql  string
	args []any
}

// less orders writes by the SQL table they go to, then by kv table and
// key (the first two arguments of every write).
func (a stmt) less(b stmt) bool {
	if a.sql != b.sql && (a.sql == addSQL || b.sql == addSQL) {
		return b.sql == addSQL
	}
	if c := bytes.Compare(a.args[0].([]byte), b.args[0].([]byte)); c != 0 {
		return c < 0
	}
	return bytes.Compare(a.args[1].([]byte), b.args[1].([]byte)) < 0
}

var _ backend.Tx = (*tx)(nil)
var _ backend.RangeScanner = (*tx)(nil)

// fail records a statement's error and returns it mapped.
func (t *tx) fail(err error) error {
	if t.err == nil {
		t.err = mapErr(err)
	}
	return t.err
}

// send makes one round trip: BEGIN if not sent yet, the queued writes,
// then last, whose rows go to read (nil for a statement without rows,
// then its command tag must be want when want is not "").
func (t *tx) send(last *stmt, read func(pgx.Rows) error, want string) error {
	if t.err != nil {
		return t.err
	}
	if t.detached {
		t.err = errNeedsTx
		return t.err
	}
	b := &pgx.Batch{}
	if !t.begun && t.begin != "" {
		b.Queue(t.begin)
		if t.setup != "" {
			b.Queue(t.setup)
		}
	}
	// Rows are locked in key order within a batch, so that two
	// transactions writing the same rows in one batch each cannot
	// deadlock; a stable sort keeps the order of writes to one key.
	sort.SliceStable(t.pending, func(i, j int) bool { return t.pending[i].less(t.pending[j]) })
	for _, p := range t.pending {
		b.Queue(p.sql, p.args...)
	}
	execs := b.Len()
	if last != nil {
		b.Queue(last.sql, last.args...)
	}
	if b.Len() == 0 {
		return nil
	}
	ctx, cancel := t.s.statementContext()
	defer cancel()
	t.s.roundTrips.Add(1)
	t.trips++
	t.begun = true
	t.pending = t.pending[:0]
	br := t.conn.SendBatch(ctx, b)
	err := results(br, execs, last, read, want)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return t.fail(err)
	}
	return nil
}

func results(br pgx.BatchResults, execs int, last *stmt, read func(pgx.Rows) error, want string) error {
	for i := 0; i < execs; i++ {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	if last == nil {
		return nil
	}
	if read == nil {
		tag, err := br.Exec()
		if err == nil && want != "" && tag.String() != want {
			err = fmt.Errorf("pgkv: %s ended as %s", want, tag)
		}
		return err
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := read(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (t *tx) Get(table, key []byte) ([]byte, error) {
	if t.err != nil {
		return nil, t.err
	}
	rk := rowKey{string(table), string(key)}
	if v, ok := t.seen[rk]; ok {
		return v, nil
	}
	var v []byte
	err := t.send(&stmt{"SELECT v FROM kv WHERE tbl = $1 AND k = $2", []any{table, key}}, func(r pgx.Rows) error {
		if err := r.Scan(&v); err != nil {
			return err
		}
		if v == nil {
			v = []byte{} // present, empty
		}
		return nil
	}, "")
	if err != nil {
		return nil, err
	}
	t.remember(rk, v)
	return v, nil
}

func (t *tx) remember(rk rowKey, v []byte) {
	if t.seen == nil {
		t.seen = map[rowKey][]byte{}
	}
	t.seen[rk] = v
}

// wrote forgets the scanned ranges that a write of the transaction to
// table's key k falls in.
func (t *tx) wrote(table, k []byte) {
	for rk := range t.ranges {
		if rk.tbl == string(table) && string(k) >= rk.from && (!rk.bounded || string(k) < rk.to) {
			delete(t.ranges, rk)
		}
	}
}

func (t *tx) write(what string, table []byte, sql string, args ...any) error {
	if t.readOnly {
		return fmt.Errorf("%w: %s in %q", backend.ErrReadOnly, what, table)
	}
	if t.err != nil {
		return t.err
	}
	t.pending = append(t.pending, stmt{sql, args})
	return nil
}

// Put and Delete copy their arguments: they are sent later.
func (t *tx) Put(table, key, value []byte) error {
	value = append([]byte{}, value...) // never nil: NULL is not a value
	table, key = clone(table), clone(key)
	if err := t.write("put", table, "INSERT INTO kv (tbl, k, v) VALUES ($1, $2, $3) ON CONFLICT (tbl, k) DO UPDATE SET v = excluded.v", table, key, value); err != nil {
		return err
	}
	t.remember(rowKey{string(table), string(key)}, value)
	t.wrote(table, key)
	return nil
}

var _ backend.Inserter = (*tx)(nil)

// Insert is a plain INSERT, sent with the next read or the COMMIT: a key
// that is present fails it (unique_violation, mapped to
// backend.ErrExists) and the transaction with it. A key this transaction
// knows present fails at once.
func (t *tx) Insert(table, key, value []byte) error {
	rk := rowKey{string(table), string(key)}
	if t.err != nil {
		return t.err
	}
	if v, ok := t.seen[rk]; ok && v != nil {
		t.err = fmt.Errorf("%w: %q in %q", backend.ErrExists, key, table)
		return t.err
	}
	value = append([]byte{}, value...)
	table, key = clone(table), clone(key)
	if err := t.write("insert", table, "INSERT INTO kv (tbl, k, v) VALUES ($1, $2, $3)", table, key, value); err != nil {
		return err
	}
	t.remember(rk, value)
	t.wrote(table, key)
	return nil
}

var _ backend.Replacer = (*tx)(nil)

// replaceSQL updates a row only if it holds the value the caller saw, and
// fails (division_by_zero, which no other statement of this package can
// raise: mapped to backend.ErrStale) when it updated none, so that the
// transaction fails with it even when the COMMIT rides in the same batch,
// as an Insert's unique_violation does.
const replaceSQL = "WITH u AS (UPDATE kv SET v = $4 WHERE tbl = $1 AND k = $2 AND v = $3 RETURNING 1) SELECT 1 / count(*) FROM u"

// Replace is a conditional UPDATE, sent with the next read or the COMMIT:
// a row that is absent or holds another value than old fails it (and the
// transaction with it) with backend.ErrStale. A value this transaction
// knows fails at once if it is not old.
func (t *tx) Replace(table, key, old, value []byte) error {
	rk := rowKey{string(table), string(key)}
	if t.err != nil {
		return t.err
	}
	if v, ok := t.seen[rk]; ok && (v == nil || !bytes.Equal(v, old)) {
		t.err = fmt.Errorf("%w: %q in %q", backend.ErrStale, key, table)
		return t.err
	}
	value, old = append([]byte{}, value...), append([]byte{}, old...)
	table, key = clone(table), clone(key)
	if err := t.write("replace", table, replaceSQL, table, key, old, value); err != nil {
		return err
	}
	t.remember(rk, value)
	t.wrote(table, key)
	return nil
}

func (t *tx) Delete(table, key []byte) error {
	table, key = clone(table), clone(key)
	if err := t.write("delete", table, "DELETE FROM kv WHERE tbl = $1 AND k = $2", table, key); err != nil {
		return err
	}
	t.remember(rowKey{string(table), string(key)}, nil)
	t.wrote(table, key)
	return nil
}

// clone copies b, keeping nil as nil (a nil key is an error of the
// caller's that the database reports).
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func (t *tx) Scan(table, from []byte, fn func(k, v []byte) (bool, error)) error {
	return t.ScanRange(table, from, nil, fn)
}

// ScanRange is Scan over from <= k < to (to nil: no bound). With a bound,
// no page reads a key at or after it, so the scan's reads (and the
// predicate locks of a serializable transaction) stay inside the range.
// The first page of a range is remembered: the same range scanned again
// (kv asks "is any key left under this prefix?" after each removal of a
// cascade) is served from memory until a write of the transaction falls
// in it, as a key read once is.
func (t *tx) ScanRange(table, from, to []byte, fn func(k, v []byte) (bool, error)) error {
	if from == nil {
		from = []byte{}
	}
	rk := rangeKey{string(table), string(from), string(to), to != nil}
	cached, hit := t.ranges[rk]
	if t.err != nil {
		return t.err
	}
	first, next := "k >= $2", "k > $2"
	args := func(from []byte, page int) []any { return []any{table, from, page} }
	if to != nil {
		first, next = first+" AND k < $4", next+" AND k < $4"
		args = func(from []byte, page int) []any { return []any{table, from, page, to} }
	}
	sql := "SELECT k, v FROM kv WHERE tbl = $1 AND " + first + " ORDER BY k LIMIT $3"
	for n, page := 0, firstPage; ; n, page = n+1, min(2*page, maxPage) {
		// The page is read whole before fn runs: fn may Get, on the same
		// connection.
		var ks, vs [][]byte
		if n == 0 && hit {
			ks, vs = cached.ks, cached.vs
		} else {
			err := t.send(&stmt{sql, args(from, page)}, func(r pgx.Rows) error {
				var k, v []byte
				if err := r.Scan(&k, &v); err != nil {
					return err
				}
				if v == nil {
					v = []byte{}
				}
				ks, vs = append(ks, k), append(vs, v)
				return nil
			}, "")
			if err != nil {
				return err
			}
			if n == 0 {
				if t.ranges == nil {
					t.ranges = map[rangeKey]scanPage{}
				}
				t.ranges[rk] = scanPage{ks, vs}
			}
		}
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
		sql = "SELECT k, v FROM kv WHERE tbl = $1 AND " + next + " ORDER BY k LIMIT $3"
	}
}

const addSQL = "INSERT INTO kv_counter_delta (tbl, k, n) VALUES ($1, $2, $3)"

// Add inserts a delta row: it reads nothing, so concurrent Adds to one
// counter never conflict.
func (t *tx) Add(table, key []byte, delta int64) error {
	if delta == 0 {
		return nil
	}
	if err := t.write("add", table, addSQL, clone(table), clone(key), delta); err != nil {
		return err
	}
	t.adds++
	return nil
}

// Counter reads the base row and the deltas not yet folded into it, in
// one statement (one snapshot).
func (t *tx) Counter(table, key []byte) (int64, error) {
	var n int64
	err := t.send(&stmt{`SELECT coalesce((SELECT n FROM kv_counter_base WHERE tbl = $1 AND k = $2), 0)
		+ coalesce((SELECT sum(n) FROM kv_counter_delta WHERE tbl = $1 AND k = $2), 0)::bigint`, []any{table, key}},
		func(r pgx.Rows) error { return r.Scan(&n) }, "")
	return n, err
}
