package kv

import (
	"testing"
)

// A version 5 store opens as version 6 with everything it answered
// unchanged and no robots or signing keys; a read-only open refuses it
// until then. Robots and keys are then written beside the rest.
func TestMigrateAuthV6(t *testing.T) {
	db, want := migratedFrom(t, 5)
	err := db.Update(func(tx *Tx) error {
		if rs, err := tx.Robots(); err != nil || len(rs) != 0 {
			t.Errorf("robots of a migrated store: %v %v", rs, err)
		}
		if ks, err := tx.AuthKeys(); err != nil || len(ks) != 0 {
			t.Errorf("keys of a migrated store: %v %v", ks, err)
		}
		if err := tx.PutRobot(Robot{Name: "ci", Hash: []byte{1}, Repos: []string{"*"}, Actions: []string{"pull"}, Created: 1, Expires: 2}); err != nil {
			return err
		}
		return tx.PutAuthKey(AuthKey{KID: "k", Created: 1, PKCS8: []byte{1}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := snapshotV3(t, db); got != want {
		t.Fatalf("robots and keys changed what the store answers:\n%s\nwant\n%s", got, want)
	}
}
