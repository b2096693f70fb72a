package authstore

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kvreg/kvreg/api/auth/token"
	"github.com/kvreg/kvreg/kv"
)

// Keyring keeps an Issuer and a Verifier on the signing keys the store
// holds, so that every replica over one database signs with the same
// current key and accepts what the others signed: Load reads them (making
// the first key on a store that has none), Refresh reads them again at
// most once per interval (a rotation by `kvreg token rotate-key` reaches
// every replica within it), and RefreshFor reads them at once for a token
// of a key it does not know yet (rotated a moment ago on another replica),
// at most once per second.
type Keyring struct {
	db       *kv.DB
	issuer   *token.Issuer
	verifier *token.Verifier
	// keep is how long a retired key stays trusted: the longest lifetime
	// of a token it signed. Older retired keys are deleted.
	keep  time.Duration
	clock func() time.Time

	mu     sync.Mutex
	loaded time.Time
	tried  time.Time
}

// NewKeyring makes a keyring of db's keys for issuer and verifier; keep is
// the longest lifetime of a token (refresh tokens included).
func NewKeyring(db *kv.DB, issuer *token.Issuer, verifier *token.Verifier, keep time.Duration, clock func() time.Time) *Keyring {
	if clock == nil {
		clock = time.Now
	}
	return &Keyring{db: db, issuer: issuer, verifier: verifier, keep: keep, clock: clock}
}

// Load reads the keys, making the first one if the store has none, and
// puts them in the issuer (the current one) and the verifier (all those
// still trusted).
func (k *Keyring) Load() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.loadLocked()
}

// Refresh is Load when the keys were read longer than interval ago.
func (k *Keyring) Refresh(interval time.Duration) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.clock().Sub(k.loaded) < interval {
		return nil
	}
	return k.loadLocked()
}

// Verify is the verifier's Verify, reading the keys again (at most once a
// second) for a token of a key it does not know: one that another replica
// made current a moment ago.
func (k *Keyring) Verify(raw string) (token.Claims, error) {
	c, err := k.verifier.Verify(raw)
	if errors.Is(err, token.ErrUnknownKey) && k.reloadThrottled() {
		return k.verifier.Verify(raw)
	}
	return c, err
}

// VerifyRefresh is Verify for refresh tokens.
func (k *Keyring) VerifyRefresh(raw string) (token.Claims, error) {
	c, err := k.verifier.VerifyRefresh(raw)
	if errors.Is(err, token.ErrUnknownKey) && k.reloadThrottled() {
		return k.verifier.VerifyRefresh(raw)
	}
	return c, err
}

// reloadThrottled reads the keys again unless that was tried less than a
// second ago, and reports whether it did.
func (k *Keyring) reloadThrottled() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.clock()
	if now.Sub(k.tried) < time.Second && !k.tried.IsZero() {
		return false
	}
	k.tried = now
	return k.loadLocked() == nil
}

func (k *Keyring) loadLocked() error {
	now := k.clock()
	keys, err := k.read(now)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		if _, err := RotateKey(k.db, NewSigningKey, now); err != nil {
			return err
		}
		if keys, err = k.read(now); err != nil {
			return err
		}
	}
	var current *token.SigningKey
	var created int64
	trusted := make([]*token.SigningKey, 0, len(keys))
	for _, r := range keys {
		sk, err := token.ParseSigningKey(r.PKCS8)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", r.KID, err)
		}
		trusted = append(trusted, sk)
		// Two replicas starting on an empty store may each make a key;
		// the newest current one signs, and both verify.
		if r.Retired == 0 && (current == nil || r.Created > created) {
			current, created = sk, r.Created
		}
	}
	if current == nil {
		// Every key retired (by hand): the newest signs until a rotation.
		for i, r := range keys {
			if current == nil || r.Created > created {
				current, created = trusted[i], r.Created
			}
		}
	}
	k.issuer.SetKey(current)
	k.verifier.SetOwnKeys(trusted...)
	k.loaded, k.tried = now, now
	return nil
}

// read returns the keys still trusted at now, deleting the retired ones
// whose tokens have all expired (a write only when there are such).
func (k *Keyring) read(now time.Time) ([]kv.AuthKey, error) {
	var all []kv.AuthKey
	err := k.db.View(func(tx *kv.Tx) error {
		var err error
		all, err = tx.AuthKeys()
		return err
	})
	if err != nil {
		return nil, err
	}
	cutoff := now.Add(-k.keep).UnixNano()
	var keys []kv.AuthKey
	var gone []string
	for _, r := range all {
		if k.keep > 0 && r.Retired != 0 && r.Retired < cutoff {
			gone = append(gone, r.KID)
			continue
		}
		keys = append(keys, r)
	}
	if len(gone) > 0 {
		err = k.db.Update(func(tx *kv.Tx) error {
			for _, kid := range gone {
				if err := tx.DeleteAuthKey(kid); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return keys, err
}
