package authstore

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/kv"
)

func openDB(t *testing.T) *kv.DB {
	t.Helper()
	db, err := kv.Open(filepath.Join(t.TempDir(), "k.db"), kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// A robot is created once by name, logs in with its secret until it
// expires or is revoked, and records its last use at most once a minute.
func TestRobotLife(t *testing.T) {
	db := openDB(t)
	now := time.Unix(1_000_000, 0)
	spec, err := ParseRobotSpec("ci", "team/*", "pull,push", "1d")
	if err != nil {
		t.Fatal(err)
	}
	nr, err := CreateRobot(db, spec, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateRobot(db, spec, now); !errors.Is(err, ErrRobotExists) {
		t.Fatalf("second create: %v", err)
	}
	r, ok, err := Robot(db, "ci")
	if err != nil || !ok || !r.Allows("team/app", auth.Push) || r.Allows("other", auth.Pull) {
		t.Fatalf("robot %+v %v %v", r, ok, err)
	}
	if err := r.Login(nr.Secret, now.Add(23*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := r.Login(nr.Secret, now.Add(24*time.Hour)); !errors.Is(err, auth.ErrRobotExpired) {
		t.Fatalf("a day later: %v", err)
	}
	lastUsed := func() time.Time {
		r, _, err := Robot(db, "ci")
		if err != nil {
			t.Fatal(err)
		}
		return r.LastUsed
	}
	for _, c := range []struct {
		at   time.Duration
		want time.Duration
	}{{time.Second, time.Second}, {30 * time.Second, time.Second}, {61 * time.Second, 61 * time.Second}} {
		if err := TouchRobot(db, "ci", now.Add(c.at)); err != nil {
			t.Fatal(err)
		}
		if got := lastUsed(); !got.Equal(now.Add(c.want)) {
			t.Fatalf("touched at +%v: last used %v, want +%v", c.at, got.Sub(now), c.want)
		}
	}
	if err := TouchRobot(db, "nobody", now); err != nil {
		t.Fatal(err)
	}
	if _, err := RevokeRobot(db, "ci", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	info, err := RevokeRobot(db, "ci", now.Add(2*time.Hour))
	if err != nil || info.Revoked == nil || !info.Revoked.Equal(now.Add(time.Hour)) {
		t.Fatalf("second revoke: %+v %v; the first time must stay", info, err)
	}
	if _, err := RevokeRobot(db, "nobody", now); !errors.Is(err, ErrRobotUnknown) {
		t.Fatalf("revoke nobody: %v", err)
	}
	r, _, _ = Robot(db, "ci")
	if err := r.Login(nr.Secret, now); !errors.Is(err, auth.ErrRobotRevoked) {
		t.Fatalf("revoked: %v", err)
	}
}

// A key generator that fails leaves the keys as they were; a rotation
// retires only the current key.
func TestRotateKey(t *testing.T) {
	db := openDB(t)
	now := time.Unix(1_000_000, 0)
	boom := errors.New("no entropy")
	if _, err := RotateKey(db, func() (string, []byte, error) { return "", nil, boom }, now); !errors.Is(err, boom) {
		t.Fatalf("failing generator: %v", err)
	}
	for i := 0; i < 3; i++ {
		if _, err := RotateKey(db, NewSigningKey, now.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := Keys(db)
	if err != nil || len(keys) != 3 {
		t.Fatalf("keys %+v %v", keys, err)
	}
	current := 0
	for _, k := range keys {
		switch {
		case k.Retired == nil:
			current++
			if !k.Created.Equal(now.Add(2 * time.Hour)) {
				t.Fatalf("current key made at %v", k.Created)
			}
		case k.Retired.Sub(k.Created) != time.Hour:
			t.Fatalf("key %s made %v retired %v: not by the next rotation", k.KID, k.Created, k.Retired)
		}
	}
	if current != 1 {
		t.Fatalf("%d current keys", current)
	}
}
