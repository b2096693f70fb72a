package refcount

import (
	"errors"
	"fmt"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/kv"
)

// uploadStates keeps the blob store's upload states in the database
// (driver.States), so that a push's chunks and commit cost statements
// rather than requests to a bucket, and the sweeps find uploads there.
// Each call is a transaction of its own, taken under the upload's lock;
// the one other write of a state is its removal by the commit that
// records the upload's blob (CommitUploadFor), in that record's
// transaction.
type uploadStates struct{ db *kv.DB }

var _ driver.States = uploadStates{}

func (u uploadStates) GetState(id string) ([]byte, error) {
	var st []byte
	err := u.db.View(func(tx *kv.Tx) error {
		// Read as a batch of one: on PostgreSQL a statement of its own,
		// with no transaction around it.
		if err := tx.Prefetch().UploadState(id).Read(); err != nil {
			return err
		}
		var err error
		st, err = tx.UploadState(id)
		return err
	})
	if err == nil && st == nil {
		return nil, fmt.Errorf("%w: upload %q", driver.ErrNotFound, id)
	}
	return st, stateErr(err)
}

func (u uploadStates) PutState(id string, rec, prev []byte) error {
	err := u.db.Update(func(tx *kv.Tx) error {
		if prev == nil {
			return tx.CreateUploadState(id, rec)
		}
		return tx.ReplaceUploadState(id, prev, rec)
	})
	switch {
	case errors.Is(err, kv.ErrExists):
		return fmt.Errorf("%w: upload %q", driver.ErrExists, id)
	case errors.Is(err, kv.ErrStale):
		return fmt.Errorf("%w: upload %q: %w", driver.ErrStale, id, err)
	}
	return stateErr(err)
}

func (u uploadStates) DeleteState(id string) error {
	return stateErr(u.db.Update(func(tx *kv.Tx) error { return tx.DeleteUploadState(id) }))
}

func (u uploadStates) EachState(fn func(id string, rec []byte) error) error {
	type row struct {
		id  string
		rec []byte
	}
	var rows []row
	err := u.db.View(func(tx *kv.Tx) error {
		rows = rows[:0]
		return tx.UploadStates(func(id string, st []byte) (bool, error) {
			rows = append(rows, row{id, st})
			return true, nil
		})
	})
	if err != nil {
		return stateErr(err)
	}
	// fn runs outside the transaction: it may send requests to the bucket.
	for _, r := range rows {
		if err := fn(r.id, r.rec); err != nil {
			return err
		}
	}
	return nil
}

// stateErr makes the database's unavailability the blob store's, which
// the registry answers with 503, as it does an unreachable bucket.
func stateErr(err error) error {
	if errors.Is(err, kv.ErrUnavailable) {
		return fmt.Errorf("%w: upload states: %w", driver.ErrUnavailable, err)
	}
	return err
}
