package kv

import "github.com/kvreg/kvreg/kv/backend"

// Prefetch gathers the records a transaction is about to read, to read
// them in one exchange with the database (Read) where the backend can
// (backend.BatchGetter); the transaction's reads of them are then answered
// from memory. It decides nothing and changes no value read: the
// transaction reads what it would have read, only sooner. Each method
// names the records of one kind that the matching Tx method reads.
type Prefetch struct {
	t    *Tx
	keys []backend.Key
}

// Prefetch starts a list of records to read at once.
func (t *Tx) Prefetch() *Prefetch { return &Prefetch{t: t} }

func (p *Prefetch) add(table, key []byte) *Prefetch {
	p.keys = append(p.keys, backend.Key{Table: table, Key: key})
	return p
}

// Blob is what Tx.Blob reads.
func (p *Prefetch) Blob(digest string) *Prefetch { return p.add(tableBlobs, []byte(digest)) }

// Link is what Tx.Link reads.
func (p *Prefetch) Link(repo, digest string) *Prefetch {
	return p.add(tableLinks, repoKey(repo, digest))
}

// Manifest is what Tx.Manifest reads; with content, what
// Tx.ManifestContent reads too.
func (p *Prefetch) Manifest(repo, digest string, content bool) *Prefetch {
	p.add(tableManifests, repoKey(repo, digest))
	if content {
		p.add(tableContent, repoKey(repo, digest))
	}
	return p
}

// Cached is what Tx.Cached reads.
func (p *Prefetch) Cached(repo, digest string) *Prefetch {
	return p.add(tableCached, repoKey(repo, digest))
}

// Tombstone is what Tx.Tombstone reads.
func (p *Prefetch) Tombstone(digest string) *Prefetch {
	return p.add(tableTombstones, []byte(digest))
}

// UploadState is what Tx.UploadState reads.
func (p *Prefetch) UploadState(id string) *Prefetch {
	return p.add(tableUploadStates, []byte(id))
}

// Tag is what Tx.Tag reads.
func (p *Prefetch) Tag(repo, tag string) *Prefetch { return p.add(tableTags, repoKey(repo, tag)) }

// TagTarget is what Tx.Tag reads and, in the same batch, what
// Tx.Manifest reads of the manifest the tag names (with content, what
// Tx.ManifestContent reads too).
func (p *Prefetch) TagTarget(repo, tag string, content bool) *Prefetch {
	p.Tag(repo, tag)
	of := len(p.keys)
	p.keys = append(p.keys, backend.Key{Table: tableManifests, Key: repoKey(repo, ""), Of: of})
	if content {
		p.keys = append(p.keys, backend.Key{Table: tableContent, Key: repoKey(repo, ""), Of: of})
	}
	return p
}

// Repo is what Tx.RepoExists reads (and every write that may create the
// repository).
func (p *Prefetch) Repo(repo string) *Prefetch { return p.add(tableRepos, []byte(repo)) }

// Lease is what Tx.PutLease and Tx.DeleteLease read of l.
func (p *Prefetch) Lease(l Lease) *Prefetch { return p.add(tableLeases, leaseKey(l)) }

// Pin is what Tx.Pin reads of one client's row (and Tx.DeletePin,
// Tx.PutPin). Tx.Pins, every client's rows, is a range read: no batch
// holds it.
func (p *Prefetch) Pin(kind LeaseKind, repo, digest, client string) *Prefetch {
	return p.add(tablePins, pinKey(kind, repo, digest, client))
}

// Read reads every record gathered, in one exchange where the backend
// can, and empties the list. On a backend that reads keys one by one
// (bbolt) it reads them now, which costs as little as reading them later.
func (p *Prefetch) Read() error {
	bg, ok := p.t.b.(backend.BatchGetter)
	if !ok || len(p.keys) == 0 {
		p.keys = p.keys[:0]
		return nil
	}
	_, err := bg.GetBatch(p.keys)
	p.keys = p.keys[:0]
	return err
}
