package kv

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Blob is the global record of one blob file. It holds only what never
// changes while the record exists, so that no push rewrites it: who links
// and references the blob is in the links and in the blob-to-repository
// index (see BlobUse).
type Blob struct {
	Size int64
	// Created is the registry's clock (Unix ns) at the commit that made
	// the record, 0 for a record written before it was kept. It tells one
	// incarnation of a digest from the next: a blob deleted and pushed
	// again gets a new record, and with it a new Created, while for one
	// record's lifetime the blob's bytes stay where they were stored.
	Created int64
	// Location is where the blob store keeps the bytes of this
	// incarnation, as its driver named them when the upload that made the
	// record was promoted, so that a redirect is signed without asking
	// the store; "" when not known (a record written before locations
	// were kept, or by a store that names bytes by digest alone).
	Location string
}

// Tombstone is a blob record's deletion whose bytes may still be stored.
type Tombstone struct {
	// Gen is new at each deletion, so that the removal of an earlier
	// deletion's bytes never clears a later one's tombstone.
	Gen uint64
	// Location is the deleted record's (Blob.Location): where the bytes
	// are, "" when not known.
	Location string
}

// Hold is an object's lease: Pending holds (a finished upload, a mount, a
// push by digest) that no real reference has taken over yet, all ending at
// Lease (Unix ns). Lease is 0 exactly when Pending is 0.
type Hold struct {
	Lease   int64
	Pending uint64
}

// Link makes a blob visible in one repository.
type Link struct {
	Refs uint64 // manifests of the repository that reference the blob
	Hold
}

// Manifest is a manifest's record, without its bytes.
type Manifest struct {
	Refs uint64 `json:"-"` // tags, parent indexes and a counted subject edge
	Hold `json:"-"`

	Created      int64             `json:"created"`
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Size         int64             `json:"size"`
	Subject      string            `json:"subject,omitempty"`
	Blobs        []string          `json:"blobs,omitempty"`    // distinct blobs it holds
	Children     []string          `json:"children,omitempty"` // distinct child manifests it holds
	Annotations  map[string]string `json:"annotations,omitempty"`
}

func putU64(b []byte, v uint64) { binary.BigEndian.PutUint64(b, v) }
func getU64(b []byte) uint64    { return binary.BigEndian.Uint64(b) }

// maxLocation bounds a blob record's location: a driver's name of an
// object, far shorter.
const maxLocation = 1024

func encodeBlob(b Blob) []byte {
	out := make([]byte, 16, 16+len(b.Location))
	putU64(out, uint64(b.Size))
	putU64(out[8:], uint64(b.Created))
	return append(out, b.Location...)
}

// decodeBlob reads a record of size | created | location, of size |
// created (no location known), or of size alone (written before Created
// was kept: Created 0, unknown), so that old records need no rewrite.
func decodeBlob(v []byte) (Blob, error) {
	switch {
	case len(v) == 8:
		return Blob{Size: int64(getU64(v))}, nil
	case len(v) >= 16 && len(v) <= 16+maxLocation:
		return Blob{Size: int64(getU64(v)), Created: int64(getU64(v[8:])), Location: string(v[16:])}, nil
	}
	return Blob{}, fmt.Errorf("%w: blob record of %d bytes", ErrCorrupt, len(v))
}

func encodeLink(l Link) []byte {
	out := make([]byte, 24)
	putU64(out[0:], l.Refs)
	putU64(out[8:], uint64(l.Lease))
	putU64(out[16:], l.Pending)
	return out
}

func decodeLink(v []byte) (Link, error) {
	if len(v) != 24 {
		return Link{}, fmt.Errorf("%w: link record of %d bytes", ErrCorrupt, len(v))
	}
	return Link{Refs: getU64(v[0:]), Hold: Hold{Lease: int64(getU64(v[8:])), Pending: getU64(v[16:])}}, nil
}

func encodeManifest(m Manifest) ([]byte, error) {
	meta, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 24, 24+len(meta))
	putU64(out[0:], m.Refs)
	putU64(out[8:], uint64(m.Lease))
	putU64(out[16:], m.Pending)
	return append(out, meta...), nil
}

func decodeManifest(v []byte) (Manifest, error) {
	var m Manifest
	if len(v) < 24 {
		return m, fmt.Errorf("%w: manifest record of %d bytes", ErrCorrupt, len(v))
	}
	if err := json.Unmarshal(v[24:], &m); err != nil {
		return m, fmt.Errorf("%w: manifest record: %v", ErrCorrupt, err)
	}
	m.Refs = getU64(v[0:])
	m.Lease = int64(getU64(v[8:]))
	m.Pending = getU64(v[16:])
	return m, nil
}

// LeaseKind says what a lease holds.
type LeaseKind byte

const (
	LeaseLink     LeaseKind = 'l' // a blob link in a repository
	LeaseManifest LeaseKind = 'm' // a manifest in a repository
)

// Lease names one entry of the expiry index.
type Lease struct {
	Expiry int64
	Kind   LeaseKind
	Repo   string
	Digest string
}

func leaseKey(l Lease) []byte {
	k := make([]byte, 9, 9+len(l.Repo)+1+len(l.Digest))
	putU64(k, uint64(l.Expiry))
	k[8] = byte(l.Kind)
	k = append(k, l.Repo...)
	k = append(k, sep)
	return append(k, l.Digest...)
}

func parseLeaseKey(k []byte) (Lease, error) {
	if len(k) < 11 {
		return Lease{}, fmt.Errorf("%w: lease key", ErrCorrupt)
	}
	rest := k[9:]
	for i, c := range rest {
		if c == sep {
			return Lease{Expiry: int64(getU64(k)), Kind: LeaseKind(k[8]), Repo: string(rest[:i]), Digest: string(rest[i+1:])}, nil
		}
	}
	return Lease{}, fmt.Errorf("%w: lease key", ErrCorrupt)
}

func pairKey(a, b string) []byte {
	k := make([]byte, 0, len(a)+1+len(b))
	k = append(k, a...)
	k = append(k, sep)
	return append(k, b...)
}
