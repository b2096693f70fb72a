package boltkv

import (
	"bytes"
	"encoding/binary"
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

var _ backend.Inserter = (*tx)(nil)

// Insert is Put of an absent key; bbolt's writers are serial, so a read
// first conflicts with no one.
func (t *tx) Insert(table, key, value []byte) error {
	v, err := t.Get(table, key)
	if err != nil {
		return err
	}
	if v != nil {
		return fmt.Errorf("%w: %q in %q", backend.ErrExists, key, table)
	}
	return t.Put(table, key, value)
}

var _ backend.Replacer = (*tx)(nil)

// Replace is Put of a key that holds old; bbolt's writers are serial, so
// a read first conflicts with no one.
func (t *tx) Replace(table, key, old, value []byte) error {
	v, err := t.Get(table, key)
	if err != nil {
		return err
	}
	if v == nil || !bytes.Equal(v, old) {
		return fmt.Errorf("%w: %q in %q", backend.ErrStale, key, table)
	}
	return t.Put(table, key, value)
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

// counterBucket holds every table's counters, a nested bucket per table.
// No kv table name starts with 0x00, so no table is this bucket, and Scan
// skips nested buckets, so counters never show among a table's keys.
var counterBucket = []byte("\x00counters")

func (t *tx) Add(table, key []byte, delta int64) error {
	if !t.tx.Writable() {
		return fmt.Errorf("%w: add in %s", backend.ErrReadOnly, table)
	}
	if delta == 0 {
		return nil
	}
	top, err := t.tx.CreateBucketIfNotExists(counterBucket)
	if err != nil {
		return txErr(err)
	}
	b, err := top.CreateBucketIfNotExists(table)
	if err != nil {
		return txErr(err)
	}
	sum := decodeCounter(b.Get(key)) + delta
	// A counter back at zero reads as one never added: dropping it keeps
	// the counters of removed repositories from piling up.
	if sum == 0 {
		return txErr(b.Delete(key))
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(sum))
	return txErr(b.Put(key, v[:]))
}

func (t *tx) Counter(table, key []byte) (int64, error) {
	top := t.tx.Bucket(counterBucket)
	if top == nil {
		return 0, nil
	}
	b := top.Bucket(table)
	if b == nil {
		return 0, nil
	}
	return decodeCounter(b.Get(key)), nil
}

func decodeCounter(v []byte) int64 {
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

var _ backend.RangeScanner = (*tx)(nil)

func (t *tx) ScanRange(table, from, to []byte, fn func(k, v []byte) (bool, error)) error {
	return t.Scan(table, from, func(k, v []byte) (bool, error) {
		if to != nil && bytes.Compare(k, to) >= 0 {
			return false, nil
		}
		return fn(k, v)
	})
}

var _ backend.BatchGetter = (*tx)(nil)

// GetBatch reads the keys one by one: bbolt reads memory-mapped pages, an
// exchange costs nothing.
func (t *tx) GetBatch(keys []backend.Key) ([][]byte, error) {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		key := k.Key
		if k.Of != 0 {
			if k.Of < 1 || k.Of > len(keys) || keys[k.Of-1].Of != 0 {
				return nil, fmt.Errorf("boltkv: batch key %d names key %d", i+1, k.Of)
			}
			of, err := t.Get(keys[k.Of-1].Table, keys[k.Of-1].Key)
			if err != nil {
				return nil, err
			}
			if of == nil {
				continue
			}
			key = append(key[:len(key):len(key)], of...)
		}
		v, err := t.Get(k.Table, key)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}
