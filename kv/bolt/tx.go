package boltkv

import (
	"errors"
	"fmt"

	"github.com/kvreg/kvreg/kv/backend"
	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"
)

// tx is a table per top-level bucket; a bucket is created by its first
// write.
type tx struct {
	tx *bbolt.Tx
}

var _ backend.Tx = (*tx)(nil)

func (t *tx) Get(table, key []byte) ([]byte, error) {
	b := t.tx.Bucket(table)
	if b == nil {
		return nil, nil
	}
	return b.Get(key), nil
}

func (t *tx) Put(table, key, value []byte) error {
	if !t.tx.Writable() {
		return fmt.Errorf("%w: put in %s", backend.ErrReadOnly, table)
	}
	b, err := t.tx.CreateBucketIfNotExists(table)
	if err != nil {
		return txErr(err)
	}
	// A nil value would read back as absent within this transaction.
	if value == nil {
		value = []byte{}
	}
	return txErr(b.Put(key, value))
}

func (t *tx) Delete(table, key []byte) error {
	if !t.tx.Writable() {
		return fmt.Errorf("%w: delete in %s", backend.ErrReadOnly, table)
	}
	b := t.tx.Bucket(table)
	if b == nil {
		return nil
	}
	return txErr(b.Delete(key))
}

func (t *tx) Scan(table, from []byte, fn func(k, v []byte) (bool, error)) error {
	b := t.tx.Bucket(table)
	if b == nil {
		return nil
	}
	return scan(b.Cursor(), from, fn)
}

func scan(c *bbolt.Cursor, from []byte, fn func(k, v []byte) (bool, error)) error {
	var k, v []byte
	if len(from) == 0 {
		k, v = c.First()
	} else {
		k, v = c.Seek(from)
	}
	for ; k != nil; k, v = c.Next() {
		if v == nil {
			continue // a nested bucket: not a key of a table
		}
		more, err := fn(k, v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func txErr(err error) error {
	if errors.Is(err, bberrors.ErrTxNotWritable) || errors.Is(err, bberrors.ErrDatabaseReadOnly) {
		return fmt.Errorf("%w: %w", backend.ErrReadOnly, err)
	}
	return err
}
