package kv

import (
	"bytes"
	"fmt"
	"testing"
)

// Robot accounts and signing keys are written, read back field for field,
// listed in key order, replaced and deleted, on the backend under test;
// they survive a reopen, a read-only one included.
func TestRobotsAndAuthKeys(t *testing.T) {
	path := target(t)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ci := Robot{Name: "ci", Hash: bytes.Repeat([]byte{0xab}, 32), Repos: []string{"team/*", "tools"},
		Actions: []string{"pull", "push"}, Created: 10, Expires: 1000}
	bot := Robot{Name: "bot.1", Hash: []byte{1, 2, 3}, Repos: []string{"*"}, Actions: []string{"pull"}, Created: 20, Expires: 2000}
	cur := AuthKey{KID: "k2", Created: 200, PKCS8: []byte("der2")}
	old := AuthKey{KID: "k1", Created: 100, Retired: 200, PKCS8: []byte("der1")}
	err = db.Update(func(tx *Tx) error {
		for _, r := range []Robot{ci, bot} {
			if err := tx.PutRobot(r); err != nil {
				return err
			}
		}
		for _, k := range []AuthKey{cur, old} {
			if err := tx.PutAuthKey(k); err != nil {
				return err
			}
		}
		if err := tx.PutRobot(Robot{}); err == nil {
			return fmt.Errorf("a robot without a name was written")
		}
		if err := tx.PutAuthKey(AuthKey{KID: "x"}); err == nil {
			return fmt.Errorf("a key without bytes was written")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	dump := func(db *DB) string {
		var out string
		if err := db.View(func(tx *Tx) error {
			rs, err := tx.Robots()
			if err != nil {
				return err
			}
			for _, r := range rs {
				out += fmt.Sprintf("robot %s %x %v %v %d %d %d %d\n", r.Name, r.Hash, r.Repos, r.Actions, r.Created, r.Expires, r.Revoked, r.LastUsed)
			}
			ks, err := tx.AuthKeys()
			if err != nil {
				return err
			}
			for _, k := range ks {
				out += fmt.Sprintf("key %s %d %d %s\n", k.KID, k.Created, k.Retired, k.PKCS8)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := "robot bot.1 010203 [*] [pull] 20 2000 0 0\n" +
		"robot ci abababababababababababababababababababababababababababababababab [team/* tools] [pull push] 10 1000 0 0\n" +
		"key k1 100 200 der1\nkey k2 200 0 der2\n"
	if got := dump(db); got != want {
		t.Fatalf("got\n%swant\n%s", got, want)
	}

	// Revoke and use: the record is replaced, not added.
	err = db.Update(func(tx *Tx) error {
		r, ok, err := tx.Robot("ci")
		if err != nil || !ok {
			return fmt.Errorf("robot ci: %v %v", ok, err)
		}
		r.Revoked, r.LastUsed = 500, 400
		if err := tx.PutRobot(r); err != nil {
			return err
		}
		if _, ok, err := tx.Robot("nobody"); ok || err != nil {
			return fmt.Errorf("robot nobody: %v %v", ok, err)
		}
		k, ok, err := tx.AuthKey("k2")
		if err != nil || !ok || k.Created != 200 || k.Retired != 0 || string(k.PKCS8) != "der2" {
			return fmt.Errorf("key k2: %+v %v %v", k, ok, err)
		}
		if _, ok, err := tx.AuthKey("k3"); ok || err != nil {
			return fmt.Errorf("key k3: %v %v", ok, err)
		}
		if err := tx.DeleteAuthKey("k1"); err != nil {
			return err
		}
		return tx.DeleteRobot("bot.1")
	})
	if err != nil {
		t.Fatal(err)
	}
	want = "robot ci abababababababababababababababababababababababababababababababab [team/* tools] [pull push] 10 1000 500 400\n" +
		"key k2 200 0 der2\n"
	if got := dump(db); got != want {
		t.Fatalf("after revoke and deletes got\n%swant\n%s", got, want)
	}
	db.Close()
	db, err = Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := dump(db); got != want {
		t.Fatalf("after a reopen got\n%swant\n%s", got, want)
	}
	if err := db.View(func(tx *Tx) error { return tx.PutRobot(Robot{Name: "x"}) }); err == nil {
		t.Fatal("a read-only transaction wrote a robot")
	}
}
