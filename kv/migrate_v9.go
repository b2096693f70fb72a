package kv

// migrateV8 is the step from version 7 to version 8, whose tables exist
// from their first write: nothing to move.
func migrateV8(*DB) error { return nil }

// migrateEventsV9: version 9 adds the tables outbox, outboxseq and
// outboxclaims, which exist from their first write, so a version 8 store
// has nothing to move. The version still changes: a kvreg that knows only
// version 8 would make changes without writing their events, which would
// then never be delivered, so it must refuse the store.
func migrateEventsV9(*DB) error { return nil }
