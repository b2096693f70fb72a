package kv

import (
	"bytes"

	"github.com/kvreg/kvreg/kv/backend"
)

// migratePinClientsV5: version 5 keys a pin by the client it answered as
// well, so that one client's manifest takes only its own pin. A version 4
// pin <kind> <repo> 0x00 <digest> becomes the pin of the empty client
// (0x00 appended), in both pins and pinexpiry; its end is kept. A version
// 4 key has one 0x00 after its kind byte, a version 5 key two, so a
// transaction converts up to flattenBatch keys that still have one, and a
// crash leaves a store that the next open continues to upgrade. (Pin
// tables hold the pushes of one pin window: small.)
func migratePinClientsV5(db *DB) error {
	for _, st := range []struct {
		table []byte
		skip  int // bytes before the kind: the end in pinexpiry
	}{{tablePins, 0}, {tablePinExpiry, 8}} {
		for {
			n := 0
			err := db.store.Update(func(t backend.Tx) error {
				var keys, vals [][]byte
				if err := t.Scan(st.table, nil, func(k, v []byte) (bool, error) {
					if len(k) > st.skip+1 && bytes.Count(k[st.skip+1:], []byte{sep}) == 1 {
						keys, vals = append(keys, clone(k)), append(vals, clone(v))
					}
					return len(keys) < flattenBatch, nil
				}); err != nil {
					return err
				}
				for i, k := range keys {
					if err := t.Delete(st.table, k); err != nil {
						return err
					}
					if err := t.Put(st.table, append(k, sep), vals[i]); err != nil {
						return err
					}
				}
				n = len(keys)
				return nil
			})
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
		}
	}
	return nil
}
