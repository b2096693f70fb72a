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
	// DeleteNested removes key, a value or a nested bucket with all it
	// holds, from the bucket at path (from the top level when path is
	// empty). A missing bucket or key is not an error.
	DeleteNested(path [][]byte, key []byte) error
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

func (t *tx) DeleteNested(path [][]byte, key []byte) error {
	if !t.tx.Writable() {
		return fmt.Errorf("%w: delete %q", backend.ErrReadOnly, key)
	}
	if len(path) == 0 {
		if t.tx.Bucket(key) == nil {
			return nil
		}
		return t.tx.DeleteBucket(key)
	}
	b := t.tx.Bucket(path[0])
	for _, name := range path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket(name)
	}
	if b == nil {
		return nil
	}
	if b.Bucket(key) != nil {
		return b.DeleteBucket(key)
	}
	return b.Delete(key)
}
