package refcount

import (
	"github.com/kvreg/kvreg/kv"
	"github.com/opencontainers/go-digest"
)

// Helpers named ...Tx run inside the caller's write transaction.

// leaseLive reports whether a lease expiry is still ahead.
func leaseLive(lease, now int64) bool { return lease != 0 && lease > now }

// addHoldTx adds one pending hold and moves the lease to at least expiry.
func addHoldTx(tx *kv.Tx, kind kv.LeaseKind, repo, d string, h *kv.Hold, expiry int64) error {
	h.Pending++
	if h.Lease >= expiry {
		return nil
	}
	if h.Lease != 0 {
		if err := tx.DeleteLease(kv.Lease{Expiry: h.Lease, Kind: kind, Repo: repo, Digest: d}); err != nil {
			return err
		}
	}
	// The hold named no lease or an earlier one (deleted above): the
	// entry of expiry is new.
	h.Lease = expiry
	return tx.PutNewLease(kv.Lease{Expiry: expiry, Kind: kind, Repo: repo, Digest: d})
}

// takeHoldTx: a real reference took over one pending hold; the lease ends
// with the last. Several pushes in flight may hold one object: each keeps
// it until its own manifest arrives. It reports whether there was a hold.
func takeHoldTx(tx *kv.Tx, kind kv.LeaseKind, repo, d string, h *kv.Hold) (bool, error) {
	if h.Pending == 0 {
		return false, nil
	}
	if h.Pending--; h.Pending > 0 {
		return true, nil
	}
	return true, dropHoldTx(tx, kind, repo, d, h)
}

// dropHoldTx ends the lease and every pending hold.
func dropHoldTx(tx *kv.Tx, kind kv.LeaseKind, repo, d string, h *kv.Hold) error {
	if h.Lease != 0 {
		if err := tx.DeleteLease(kv.Lease{Expiry: h.Lease, Kind: kind, Repo: repo, Digest: d}); err != nil {
			return err
		}
	}
	*h = kv.Hold{}
	return nil
}

// takeOverTx is what a manifest does to each object it references: it
// takes over its client's pin (c.pinClient) and, when that pin counts the
// client's upload or there is none, one pending hold (see takePinTx). A
// complete push leaves neither behind: docker HEADs each blob right after
// uploading it, and its pin then counts both.
func (r *Registry) takeOverTx(tx *kv.Tx, c *change, kind kv.LeaseKind, repo, d string, h *kv.Hold) error {
	hold, err := r.takePinTx(tx, c, pinKey{kind: kind, repo: repo, digest: d, client: c.pinClient})
	if err != nil || !hold {
		return err
	}
	_, err = takeHoldTx(tx, kind, repo, d, h)
	return err
}

// keepTx decides the fate of an object whose count is zero: it stays if its
// lease is live, or if a pin is live (the pin becomes its lease).
func (r *Registry) keepTx(tx *kv.Tx, c *change, kind kv.LeaseKind, repo, d string, h *kv.Hold) (bool, error) {
	if leaseLive(h.Lease, c.now) {
		return true, nil
	}
	until, pending, ok, err := r.convertPinTx(tx, c, pinKey{kind: kind, repo: repo, digest: d})
	if err != nil || !ok {
		return false, err
	}
	if err := dropHoldTx(tx, kind, repo, d, h); err != nil {
		return false, err
	}
	// The lease it had ended (or was none) and is deleted: until, later
	// than now, names a new entry.
	h.Lease, h.Pending = until, pending
	return true, tx.PutNewLease(kv.Lease{Expiry: h.Lease, Kind: kind, Repo: repo, Digest: d})
}

// linkBlobTx makes a blob visible in a repository under a lease, creating
// its record if needed (an upload, whose bytes the blob store keeps at loc:
// "" if not known) or requiring it (a mount: size < 0). A record that
// exists keeps its location, unless the upload created the bytes anew.
func (r *Registry) linkBlobTx(tx *kv.Tx, c *change, repo, d string, size int64, loc string) error {
	// What it reads, in one batch: the blob, the link, the repository and
	// the uploading client's pin row (a link's earlier lease is read after
	// the link; the lease it puts is new and not read).
	upload := size >= 0 && c.pinClient != ""
	pf := tx.Prefetch().Blob(d).Link(repo, d).Repo(repo)
	if upload && r.opts.Shared {
		pf.Pin(kv.LeaseLink, repo, d, c.pinClient)
	}
	if err := pf.Read(); err != nil {
		return err
	}
	b, ok, err := tx.Blob(d)
	if err != nil {
		return err
	}
	switch {
	case !ok && size < 0:
		return ErrBlobUnknown
	case !ok:
		if err := tx.CreateBlob(d, kv.Blob{Size: size, Created: c.now, Location: loc}); err != nil {
			return err
		}
	case loc != "" && loc != b.Location:
		// The upload created the blob's bytes although a record was
		// there: the store had lost them. The record names the new ones.
		b.Location = loc
		if err := tx.RewriteBlob(d, b); err != nil {
			return err
		}
	}
	l, _, err := tx.Link(repo, d)
	if err != nil {
		return err
	}
	if err := addHoldTx(tx, kv.LeaseLink, repo, d, &l.Hold, c.grace); err != nil {
		return err
	}
	if err := tx.PutLink(repo, d, l); err != nil || !upload {
		return err
	}
	return r.uploadPinTx(tx, c, pinKey{kind: kv.LeaseLink, repo: repo, digest: d, client: c.pinClient})
}

// releaseLinkTx removes one manifest's edge to a blob link.
func (r *Registry) releaseLinkTx(tx *kv.Tx, c *change, repo, d string) error {
	l, ok, err := tx.Link(repo, d)
	if err != nil || !ok {
		return err
	}
	if l.Refs > 0 {
		l.Refs--
	}
	if l.Refs == 0 {
		keep, err := r.keepTx(tx, c, kv.LeaseLink, repo, d, &l.Hold)
		if err != nil {
			return err
		}
		if !keep {
			return r.deleteLinkTx(tx, c, repo, d, l)
		}
	}
	return tx.PutLink(repo, d, l)
}

// deleteLinkTx removes a link and, if it was the last, the blob record.
func (r *Registry) deleteLinkTx(tx *kv.Tx, c *change, repo, d string, l kv.Link) error {
	if err := dropHoldTx(tx, kv.LeaseLink, repo, d, &l.Hold); err != nil {
		return err
	}
	b, ok, err := tx.Blob(d)
	if err != nil {
		return err
	}
	linked, err := tx.DeleteLink(repo, d)
	if err != nil {
		return err
	}
	if r.IsCachedRepo(repo) {
		c.gone = append(c.gone, goneRecord{repo: repo, digest: d})
	}
	if linked || !ok {
		return nil
	}
	if err := tx.DeleteBlob(d); err != nil {
		return err
	}
	if dg, err := digest.Parse(d); err == nil {
		c.freed = append(c.freed, dg)
		c.Reclaimed += b.Size
		c.removed.blobs = append(c.removed.blobs, FreedBlob{Digest: d, Size: b.Size})
	}
	return nil
}

// releaseManifestTx removes one edge to a manifest.
func (r *Registry) releaseManifestTx(tx *kv.Tx, c *change, repo, d string) error {
	m, ok, err := tx.Manifest(repo, d)
	if err != nil || !ok {
		return err
	}
	if m.Refs > 0 {
		m.Refs--
	}
	if m.Refs == 0 {
		keep, err := r.keepTx(tx, c, kv.LeaseManifest, repo, d, &m.Hold)
		if err != nil {
			return err
		}
		if !keep {
			return r.deleteManifestTx(tx, c, repo, d, m)
		}
	}
	return tx.PutManifest(repo, d, m, nil)
}

// deleteManifestTx deletes a manifest, its tags, and releases everything it
// held: its blobs, its children and the referrers its subject edges held.
func (r *Registry) deleteManifestTx(tx *kv.Tx, c *change, repo, d string, m kv.Manifest) error {
	tags, err := tx.TagsOf(repo, d)
	if err != nil {
		return err
	}
	if err := r.guardDeleteTagsTx(tx, repo, d, tags); err != nil {
		return err
	}
	if err := r.prefetchDeleteTx(tx, c, repo, m, tags); err != nil {
		return err
	}
	c.removed.manifest(repo, d, m, tags)
	for _, t := range tags {
		if err := r.deleteTagTx(tx, repo, t); err != nil {
			return err
		}
	}
	if err := dropHoldTx(tx, kv.LeaseManifest, repo, d, &m.Hold); err != nil {
		return err
	}
	if m.Subject != "" {
		if err := tx.DeleteReferrer(repo, m.Subject, d); err != nil {
			return err
		}
	}
	// Referrers held by this manifest lose that edge but stay indexed,
	// so that the edge comes back if the subject is pushed again.
	refs, err := tx.Referrers(repo, d)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		if ref.Counted {
			if err := tx.PutReferrer(repo, d, ref.Digest, false); err != nil {
				return err
			}
		}
	}
	// Delete first: the releases below may reach the repository's last
	// objects, and must not find this one.
	if err := tx.DeleteManifest(repo, d); err != nil {
		return err
	}
	if err := r.forgetManifestTx(tx, c, repo, d, m.Size); err != nil {
		return err
	}
	for _, child := range m.Children {
		if err := r.releaseManifestTx(tx, c, repo, child); err != nil {
			return err
		}
	}
	for _, b := range m.Blobs {
		if err := r.releaseLinkTx(tx, c, repo, b); err != nil {
			return err
		}
	}
	for _, ref := range refs {
		if ref.Counted {
			if err := r.releaseManifestTx(tx, c, repo, ref.Digest); err != nil {
				return err
			}
		}
	}
	return nil
}

// prefetchDeleteTx reads in two batches what deleting a manifest reads
// one record at a time: its tags, the links of its blobs and the records
// of its children; then, for each whose last edge goes with it and whose
// lease has ended, what the cascade reads next (its pin row, its lease
// entry, a blob's record).
func (r *Registry) prefetchDeleteTx(tx *kv.Tx, c *change, repo string, m kv.Manifest, tags []string) error {
	pf := tx.Prefetch().Repo(repo)
	for _, t := range tags {
		pf.Tag(repo, t)
	}
	for _, b := range m.Blobs {
		pf.Link(repo, b)
	}
	for _, ch := range m.Children {
		pf.Manifest(repo, ch, false)
	}
	if err := pf.Read(); err != nil {
		return err
	}
	last := func(kind kv.LeaseKind, d string, refs uint64, h kv.Hold) {
		if refs > 1 || leaseLive(h.Lease, c.now) {
			return
		}
		if h.Lease != 0 {
			pf.Lease(kv.Lease{Expiry: h.Lease, Kind: kind, Repo: repo, Digest: d})
		}
		if kind == kv.LeaseLink {
			pf.Blob(d)
		}
	}
	for _, b := range m.Blobs {
		l, ok, err := tx.Link(repo, b)
		if err != nil {
			return err
		}
		if ok {
			last(kv.LeaseLink, b, l.Refs, l.Hold)
		}
	}
	for _, ch := range m.Children {
		cm, ok, err := tx.Manifest(repo, ch)
		if err != nil {
			return err
		}
		if ok {
			last(kv.LeaseManifest, ch, cm.Refs, cm.Hold)
		}
	}
	return pf.Read()
}

// holdsTx reports whether from holds target, directly or through other
// manifests (children and counted referrers). A subject edge that would
// close such a loop is not counted, or neither object could ever be freed.
func holdsTx(tx *kv.Tx, repo, from, target string) (bool, error) {
	seen := map[string]bool{}
	stack := []string{from}
	for len(stack) > 0 && len(seen) < 100000 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if d == target {
			return true, nil
		}
		if seen[d] {
			continue
		}
		seen[d] = true
		m, ok, err := tx.Manifest(repo, d)
		if err != nil {
			return false, err
		}
		if ok {
			stack = append(stack, m.Children...)
		}
		refs, err := tx.Referrers(repo, d)
		if err != nil {
			return false, err
		}
		for _, ref := range refs {
			if ref.Counted {
				stack = append(stack, ref.Digest)
			}
		}
	}
	return false, nil
}

// sweepTx ends up to max expired leases, deleting what they alone held.
func (r *Registry) sweepTx(tx *kv.Tx, c *change, max int) (int, error) {
	leases, err := tx.ExpiredLeases(c.now, max)
	if err != nil {
		return 0, err
	}
	for _, l := range leases {
		if err := tx.DeleteLease(l); err != nil {
			return 0, err
		}
		switch l.Kind {
		case kv.LeaseLink:
			link, ok, err := tx.Link(l.Repo, l.Digest)
			if err != nil {
				return 0, err
			}
			if !ok || link.Lease != l.Expiry {
				continue // a stale index entry
			}
			link.Hold = kv.Hold{} // its index entry is gone already
			if link.Refs == 0 {
				keep, err := r.keepTx(tx, c, kv.LeaseLink, l.Repo, l.Digest, &link.Hold)
				if err != nil {
					return 0, err
				}
				if !keep {
					if err := r.deleteLinkTx(tx, c, l.Repo, l.Digest, link); err != nil {
						return 0, err
					}
					continue
				}
			}
			if err := tx.PutLink(l.Repo, l.Digest, link); err != nil {
				return 0, err
			}
		case kv.LeaseManifest:
			m, ok, err := tx.Manifest(l.Repo, l.Digest)
			if err != nil {
				return 0, err
			}
			if !ok || m.Lease != l.Expiry {
				continue
			}
			m.Hold = kv.Hold{}
			if m.Refs == 0 {
				keep, err := r.keepTx(tx, c, kv.LeaseManifest, l.Repo, l.Digest, &m.Hold)
				if err != nil {
					return 0, err
				}
				if !keep {
					if err := r.deleteManifestTx(tx, c, l.Repo, l.Digest, m); err != nil {
						return 0, err
					}
					continue
				}
			}
			if err := tx.PutManifest(l.Repo, l.Digest, m, nil); err != nil {
				return 0, err
			}
		}
	}
	return len(leases), nil
}
