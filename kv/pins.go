package kv

import (
	"bytes"
	"fmt"
	"math"

	"github.com/kvreg/kvreg/kv/backend"
)

// Pin is a short hold that an answer of "exists" puts on an object for one
// client, kept in the database when several processes share it: Until
// (Unix ns) is when it ends. An object has one pin per client that was told
// it exists, so that a manifest of one client takes that client's pin and
// leaves the others'. It holds nothing by itself; the cascade that would
// free the object while a pin is live turns its live pins into a lease.
type Pin struct {
	Kind   LeaseKind
	Repo   string
	Digest string
	Client string // who was told "exists"; empty for pins of version 4
	Until  int64
	// Upload: the client also uploaded the object (and left the pending
	// hold of that upload), so that its manifest takes that hold too.
	Upload bool
}

// pinObjectPrefix is <kind> <repo> 0x00 <digest> 0x00, the prefix of every
// pin of one object in table pins (a digest holds no 0x00, so the prefix
// matches no other digest's pins).
func pinObjectPrefix(kind LeaseKind, repo, digest string) []byte {
	k := make([]byte, 1, 1+len(repo)+1+len(digest)+1)
	k[0] = byte(kind)
	k = append(k, repo...)
	k = append(k, sep)
	k = append(k, digest...)
	return append(k, sep)
}

// pinKey is <kind> <repo> 0x00 <digest> 0x00 <client>, the key of table
// pins.
func pinKey(kind LeaseKind, repo, digest, client string) []byte {
	return append(pinObjectPrefix(kind, repo, digest), client...)
}

// pinExpiryKey is <until int64 BE> <kind> <repo> 0x00 <digest> 0x00
// <client>, the key of table pinexpiry: the lease index's layout with the
// client after it, so that expired pins are found by a range read bounded
// by now.
func pinExpiryKey(p Pin) []byte {
	k := make([]byte, 8, 8+1+len(p.Repo)+1+len(p.Digest)+1+len(p.Client))
	putU64(k, uint64(p.Until))
	return append(k, pinKey(p.Kind, p.Repo, p.Digest, p.Client)...)
}

// parsePinKey reads a key of table pins; until is left to the caller.
func parsePinKey(k []byte) (Pin, error) {
	if len(k) < 3 {
		return Pin{}, fmt.Errorf("%w: pin key %q", ErrCorrupt, k)
	}
	rest := k[1:]
	i := bytes.IndexByte(rest, sep)
	if i < 0 {
		return Pin{}, fmt.Errorf("%w: pin key %q", ErrCorrupt, k)
	}
	j := bytes.IndexByte(rest[i+1:], sep)
	if j < 0 {
		return Pin{}, fmt.Errorf("%w: pin key %q", ErrCorrupt, k)
	}
	return Pin{
		Kind:   LeaseKind(k[0]),
		Repo:   string(rest[:i]),
		Digest: string(rest[i+1 : i+1+j]),
		Client: string(rest[i+1+j+1:]),
	}, nil
}

// parsePinExpiryKey reads a key of table pinexpiry.
func parsePinExpiryKey(k []byte) (Pin, error) {
	if len(k) < 8 {
		return Pin{}, fmt.Errorf("%w: pin expiry key %q", ErrCorrupt, k)
	}
	p, err := parsePinKey(k[8:])
	p.Until = int64(getU64(k))
	return p, err
}

// A pin's value is its end, 8 bytes, then 1 if the client uploaded the
// object; a pin without that byte (all of them before uploads were
// marked) is not an upload's.
func decodePinValue(k, v []byte) (until int64, upload bool, err error) {
	if len(v) != 8 && (len(v) != 9 || v[8] > 1) {
		return 0, false, fmt.Errorf("%w: pin %q of %d bytes", ErrCorrupt, k, len(v))
	}
	return int64(getU64(v)), len(v) == 9 && v[8] == 1, nil
}

func encodePinValue(p Pin) []byte {
	v := make([]byte, 8, 9)
	putU64(v, uint64(p.Until))
	if p.Upload {
		v = append(v, 1)
	}
	return v
}

// Pin reads one client's pin of an object; ok is false when it has none
// (live or expired: the caller compares Until with its clock).
func (t *Tx) Pin(kind LeaseKind, repo, digest, client string) (Pin, bool, error) {
	k := pinKey(kind, repo, digest, client)
	v, err := t.b.Get(tablePins, k)
	if err != nil || v == nil {
		return Pin{}, false, err
	}
	until, upload, err := decodePinValue(k, v)
	if err != nil {
		return Pin{}, false, err
	}
	return Pin{Kind: kind, Repo: repo, Digest: digest, Client: client, Until: until, Upload: upload}, true, nil
}

// Pins reads every pin of an object, live or expired, ordered by client:
// one range read of the object's keys.
func (t *Tx) Pins(kind LeaseKind, repo, digest string) ([]Pin, error) {
	var out []Pin
	k := pinObjectPrefix(kind, repo, digest)
	err := t.scanPrefix(tablePins, k, func(client, v []byte) (bool, error) {
		until, upload, err := decodePinValue(k, v)
		if err != nil {
			return false, err
		}
		out = append(out, Pin{Kind: kind, Repo: repo, Digest: digest, Client: string(client), Until: until, Upload: upload})
		return true, nil
	})
	return out, err
}

// PutPin writes a client's pin of an object, replacing the one that client
// had, with its entry in the expiry index.
func (t *Tx) PutPin(p Pin) error {
	if err := t.DeletePin(p.Kind, p.Repo, p.Digest, p.Client); err != nil {
		return err
	}
	if err := t.b.Put(tablePins, pinKey(p.Kind, p.Repo, p.Digest, p.Client), encodePinValue(p)); err != nil {
		return err
	}
	return t.b.Put(tablePinExpiry, pinExpiryKey(p), []byte{})
}

// DeletePin removes a client's pin of an object, if it has one.
func (t *Tx) DeletePin(kind LeaseKind, repo, digest, client string) error {
	old, ok, err := t.Pin(kind, repo, digest, client)
	if err != nil || !ok {
		return err
	}
	return t.deletePinRow(old)
}

// DeletePins removes every pin of an object, as Pins returned them.
func (t *Tx) DeletePins(ps []Pin) error {
	for _, p := range ps {
		if err := t.deletePinRow(p); err != nil {
			return err
		}
	}
	return nil
}

// deletePinRow removes a pin as it was read (its Until names its entry in
// the expiry index).
func (t *Tx) deletePinRow(p Pin) error {
	if err := t.b.Delete(tablePinExpiry, pinExpiryKey(p)); err != nil {
		return err
	}
	return t.b.Delete(tablePins, pinKey(p.Kind, p.Repo, p.Digest, p.Client))
}

// ExpiredPins returns up to max pins that ended at or before now, earliest
// first. It reads only those entries of the expiry index.
func (t *Tx) ExpiredPins(now int64, max int) ([]Pin, error) {
	var out []Pin
	if max <= 0 {
		return out, nil
	}
	each := func(k, _ []byte) (bool, error) {
		p, err := parsePinExpiryKey(k)
		if err != nil {
			return false, err
		}
		if p.Until > now {
			return false, nil
		}
		out = append(out, p)
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
	cur, ok, err := t.Pin(p.Kind, p.Repo, p.Digest, p.Client)
	if err != nil || !ok || cur.Until != p.Until {
		return err
	}
	return t.b.Delete(tablePins, pinKey(p.Kind, p.Repo, p.Digest, p.Client))
}

// ForEachPin calls fn for every pin, live or expired, in key order.
func (t *Tx) ForEachPin(fn func(Pin) error) error {
	return t.b.Scan(tablePins, nil, func(k, v []byte) (bool, error) {
		p, err := parsePinKey(k)
		if err != nil {
			return false, err
		}
		if p.Until, p.Upload, err = decodePinValue(k, v); err != nil {
			return false, err
		}
		return true, fn(p)
	})
}
