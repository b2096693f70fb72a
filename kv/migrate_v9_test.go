package kv

import (
	"encoding/json"
	"testing"
)

// A version 7 or 8 store opens as version 9 with everything it answered
// unchanged and an empty outbox; a read-only open refuses it until then.
// Outbox rows are then numbered per endpoint, read oldest first, counted,
// rewritten and deleted beside the rest, and claims are kept.
func TestMigrateEventsV9(t *testing.T) {
	for _, from := range []uint32{7, 8} {
		db, want := migratedFrom(t, from)
		err := db.Update(func(tx *Tx) error {
			eps, err := tx.OutboxEndpoints()
			if err != nil || len(eps) != 0 {
				t.Errorf("endpoints of a migrated store: %v %v", eps, err)
			}
			for _, ep := range []string{"b", "a", "a", "b", "a"} {
				n, err := tx.NextOutboxSeq(ep)
				if err != nil {
					return err
				}
				ev, _ := json.Marshal(map[string]any{"ep": ep, "n": n})
				if err := tx.PutOutbox(ep, OutboxRow{Seq: n, Event: ev}, true); err != nil {
					return err
				}
			}
			return tx.PutOutboxClaim("a", OutboxClaim{Owner: "host-1", Expiry: 42})
		})
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *Tx) error {
			if err := tx.PutOutbox("a", OutboxRow{Seq: 2, Attempts: 3, Next: 99, LastError: "503", Event: json.RawMessage(`{"ep":"a","n":2}`)}, false); err != nil {
				return err
			}
			ok, err := tx.DeleteOutbox("a", 1)
			if err != nil || !ok {
				t.Errorf("delete a/1: %v %v", ok, err)
			}
			ok, err = tx.DeleteOutbox("a", 1)
			if err != nil || ok {
				t.Errorf("second delete a/1: %v %v", ok, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = db.View(func(tx *Tx) error {
			eps, err := tx.OutboxEndpoints()
			if err != nil || len(eps) != 2 || eps[0] != "a" || eps[1] != "b" {
				t.Errorf("endpoints %v %v", eps, err)
			}
			var seqs []uint64
			var rows []OutboxRow
			if err := tx.Outbox("a", func(r OutboxRow) (bool, error) {
				seqs, rows = append(seqs, r.Seq), append(rows, r)
				return true, nil
			}); err != nil {
				return err
			}
			if len(seqs) != 2 || seqs[0] != 2 || seqs[1] != 3 {
				t.Errorf("rows of a: %v", seqs)
			} else if r := rows[0]; r.Attempts != 3 || r.Next != 99 || r.LastError != "503" || string(r.Event) != `{"ep":"a","n":2}` {
				t.Errorf("rewritten row %+v", r)
			}
			for ep, want := range map[string]int64{"a": 2, "b": 2} {
				if n, err := tx.OutboxPending(ep); err != nil || n != want {
					t.Errorf("pending %s: %d %v, want %d", ep, n, err, want)
				}
			}
			c, ok, err := tx.OutboxClaim("a")
			if err != nil || !ok || c != (OutboxClaim{Owner: "host-1", Expiry: 42}) {
				t.Errorf("claim %+v %v %v", c, ok, err)
			}
			if _, ok, err := tx.OutboxClaim("b"); ok || err != nil {
				t.Errorf("claim of b: %v %v", ok, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := snapshotV3(t, db); got != want {
			t.Fatalf("outbox rows changed what the store answers:\n%s\nwant\n%s", got, want)
		}
	}
}
