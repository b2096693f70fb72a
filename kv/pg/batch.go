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
const batchSQL = `SELECT p.i, (SELECT '\x01'::bytea || kv.v FROM kv WHERE kv.tbl = p.tbl AND kv.k = p.k)
	FROM unnest($1::bytea[], $2::bytea[]) WITH ORDINALITY AS p(tbl, k, i)`

// errNeedsTx ends the first run of a View whose first batch went alone,
// outside a transaction, once it reads something else: the rest cannot
// come from that statement's snapshot, so View runs the closure again in a
// transaction.
var errNeedsTx = errors.New("pgkv: a read outside the view's first batch")

var _ backend.BatchGetter = (*tx)(nil)

// GetBatch reads the keys not read yet in one round trip and remembers
// them, absent ones too. As the first read of a View it goes alone,
// outside a transaction: a single statement sees one snapshot, so a View
// that reads nothing else costs one round trip, with no BEGIN or
// ROLLBACK.
func (t *tx) GetBatch(keys []backend.Key) ([][]byte, error) {
	if t.err != nil {
		return nil, t.err
	}
	var tbls, ks [][]byte
	var asked []rowKey
	queued := map[rowKey]bool{}
	for _, k := range keys {
		rk := rowKey{string(k.Table), string(k.Key)}
		if _, ok := t.seen[rk]; ok || queued[rk] {
			continue
		}
		queued[rk] = true
		asked = append(asked, rk)
		tbls, ks = append(tbls, k.Table), append(ks, k.Key)
	}
	if len(asked) > 0 {
		alone := t.detachable && !t.begun && len(t.pending) == 0
		if alone {
			t.begin = ""
		}
		got := make([][]byte, len(asked))
		err := t.send(&stmt{batchSQL, []any{tbls, ks}}, func(r pgx.Rows) error {
			var i int64
			var v []byte
			if err := r.Scan(&i, &v); err != nil {
				return err
			}
			if i < 1 || int(i) > len(got) || (v != nil && len(v) == 0) {
				return fmt.Errorf("pgkv: batch read returned row %d of %d", i, len(got))
			}
			if v != nil {
				got[i-1] = v[1:]
			}
			return nil
		}, "")
		if err != nil {
			return nil, err
		}
		t.detached = alone
		for i, rk := range asked {
			t.remember(rk, got[i])
		}
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = t.seen[rowKey{string(k.Table), string(k.Key)}]
	}
	return out, nil
}
