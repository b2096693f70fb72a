package pgkv

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/kvreg/kvreg/kv/backend"
)

// batchSQL reads a list of (table, key) pairs in one statement. Each pair
// is looked up by a subquery of its own, the plan of a single Get (a
// primary key lookup), so that a batch takes the same row and predicate
// locks as the Gets it replaces and no more. A present value comes back
// behind one byte 0x01, so that NULL means absent alone.
const batchSQL = `SELECT p.i, p.k, (SELECT '\x01'::bytea || kv.v FROM kv WHERE kv.tbl = p.tbl AND kv.k = p.k)
	FROM unnest($1::bytea[], $2::bytea[]) WITH ORDINALITY AS p(tbl, k, i)`

// batchOfSQL is batchSQL with keys that end with the value of another key
// of the batch (of: its number, from 1; 0 for a key given whole): the
// keys given whole are read first, then the others, whose keys come back
// with the rows. A key whose base is absent returns no row.
const batchOfSQL = `WITH p AS MATERIALIZED (
		SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::int[]) WITH ORDINALITY AS p(tbl, k, of, i)),
	d AS MATERIALIZED (
		SELECT p.i, p.k, (SELECT kv.v FROM kv WHERE kv.tbl = p.tbl AND kv.k = p.k) AS v FROM p WHERE p.of = 0)
	SELECT d.i, d.k, '\x01'::bytea || d.v FROM d
	UNION ALL
	SELECT p.i, p.k || d.v, (SELECT '\x01'::bytea || kv.v FROM kv WHERE kv.tbl = p.tbl AND kv.k = p.k || d.v)
		FROM p JOIN d ON d.i = p.of WHERE d.v IS NOT NULL`

// errNeedsTx ends the first run of a View whose first batch went alone,
// outside a transaction, once it reads something else: the rest cannot
// come from that statement's snapshot, so View runs the closure again in a
// transaction.
var errNeedsTx = errors.New("pgkv: a read outside the view's first batch")

var _ backend.BatchGetter = (*tx)(nil)

// GetBatch reads the keys not read yet in one round trip (one statement)
// and remembers them, absent ones too; a key ending with another's value
// (Key.Of) is remembered whole. As the first read of a View it goes alone,
// outside a transaction: a single statement sees one snapshot, so a View
// that reads nothing else costs one round trip, with no BEGIN or
// ROLLBACK.
func (t *tx) GetBatch(keys []backend.Key) ([][]byte, error) {
	if t.err != nil {
		return nil, t.err
	}
	for i, k := range keys {
		if k.Of != 0 && (k.Of < 1 || k.Of > len(keys) || keys[k.Of-1].Of != 0) {
			return nil, fmt.Errorf("pgkv: batch key %d names key %d", i+1, k.Of)
		}
	}
	// The rows to send: keys given whole not read yet, then keys ending
	// with a value read by this batch. A key ending with a value known
	// already is given whole.
	var tbls, ks [][]byte
	var ofs []int32
	sent := map[int]int{}      // keys' index -> its row's number (from 1)
	queued := map[rowKey]int{} // key given whole -> its row's number
	whole := func(table, key []byte) int {
		rk := rowKey{string(table), string(key)}
		if _, ok := t.seen[rk]; ok {
			return 0
		}
		if n, ok := queued[rk]; ok {
			return n
		}
		tbls, ks, ofs = append(tbls, table), append(ks, key), append(ofs, 0)
		queued[rk] = len(tbls)
		return len(tbls)
	}
	for i, k := range keys {
		if k.Of == 0 {
			if n := whole(k.Table, k.Key); n != 0 {
				sent[i] = n
			}
		}
	}
	dependent := false
	for _, k := range keys {
		if k.Of == 0 {
			continue
		}
		if n, ok := sent[k.Of-1]; ok {
			tbls, ks, ofs = append(tbls, k.Table), append(ks, k.Key), append(ofs, int32(n))
			dependent = true
		} else if base := t.seen[rowKey{string(keys[k.Of-1].Table), string(keys[k.Of-1].Key)}]; base != nil {
			whole(k.Table, append(k.Key[:len(k.Key):len(k.Key)], base...))
		}
	}
	if len(tbls) > 0 {
		if err := t.readBatch(tbls, ks, ofs, dependent); err != nil {
			return nil, err
		}
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		if k.Of == 0 {
			out[i] = t.seen[rowKey{string(k.Table), string(k.Key)}]
		}
	}
	for i, k := range keys {
		if k.Of == 0 {
			continue
		}
		if base := out[k.Of-1]; base != nil {
			out[i] = t.seen[rowKey{string(k.Table), string(k.Key) + string(base)}]
		}
	}
	return out, nil
}

// readBatch reads the rows of a batch in one round trip and remembers
// them, absent ones too (a key ending with an absent value is no key).
// As the first read of a View it goes alone, outside a transaction.
func (t *tx) readBatch(tbls, ks [][]byte, ofs []int32, dependent bool) error {
	alone := t.detachable && !t.begun && len(t.pending) == 0
	if alone {
		t.begin = ""
	}
	q := stmt{batchSQL, []any{tbls, ks}}
	if dependent {
		q = stmt{batchOfSQL, []any{tbls, ks, ofs}}
	}
	type row struct {
		i    int64
		k, v []byte
	}
	var rows []row
	err := t.send(&q, func(r pgx.Rows) error {
		var x row
		if err := r.Scan(&x.i, &x.k, &x.v); err != nil {
			return err
		}
		if x.i < 1 || int(x.i) > len(tbls) || x.k == nil || (x.v != nil && len(x.v) == 0) {
			return fmt.Errorf("pgkv: batch read returned row %d of %d", x.i, len(tbls))
		}
		rows = append(rows, x)
		return nil
	}, "")
	if err != nil {
		return err
	}
	t.detached = alone
	for _, x := range rows {
		var v []byte
		if x.v != nil {
			v = x.v[1:]
		}
		t.remember(rowKey{string(tbls[x.i-1]), string(x.k)}, v)
	}
	return nil
}
