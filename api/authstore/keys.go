package authstore

import (
	"time"

	"github.com/kvreg/kvreg/api/auth/token"
	"github.com/kvreg/kvreg/kv"
)

// KeyInfo is what an operator is shown of a signing key: never the key.
type KeyInfo struct {
	KID     string     `json:"kid"`
	Created time.Time  `json:"created"`
	Retired *time.Time `json:"retired,omitempty"`
}

// Rotation is RotateKey's answer: the new current key, and the keys it
// retired (the previous current one; none on a store that had no key).
type Rotation struct {
	Current KeyInfo   `json:"current"`
	Retired []KeyInfo `json:"retired"`
}

// NewKey makes a signing key: its id and its PKCS #8 DER.
type NewKey func() (kid string, pkcs8 []byte, err error)

// NewSigningKey is the NewKey of kvreg's tokens: ECDSA P-256 (ES256), its
// id the key's RFC 7638 thumbprint.
func NewSigningKey() (kid string, pkcs8 []byte, err error) {
	k, err := token.NewSigningKey()
	if err != nil {
		return "", nil, err
	}
	return k.KID(), k.MarshalPKCS8(), nil
}

// RotateKey makes a key with newKey and stores it as the current one,
// marking the key that was current retired at now. Retired keys stay, to
// verify the tokens they signed; removing them once those have expired is
// left to the caller (DeleteAuthKey). The key is made before the
// transaction, which may run more than once.
func RotateKey(db *kv.DB, newKey NewKey, now time.Time) (Rotation, error) {
	kid, der, err := newKey()
	if err != nil {
		return Rotation{}, err
	}
	cur := kv.AuthKey{KID: kid, Created: now.UnixNano(), PKCS8: der}
	var rot Rotation
	err = db.Update(func(tx *kv.Tx) error {
		rot = Rotation{Current: keyInfo(cur), Retired: []KeyInfo{}}
		keys, err := tx.AuthKeys()
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.Retired != 0 || k.KID == kid {
				continue
			}
			k.Retired = now.UnixNano()
			if err := tx.PutAuthKey(k); err != nil {
				return err
			}
			rot.Retired = append(rot.Retired, keyInfo(k))
		}
		return tx.PutAuthKey(cur)
	})
	return rot, err
}

// Keys lists every signing key, by id.
func Keys(db *kv.DB) ([]KeyInfo, error) {
	var keys []kv.AuthKey
	err := db.View(func(tx *kv.Tx) error {
		var err error
		keys, err = tx.AuthKeys()
		return err
	})
	out := make([]KeyInfo, 0, len(keys))
	for _, k := range keys {
		out = append(out, keyInfo(k))
	}
	return out, err
}

func keyInfo(k kv.AuthKey) KeyInfo {
	return KeyInfo{KID: k.KID, Created: unixTime(k.Created), Retired: optTime(k.Retired)}
}
