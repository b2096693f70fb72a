package boltkv

import (
	"fmt"

	"github.com/kvreg/kvreg/kv/backend"
)

// Nested is what a transaction of this store offers beyond backend.Tx:
// access to nested buckets, which the flat interface has no word for. It
// exists for migrating files written before every table was flat; find it
// by type assertion on the backend.Tx that Update passes.
type Nested interface {
	// ScanNested calls fn for every key of the bucket at path (a top-level
	// bucket, then buckets inside it) in byte order; sub is true for a
	// nested bucket, whose value is nil. A missing bucket reads empty. fn
	// must not write.
	ScanNested(path [][]byte, fn func(k, v []byte, sub bool) (bool, error)) error
	// DropTable removes a top-level bucket and all it holds, if present.
	DropTable(table []byte) error
}

var _ Nested = (*tx)(nil)

func (t *tx) ScanNested(path [][]byte, fn func(k, v []byte, sub bool) (bool, error)) error {
	if len(path) == 0 {
		return fmt.Errorf("boltkv: empty bucket path")
	}
	b := t.tx.Bucket(path[0])
	for _, name := range path[1:] {
		if b == nil {
			break
		}
		b = b.Bucket(name)
	}
	if b == nil {
		return nil
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		more, err := fn(k, v, v == nil)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (t *tx) DropTable(table []byte) error {
	if !t.tx.Writable() {
		return fmt.Errorf("%w: drop %s", backend.ErrReadOnly, table)
	}
	if t.tx.Bucket(table) == nil {
		return nil
	}
	return t.tx.DeleteBucket(table)
}
