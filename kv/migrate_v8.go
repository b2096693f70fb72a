package kv

import (
	"bytes"

	"github.com/kvreg/kvreg/kv/backend"
)

// migrateTagPushedV8: version 8 records when each tag last moved
// (tagpushed), which retention orders tags by. A tag of an older store
// takes its manifest's Created, the best it is known by; a tag whose
// manifest is missing (damage fsck reports) takes 0. The rows are written
// flattenBatch tags per transaction, each overwriting what a run cut
// short wrote, so a crash leaves a store the next open finishes.
func migrateTagPushedV8(db *DB) error {
	var from []byte
	for {
		var next []byte
		err := db.store.Update(func(t backend.Tx) error {
			next = nil
			var keys, digests [][]byte
			if err := t.Scan(tableTags, from, func(k, v []byte) (bool, error) {
				if len(keys) == flattenBatch {
					next = clone(k)
					return false, nil
				}
				keys, digests = append(keys, clone(k)), append(digests, clone(v))
				return true, nil
			}); err != nil {
				return err
			}
			for i, k := range keys {
				var created int64
				if j := bytes.IndexByte(k, sep); j >= 0 {
					v, err := t.Get(tableManifests, repoKey(string(k[:j]), string(digests[i])))
					if err != nil {
						return err
					}
					if v != nil {
						if m, err := decodeManifest(v); err == nil {
							created = m.Created
						}
					}
				}
				if err := t.Put(tableTagPushed, k, encodeTime(created)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || next == nil {
			return err
		}
		from = next
	}
}
