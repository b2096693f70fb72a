package kv

// migrateQuotaV10: version 10 adds the quota namespaces' usage (tables
// quotausage and quotablobs, meta quotarules). A store of an earlier
// version has none, and no quotarules, so the first kvreg that opens it
// with quota rules computes the usage (refcount rebuilds it whenever the
// recorded rules differ from its own): there is nothing to move. The
// version still changes: a kvreg that knows only version 9 would change
// links, manifests and tags without their namespace's usage, so it must
// refuse the store.
func migrateQuotaV10(db *DB) error {
	return nil
}
