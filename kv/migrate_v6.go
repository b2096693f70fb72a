package kv

// migrateAuthV6: version 6 adds the tables authkeys and robots, which
// exist from their first write (on bbolt a bucket is made by the first Put
// into it; on PostgreSQL a table is a value of the kv table's tbl column),
// so a version 5 store has nothing to move. The version still changes: a
// kvreg that knows only version 5 would serve without the robot accounts
// and signing keys that others write, so it must refuse the store.
func migrateAuthV6(*DB) error { return nil }
