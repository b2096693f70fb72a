package kv

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// OutboxRow is one event waiting for delivery to one endpoint: the event
// as refcount encoded it (kv does not read it) and the state of its
// delivery. Seq orders an endpoint's rows: it is the endpoint's sequence
// number when the row was written.
type OutboxRow struct {
	Seq       uint64          `json:"-"`
	Attempts  int             `json:"attempts,omitempty"`
	Next      int64           `json:"next,omitempty"` // Unix ns of the next attempt; 0: at once
	LastError string          `json:"lastError,omitempty"`
	Event     json.RawMessage `json:"event"`
}

// OutboxClaim says which process delivers an endpoint's rows, until when.
type OutboxClaim struct {
	Owner  string
	Expiry int64 // Unix ns
}

func outboxKey(endpoint string, seq uint64) []byte {
	k := make([]byte, 0, len(endpoint)+9)
	k = append(k, endpoint...)
	k = append(k, sep)
	return binary.BigEndian.AppendUint64(k, seq)
}

// NextOutboxSeq reads and advances an endpoint's sequence number, returning
// the new one. It reads and rewrites one row per endpoint on purpose: on a
// serializable database two transactions that both take a number conflict
// and one reruns, so an endpoint's numbers follow the order of commits.
func (t *Tx) NextOutboxSeq(endpoint string) (uint64, error) {
	v, err := t.b.Get(tableOutboxSeq, []byte(endpoint))
	if err != nil {
		return 0, err
	}
	var n uint64
	if v != nil {
		if len(v) != 8 {
			return 0, fmt.Errorf("%w: outbox sequence of %d bytes", ErrCorrupt, len(v))
		}
		n = binary.BigEndian.Uint64(v)
	}
	n++
	if err := t.b.Put(tableOutboxSeq, []byte(endpoint), binary.BigEndian.AppendUint64(nil, n)); err != nil {
		return 0, err
	}
	return n, nil
}

// PutOutbox writes a row of an endpoint, new or rewritten (a failed
// attempt); a new one adds to the endpoint's pending count.
func (t *Tx) PutOutbox(endpoint string, row OutboxRow, isNew bool) error {
	if endpoint == "" {
		return fmt.Errorf("kv: outbox row without an endpoint")
	}
	v, err := json.Marshal(row)
	if err != nil {
		return err
	}
	if err := t.b.Put(tableOutbox, outboxKey(endpoint, row.Seq), v); err != nil {
		return err
	}
	if isNew {
		return t.b.Add(tableOutbox, []byte(endpoint), 1)
	}
	return nil
}

// DeleteOutbox removes a delivered row; deleting an absent one (another
// process delivered it) changes nothing.
func (t *Tx) DeleteOutbox(endpoint string, seq uint64) (bool, error) {
	k := outboxKey(endpoint, seq)
	v, err := t.b.Get(tableOutbox, k)
	if err != nil || v == nil {
		return false, err
	}
	if err := t.b.Delete(tableOutbox, k); err != nil {
		return false, err
	}
	return true, t.b.Add(tableOutbox, []byte(endpoint), -1)
}

func decodeOutbox(seq []byte, v []byte) (OutboxRow, error) {
	var row OutboxRow
	if len(seq) != 8 {
		return row, fmt.Errorf("%w: outbox key with a sequence of %d bytes", ErrCorrupt, len(seq))
	}
	if err := json.Unmarshal(v, &row); err != nil {
		return row, fmt.Errorf("%w: outbox row: %v", ErrCorrupt, err)
	}
	row.Seq = binary.BigEndian.Uint64(seq)
	return row, nil
}

// Outbox calls fn for an endpoint's rows, oldest first, until fn returns
// false.
func (t *Tx) Outbox(endpoint string, fn func(OutboxRow) (bool, error)) error {
	return t.scanPrefix(tableOutbox, repoKey(endpoint, ""), func(rest, v []byte) (bool, error) {
		row, err := decodeOutbox(rest, v)
		if err != nil {
			return false, err
		}
		return fn(row)
	})
}

// OutboxEndpoints lists the endpoints that have rows, in name order.
func (t *Tx) OutboxEndpoints() ([]string, error) {
	var out []string
	from := []byte(nil)
	for {
		var next string
		found := false
		if err := t.b.Scan(tableOutbox, from, func(k, _ []byte) (bool, error) {
			ep, _, err := splitRepoKey(k)
			if err != nil {
				return false, err
			}
			next, found = ep, true
			return false, nil
		}); err != nil {
			return nil, err
		}
		if !found {
			return out, nil
		}
		out = append(out, next)
		from = prefixEnd(repoKey(next, ""))
		if from == nil {
			return out, nil
		}
	}
}

// OutboxPending reads an endpoint's count of rows (a counter: read it in
// read-only transactions).
func (t *Tx) OutboxPending(endpoint string) (int64, error) {
	return t.b.Counter(tableOutbox, []byte(endpoint))
}

// AddOutboxPending adds delta to an endpoint's count of rows: what a
// repair does to a count that differs from the rows.
func (t *Tx) AddOutboxPending(endpoint string, delta int64) error {
	return t.b.Add(tableOutbox, []byte(endpoint), delta)
}

// OutboxClaim reads an endpoint's delivery claim; ok is false when it has
// none.
func (t *Tx) OutboxClaim(endpoint string) (OutboxClaim, bool, error) {
	v, err := t.b.Get(tableOutboxClaims, []byte(endpoint))
	if err != nil || v == nil {
		return OutboxClaim{}, false, err
	}
	if len(v) < 8 {
		return OutboxClaim{}, false, fmt.Errorf("%w: outbox claim of %d bytes", ErrCorrupt, len(v))
	}
	return OutboxClaim{Expiry: int64(binary.BigEndian.Uint64(v)), Owner: string(v[8:])}, true, nil
}

// PutOutboxClaim writes an endpoint's delivery claim.
func (t *Tx) PutOutboxClaim(endpoint string, c OutboxClaim) error {
	v := binary.BigEndian.AppendUint64(nil, uint64(c.Expiry))
	return t.b.Put(tableOutboxClaims, []byte(endpoint), append(v, c.Owner...))
}

// OutboxRowAt reads one row of an endpoint; ok is false when it is gone.
func (t *Tx) OutboxRowAt(endpoint string, seq uint64) (OutboxRow, bool, error) {
	k := outboxKey(endpoint, seq)
	v, err := t.b.Get(tableOutbox, k)
	if err != nil || v == nil {
		return OutboxRow{}, false, err
	}
	row, err := decodeOutbox(k[len(endpoint)+1:], v)
	return row, err == nil, err
}
