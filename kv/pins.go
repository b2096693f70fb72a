package kv

import (
	"fmt"
	"math"

	"github.com/kvreg/kvreg/kv/backend"
)

// Pin is a short hold that an answer of "exists" puts on an object, kept in
// the database when several processes share it: Until (Unix ns) is when it
// ends. It holds nothing by itself; the cascade that would free the object
// while it is live turns it into a lease.
type Pin struct {
	Kind   LeaseKind
	Repo   string
	Digest string
	Until  int64
}

// pinKey is <kind> <repo> 0x00 <digest>, the key of table pins.
func pinKey(kind LeaseKind, repo, digest string) []byte {
	k := make([]byte, 1, 1+len(repo)+1+len(digest))
	k[0] = byte(kind)
	k = append(k, repo...)
	k = append(k, sep)
	return append(k, digest...)
}

// pinExpiryKey is <until int64 BE> <kind> <repo> 0x00 <digest>, the key of
// table pinexpiry: the lease index's layout, so that expired pins are found
// by a range read bounded by now.
func pinExpiryKey(p Pin) []byte {
	return leaseKey(Lease{Expiry: p.Until, Kind: p.Kind, Repo: p.Repo, Digest: p.Digest})
}

// Pin reads the pin of an object; ok is false when it has none (live or
// expired: the caller compares Until with its clock).
func (t *Tx) Pin(kind LeaseKind, repo, digest string) (Pin, bool, error) {
	v, err := t.b.Get(tablePins, pinKey(kind, repo, digest))
	if err != nil || v == nil {
		return Pin{}, false, err
	}
	if len(v) != 8 {
		return Pin{}, false, fmt.Errorf("%w: pin of %d bytes", ErrCorrupt, len(v))
	}
	return Pin{Kind: kind, Repo: repo, Digest: digest, Until: int64(getU64(v))}, true, nil
}

// PutPin writes an object's pin, replacing the one it had, with its entry
// in the expiry index.
func (t *Tx) PutPin(p Pin) error {
	if err := t.DeletePin(p.Kind, p.Repo, p.Digest); err != nil {
		return err
	}
	v := make([]byte, 8)
	putU64(v, uint64(p.Until))
	if err := t.b.Put(tablePins, pinKey(p.Kind, p.Repo, p.Digest), v); err != nil {
		return err
	}
	return t.b.Put(tablePinExpiry, pinExpiryKey(p), []byte{})
}

// DeletePin removes an object's pin, if it has one.
func (t *Tx) DeletePin(kind LeaseKind, repo, digest string) error {
	old, ok, err := t.Pin(kind, repo, digest)
	if err != nil || !ok {
		return err
	}
	if err := t.b.Delete(tablePinExpiry, pinExpiryKey(old)); err != nil {
		return err
	}
	return t.b.Delete(tablePins, pinKey(kind, repo, digest))
}

// ExpiredPins returns up to max pins that ended at or before now, earliest
// first. It reads only those entries of the expiry index.
func (t *Tx) ExpiredPins(now int64, max int) ([]Pin, error) {
	var out []Pin
	if max <= 0 {
		return out, nil
	}
	each := func(k, _ []byte) (bool, error) {
		l, err := parseLeaseKey(k)
		if err != nil {
			return false, fmt.Errorf("pin expiry: %w", err)
		}
		if l.Expiry > now {
			return false, nil
		}
		out = append(out, Pin{Kind: l.Kind, Repo: l.Repo, Digest: l.Digest, Until: l.Expiry})
		return len(out) < max, nil
	}
	// Bounded where a backend can, so that the sweep reads no entry that a
	// HEAD has just written.
	if rs, ok := t.b.(backend.RangeScanner); ok && now < math.MaxInt64 {
		to := make([]byte, 8)
		putU64(to, uint64(now+1))
		return out, rs.ScanRange(tablePinExpiry, nil, to, each)
	}
	return out, t.b.Scan(tablePinExpiry, nil, each)
}

// EndPin removes an expired pin as ExpiredPins returned it: its entry in
// the expiry index, and the pin itself unless it was renewed since.
func (t *Tx) EndPin(p Pin) error {
	if err := t.b.Delete(tablePinExpiry, pinExpiryKey(p)); err != nil {
		return err
	}
	cur, ok, err := t.Pin(p.Kind, p.Repo, p.Digest)
	if err != nil || !ok || cur.Until != p.Until {
		return err
	}
	return t.b.Delete(tablePins, pinKey(p.Kind, p.Repo, p.Digest))
}

// ForEachPin calls fn for every pin, live or expired, in key order.
func (t *Tx) ForEachPin(fn func(Pin) error) error {
	return t.b.Scan(tablePins, nil, func(k, v []byte) (bool, error) {
		if len(k) < 3 || len(v) != 8 {
			return false, fmt.Errorf("%w: pin %q", ErrCorrupt, k)
		}
		rest := k[1:]
		for i, c := range rest {
			if c == sep {
				return true, fn(Pin{Kind: LeaseKind(k[0]), Repo: string(rest[:i]), Digest: string(rest[i+1:]), Until: int64(getU64(v))})
			}
		}
		return false, fmt.Errorf("%w: pin %q", ErrCorrupt, k)
	})
}
