package kv

// migrateTombstoneLocationV12: version 12 lets a tombstone end with the
// location its blob record had (Tombstone.Location). Tombstones without one
// read as before, so a version 11 store has nothing to move. The version
// still changes: a kvreg that knows only version 11 reads a longer
// tombstone as one of generation 0 and could clear a newer deletion's, so
// it must refuse the store.
func migrateTombstoneLocationV12(*DB) error { return nil }
