package kv

// migrateUploadStatesV13: version 13 adds the table uploadstates, which
// exists from its first write, so a version 12 store has nothing to move.
// The version still changes: a kvreg that knows only version 12 keeps the
// states of its uploads in the bucket, and would take the bytes of uploads
// whose states are here for strays, so it must refuse the store.
func migrateUploadStatesV13(*DB) error { return nil }
