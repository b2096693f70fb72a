package kv

import "fmt"

// AuthKey is a key that signs kvreg's tokens, kept in the store so that
// every process sharing it signs and verifies with the same keys. Retired
// is 0 for the current key, or when (Unix ns) a newer key replaced it; a
// retired key only verifies the tokens it signed before.
type AuthKey struct {
	KID     string // the key's id in tokens (its JWK thumbprint)
	Created int64  // Unix ns
	Retired int64  // Unix ns; 0: current
	PKCS8   []byte // the private key, PKCS #8 DER
}

func encodeAuthKey(k AuthKey) []byte {
	v := make([]byte, 16, 16+len(k.PKCS8))
	putU64(v, uint64(k.Created))
	putU64(v[8:], uint64(k.Retired))
	return append(v, k.PKCS8...)
}

func decodeAuthKey(kid string, v []byte) (AuthKey, error) {
	if len(v) <= 16 {
		return AuthKey{}, fmt.Errorf("%w: signing key %q of %d bytes", ErrCorrupt, kid, len(v))
	}
	return AuthKey{KID: kid, Created: int64(getU64(v)), Retired: int64(getU64(v[8:])), PKCS8: clone(v[16:])}, nil
}

// AuthKey reads one signing key; ok is false when there is none by that
// id.
func (t *Tx) AuthKey(kid string) (AuthKey, bool, error) {
	v, err := t.b.Get(tableAuthKeys, []byte(kid))
	if err != nil || v == nil {
		return AuthKey{}, false, err
	}
	k, err := decodeAuthKey(kid, v)
	return k, err == nil, err
}

// PutAuthKey writes a signing key, replacing the one of the same id.
func (t *Tx) PutAuthKey(k AuthKey) error {
	if k.KID == "" || len(k.PKCS8) == 0 {
		return fmt.Errorf("kv: signing key without id or key bytes")
	}
	return t.b.Put(tableAuthKeys, []byte(k.KID), encodeAuthKey(k))
}

// AuthKeys reads every signing key, ordered by id. (A handful: one
// current, and those retired less than a token's lifetime ago.)
func (t *Tx) AuthKeys() ([]AuthKey, error) {
	var out []AuthKey
	err := t.b.Scan(tableAuthKeys, nil, func(k, v []byte) (bool, error) {
		key, err := decodeAuthKey(string(k), v)
		if err != nil {
			return false, err
		}
		out = append(out, key)
		return true, nil
	})
	return out, err
}

// DeleteAuthKey removes a signing key, if there is one by that id.
func (t *Tx) DeleteAuthKey(kid string) error {
	return t.b.Delete(tableAuthKeys, []byte(kid))
}
