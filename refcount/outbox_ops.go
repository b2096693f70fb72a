package refcount

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/kvreg/kvreg/kv"
)

// OutboxEntry is one event waiting for delivery to one endpoint, with the
// state of its delivery.
type OutboxEntry struct {
	Endpoint  string    `json:"endpoint"`
	Seq       uint64    `json:"seq"`
	Attempts  int       `json:"attempts"`
	Next      time.Time `json:"next"` // zero: at once
	LastError string    `json:"lastError,omitempty"`
	Event     Event     `json:"event"`
}

func outboxEntry(ep string, row kv.OutboxRow) (OutboxEntry, error) {
	e := OutboxEntry{Endpoint: ep, Seq: row.Seq, Attempts: row.Attempts, LastError: row.LastError}
	if row.Next != 0 {
		e.Next = time.Unix(0, row.Next).UTC()
	}
	if err := json.Unmarshal(row.Event, &e.Event); err != nil {
		return e, fmt.Errorf("%w: outbox event %s/%d: %v", kv.ErrCorrupt, ep, row.Seq, err)
	}
	return e, nil
}

// RecordPull writes the event of a manifest GET for the endpoints that
// want pulls of repo; with none, it writes nothing (no transaction). A
// pull changes nothing, so its event has a transaction of its own.
func (r *Registry) RecordPull(o Origin, repo, tag string, info ManifestInfo) error {
	if !r.eventsWanted(ActionPull, repo) {
		return nil
	}
	_, err := r.update(func(_ *kv.Tx, c *change) error {
		c.origin = o
		c.event(Event{Action: ActionPull, Repository: repo, Tag: tag, Digest: string(info.Digest), MediaType: info.MediaType, Size: info.Size})
		return nil
	})
	return err
}

// OnEvents has fn called after every commit of this process that wrote
// outbox rows (to wake the delivery at once, rather than at its next poll).
func (r *Registry) OnEvents(fn func()) { r.eventsHook.Store(&fn) }

// eventsCommitted calls the OnEvents hook after a commit that wrote rows.
func (r *Registry) eventsCommitted(c *change) {
	if c.outboxRows == 0 {
		return
	}
	if fn := r.eventsHook.Load(); fn != nil {
		(*fn)()
	}
}

// ClaimEvents makes owner the one process that delivers endpoint's events
// until until, if no other holds a claim that is still live at now; it
// reports whether owner holds it. The owner renews it by claiming again,
// and another takes it over once it has expired.
func (r *Registry) ClaimEvents(endpoint, owner string, now, until time.Time) (bool, error) {
	var held bool
	err := r.db.Update(func(tx *kv.Tx) error {
		held = false
		c, ok, err := tx.OutboxClaim(endpoint)
		if err != nil {
			return err
		}
		if ok && c.Owner != owner && c.Expiry > now.UnixNano() {
			return nil
		}
		held = true
		return tx.PutOutboxClaim(endpoint, kv.OutboxClaim{Owner: owner, Expiry: until.UnixNano()})
	})
	return held, err
}

// ReleaseEvents ends owner's claim on endpoint, if it holds it, so that
// another process takes over at once (a clean shutdown).
func (r *Registry) ReleaseEvents(endpoint, owner string) error {
	return r.db.Update(func(tx *kv.Tx) error {
		c, ok, err := tx.OutboxClaim(endpoint)
		if err != nil || !ok || c.Owner != owner {
			return err
		}
		return tx.PutOutboxClaim(endpoint, kv.OutboxClaim{Owner: owner})
	})
}

// OldestEvent reads endpoint's oldest row; ok is false when none is left.
func (r *Registry) OldestEvent(endpoint string) (OutboxEntry, bool, error) {
	var e OutboxEntry
	var ok bool
	err := r.db.View(func(tx *kv.Tx) error {
		var err error
		e, ok, err = oldestEventTx(tx, endpoint)
		return err
	})
	return e, ok, err
}

// oldestEventTx reads endpoint's oldest row; ok is false when none is left.
func oldestEventTx(tx *kv.Tx, endpoint string) (OutboxEntry, bool, error) {
	var row kv.OutboxRow
	ok := false
	if err := tx.Outbox(endpoint, func(x kv.OutboxRow) (bool, error) {
		row, ok = x, true
		return false, nil
	}); err != nil || !ok {
		return OutboxEntry{}, false, err
	}
	e, err := outboxEntry(endpoint, row)
	return e, err == nil, err
}

// OldestEventHeld is OldestEvent for the holder of endpoint's claim:
// held is false, and no row is read, unless owner's claim is the one in
// the database and lasts beyond until (the end of the delivery it is about
// to make). A process whose claim lapsed while it was paused, and that
// another has taken over, so delivers nothing the other may be
// delivering.
func (r *Registry) OldestEventHeld(endpoint, owner string, until time.Time) (e OutboxEntry, ok, held bool, err error) {
	err = r.db.View(func(tx *kv.Tx) error {
		e, ok, held = OutboxEntry{}, false, false
		c, found, err := tx.OutboxClaim(endpoint)
		if err != nil || !found || c.Owner != owner || c.Expiry <= until.UnixNano() {
			return err
		}
		held = true
		e, ok, err = oldestEventTx(tx, endpoint)
		return err
	})
	return e, ok, held, err
}

// EventDelivered removes a delivered row (gone already: another process
// delivered it too, which at-least-once allows).
func (r *Registry) EventDelivered(endpoint string, seq uint64) error {
	return r.db.Update(func(tx *kv.Tx) error {
		_, err := tx.DeleteOutbox(endpoint, seq)
		return err
	})
}

// EventFailed records a failed attempt of a row that is still there:
// its count, the error, and when to try again.
func (r *Registry) EventFailed(endpoint string, seq uint64, attempts int, lastErr string, next time.Time) error {
	return r.db.Update(func(tx *kv.Tx) error {
		row, ok, err := tx.OutboxRowAt(endpoint, seq)
		if err != nil || !ok {
			return err
		}
		row.Attempts, row.LastError, row.Next = attempts, lastErr, next.UnixNano()
		return tx.PutOutbox(endpoint, row, false)
	})
}

// EventsPending counts an endpoint's rows (a counter read in a read-only
// transaction: cheap).
func (r *Registry) EventsPending(endpoint string) (int64, error) {
	var n int64
	err := r.db.View(func(tx *kv.Tx) error {
		var err error
		n, err = tx.OutboxPending(endpoint)
		return err
	})
	return n, err
}

// OutboxReport is what `kvreg events ls` shows: per endpoint with rows,
// how many wait and the oldest of them (up to a limit).
type OutboxReport struct {
	Endpoints []OutboxEndpoint `json:"endpoints"`
}

// OutboxEndpoint is one endpoint's part of an OutboxReport.
type OutboxEndpoint struct {
	Name    string        `json:"name"`
	Pending int64         `json:"pending"`
	Entries []OutboxEntry `json:"entries"` // oldest first, up to the limit
}

// Outbox reports the rows waiting for delivery, up to max per endpoint
// (max <= 0: all), in one snapshot.
func (r *Registry) Outbox(max int) (*OutboxReport, error) {
	rep := &OutboxReport{}
	err := r.db.View(func(tx *kv.Tx) error {
		rep.Endpoints = []OutboxEndpoint{}
		eps, err := tx.OutboxEndpoints()
		if err != nil {
			return err
		}
		for _, ep := range eps {
			oe := OutboxEndpoint{Name: ep, Entries: []OutboxEntry{}}
			if oe.Pending, err = tx.OutboxPending(ep); err != nil {
				return err
			}
			if err := tx.Outbox(ep, func(row kv.OutboxRow) (bool, error) {
				e, err := outboxEntry(ep, row)
				if err != nil {
					return false, err
				}
				oe.Entries = append(oe.Entries, e)
				return max <= 0 || len(oe.Entries) < max, nil
			}); err != nil {
				return err
			}
			rep.Endpoints = append(rep.Endpoints, oe)
		}
		return nil
	})
	return rep, err
}

// DropReport says how many undelivered events DropEvents removed.
type DropReport struct {
	Endpoint string `json:"endpoint"`
	Dropped  int    `json:"dropped"`
}

// DropEvents removes endpoint's undelivered rows, all of them or those up
// to sequence number upTo (> 0): the rows of an endpoint taken out of the
// configuration (nothing delivers them), or an event its receiver refuses
// for good, which holds back the ones after it.
func (r *Registry) DropEvents(endpoint string, upTo uint64) (*DropReport, error) {
	rep := &DropReport{Endpoint: endpoint}
	err := r.db.Update(func(tx *kv.Tx) error {
		rep.Dropped = 0
		var seqs []uint64
		if err := tx.Outbox(endpoint, func(row kv.OutboxRow) (bool, error) {
			if upTo > 0 && row.Seq > upTo {
				return false, nil
			}
			seqs = append(seqs, row.Seq)
			return true, nil
		}); err != nil {
			return err
		}
		for _, seq := range seqs {
			ok, err := tx.DeleteOutbox(endpoint, seq)
			if err != nil {
				return err
			}
			if ok {
				rep.Dropped++
			}
		}
		return nil
	})
	return rep, err
}
