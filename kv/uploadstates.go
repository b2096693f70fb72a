package kv

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/kvreg/kvreg/kv/backend"
)

// errEmptyUploadID: an upload state without an id (keys are not empty).
var errEmptyUploadID = errors.New("kv: upload state without an id")

// UploadState reads upload id's state, as the blob store encoded it; nil
// when the upload has none.
func (t *Tx) UploadState(id string) ([]byte, error) {
	v, err := t.b.Get(tableUploadStates, []byte(id))
	return clone(v), err
}

// CreateUploadState writes upload id's state if it has none; if it has
// one, the transaction fails with ErrExists (here, or when it commits) and
// stores nothing. On a backend that can (backend.Inserter) it reads
// nothing first, so that creates of different uploads never conflict.
func (t *Tx) CreateUploadState(id string, state []byte) error {
	if id == "" {
		return errEmptyUploadID
	}
	if ins, ok := t.b.(backend.Inserter); ok {
		return ins.Insert(tableUploadStates, []byte(id), state)
	}
	v, err := t.b.Get(tableUploadStates, []byte(id))
	if err != nil {
		return err
	}
	if v != nil {
		return fmt.Errorf("%w: state of upload %q", ErrExists, id)
	}
	return t.b.Put(tableUploadStates, []byte(id), state)
}

// ReplaceUploadState writes upload id's state if the one stored is prev,
// byte for byte; if it is another, or none (the upload ended), the
// transaction fails with ErrStale (here, or when it commits) and stores
// nothing. On a backend that can (backend.Replacer) it reads nothing
// first: one round trip, with the commit.
func (t *Tx) ReplaceUploadState(id string, prev, state []byte) error {
	if id == "" {
		return errEmptyUploadID
	}
	if r, ok := t.b.(backend.Replacer); ok {
		return r.Replace(tableUploadStates, []byte(id), prev, state)
	}
	v, err := t.b.Get(tableUploadStates, []byte(id))
	if err != nil {
		return err
	}
	if v == nil || !bytes.Equal(v, prev) {
		return fmt.Errorf("%w: state of upload %q", ErrStale, id)
	}
	return t.b.Put(tableUploadStates, []byte(id), state)
}

// DeleteUploadState removes upload id's state, if it has one.
func (t *Tx) DeleteUploadState(id string) error {
	if id == "" {
		return errEmptyUploadID
	}
	return t.b.Delete(tableUploadStates, []byte(id))
}

// UploadStates calls fn for every upload's state, in id order, until fn
// returns false or an error (which UploadStates returns). state is fn's
// to keep.
func (t *Tx) UploadStates(fn func(id string, state []byte) (bool, error)) error {
	return t.b.Scan(tableUploadStates, nil, func(k, v []byte) (bool, error) {
		return fn(string(k), clone(v))
	})
}
