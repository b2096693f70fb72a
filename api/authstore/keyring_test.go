package authstore

import (
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api/auth/token"
	"github.com/kvreg/kvreg/kv"
)

var testName = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$`).MatchString

// replica is one server's keyring over the shared database.
type replica struct {
	issuer *token.Issuer
	ring   *Keyring
}

func newReplica(t *testing.T, db *kv.DB, clock func() time.Time, keep time.Duration) replica {
	t.Helper()
	key, err := token.NewSigningKey() // replaced by the store's at Load
	if err != nil {
		t.Fatal(err)
	}
	is, err := token.NewIssuer(token.IssuerConfig{Key: key, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(token.VerifierConfig{ValidName: testName, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	r := replica{is, NewKeyring(db, is, v, keep, clock)}
	if err := r.ring.Load(); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r replica) issue(t *testing.T) string {
	t.Helper()
	tok, _, err := r.issuer.Issue("alice", []token.Access{{Type: "repository", Name: "team/app", Actions: []string{"pull"}}}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Replicas over one database sign with the key the first made and accept
// each other's tokens; after a rotation on one, another accepts tokens of
// the new key at once (it reads the keys again for an unknown one) and
// tokens of the old key until it is pruned, keep after its retirement.
func TestKeyringSharedByReplicas(t *testing.T) {
	db := openDB(t)
	now := time.Unix(2_000_000, 0)
	clock := func() time.Time { return now }
	keep := time.Hour
	a := newReplica(t, db, clock, keep)
	b := newReplica(t, db, clock, keep)
	if a.issuer.KID() != b.issuer.KID() {
		t.Fatalf("replicas sign with %s and %s", a.issuer.KID(), b.issuer.KID())
	}
	if keys, err := Keys(db); err != nil || len(keys) != 1 {
		t.Fatalf("keys after two loads: %v %v", keys, err)
	}
	old := a.issue(t)
	if _, err := b.ring.Verify(old); err != nil {
		t.Fatalf("b refuses a's token: %v", err)
	}

	now = now.Add(10 * time.Second)
	if _, err := RotateKey(db, NewSigningKey, now); err != nil {
		t.Fatal(err)
	}
	if err := a.ring.Refresh(0); err != nil {
		t.Fatal(err)
	}
	if a.issuer.KID() == b.issuer.KID() {
		t.Fatal("a still signs with the retired key after its refresh")
	}
	fresh := a.issue(t)
	if _, err := b.ring.Verify(fresh); err != nil {
		t.Fatalf("b refuses a token of the new key: %v", err)
	}
	if b.issuer.KID() != a.issuer.KID() {
		t.Fatal("b did not take the new current key when it read the keys again")
	}
	for _, r := range []replica{a, b} {
		if _, err := r.ring.Verify(old); err != nil {
			t.Fatalf("a token of the retired key is refused before it expires: %v", err)
		}
	}

	// Past keep, the retired key goes; a token it signed is unknown.
	now = now.Add(keep + time.Minute)
	if err := b.ring.Refresh(time.Second); err != nil {
		t.Fatal(err)
	}
	if keys, err := Keys(db); err != nil || len(keys) != 1 {
		t.Fatalf("keys after the retired one's keep: %v %v", keys, err)
	}
	if _, err := b.ring.Verify(old); !errors.Is(err, token.ErrUnknownKey) && !errors.Is(err, token.ErrExpired) {
		t.Fatalf("a pruned key's token: %v", err)
	}
}

// A key that no replica knows makes a replica read the keys at most once
// a second.
func TestKeyringRereadsAtMostOnceASecond(t *testing.T) {
	db := openDB(t)
	now := time.Unix(3_000_000, 0)
	clock := func() time.Time { return now }
	a := newReplica(t, db, clock, time.Hour)
	stranger, err := token.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	is, _ := token.NewIssuer(token.IssuerConfig{Key: stranger, Clock: clock})
	tok, _, err := is.Issue("mallory", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	if _, err := a.ring.Verify(tok); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("a stranger's token: %v", err)
	}
	if a.ring.reloadThrottled() {
		t.Fatal("the keys were read again within the second")
	}
	now = now.Add(time.Second)
	if !a.ring.reloadThrottled() {
		t.Fatal("the keys were not read again a second later")
	}
}
