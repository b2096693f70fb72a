package refcount

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount/manifest"
	"github.com/opencontainers/go-digest"
)

// PutResult tells what a manifest PUT stored.
type PutResult struct {
	Digest    digest.Digest
	Subject   string
	Tags      []string
	Reclaimed int64 // bytes freed by overwriting tags
}

// PutManifest stores a manifest under a digest (byDigest non-empty) or
// adds no tag, and points each of tags at it. Everything it references that
// must exist is checked, and its edges added, in the same transaction that
// moves the tags; whatever an overwritten tag alone held is freed in it too.
// client is who pushes it (api's clientKey): the pins of the objects it
// references that a HEAD of client wrote are taken over, others' are left.
func (r *Registry) PutManifest(repo string, byDigest digest.Digest, tags []string, contentType string, body []byte, client string) (PutResult, error) {
	return r.PutManifestBy(Origin{}, repo, byDigest, tags, contentType, body, client)
}

// PutManifestBy is PutManifest made by o, as its events say.
func (r *Registry) PutManifestBy(o Origin, repo string, byDigest digest.Digest, tags []string, contentType string, body []byte, client string) (PutResult, error) {
	p, err := manifest.Parse(contentType, body)
	if err != nil {
		return PutResult{}, err
	}
	alg := digest.SHA256
	if byDigest != "" {
		alg = byDigest.Algorithm()
	}
	d := alg.FromBytes(body)
	if byDigest != "" && d != byDigest {
		return PutResult{}, fmt.Errorf("%w: manifest is %s, not %s", ErrDigestMismatch, d, byDigest)
	}
	res := PutResult{Digest: d, Subject: p.Subject, Tags: tags}
	c, err := r.update(func(tx *kv.Tx, c *change) error {
		c.pinClient, c.origin = client, o
		if err := r.putManifestTx(tx, c, repo, string(d), p, tags, body); err != nil {
			return err
		}
		return r.quotaCheckTx(tx, repo)
	})
	if err != nil {
		return PutResult{}, err
	}
	res.Reclaimed = c.Reclaimed
	return res, nil
}

func (r *Registry) putManifestTx(tx *kv.Tx, c *change, repo, d string, p *manifest.Parsed, tags []string, body []byte) error {
	if err := r.prefetchPutTx(tx, repo, d, p, tags, c.pinClient); err != nil {
		return err
	}
	_, exists, err := tx.Manifest(repo, d)
	if err != nil {
		return err
	}
	if !exists {
		if err := r.addManifestTx(tx, c, repo, d, p, body); err != nil {
			return err
		}
	}
	m, _, err := tx.Manifest(repo, d)
	if err != nil {
		return err
	}
	if exists {
		// A push of a stored manifest still ends the push in flight: the
		// leases of blobs it uploaded again and the pins of blobs it was
		// told exist give way to the manifest's edges.
		if err := r.takeOverAllTx(tx, c, repo, m); err != nil {
			return err
		}
	}
	var moved []string // digests that lost a tag
	for _, t := range tags {
		old, ok, err := tx.Tag(repo, t)
		if err != nil {
			return err
		}
		if ok && old == d {
			continue
		}
		if err := r.guardMoveTx(repo, t, old, d); err != nil {
			return err
		}
		if err := tx.PutTag(repo, t, d, c.now); err != nil {
			return err
		}
		m.Refs++
		if ok {
			c.tagMoved(repo, t, old, d)
			moved = append(moved, old)
			if err := r.forgetTagTx(tx, repo, t); err != nil {
				return err
			}
		}
	}
	if len(tags) > 0 {
		// A tag is a real reference: it takes over a hold of a push by digest.
		if _, err := takeHoldTx(tx, kv.LeaseManifest, repo, d, &m.Hold); err != nil {
			return err
		}
	} else if m.Refs == 0 {
		// Pushed by digest and nothing holds it yet: a hold covers the
		// push in flight (the index or tag that will reference it).
		if err := addHoldTx(tx, kv.LeaseManifest, repo, d, &m.Hold, c.grace); err != nil {
			return err
		}
	}
	if err := tx.PutManifest(repo, d, m, nil); err != nil {
		return err
	}
	for _, old := range moved {
		if err := r.releaseManifestTx(tx, c, repo, old); err != nil {
			return err
		}
	}
	c.pushed(repo, d, m, tags)
	return r.retainAfterPushTx(tx, c, repo, tags)
}

// prefetchPutTx reads in one batch what a manifest PUT reads of the
// records its keys are known for: the manifest, its repository and tags,
// and for each object it references, its link or record, its blob record
// and its pin row of the manifest's client.
func (r *Registry) prefetchPutTx(tx *kv.Tx, repo, d string, p *manifest.Parsed, tags []string, client string) error {
	pf := tx.Prefetch().Manifest(repo, d, false).Repo(repo)
	for _, t := range tags {
		pf.Tag(repo, t)
	}
	for _, b := range p.Blobs {
		pf.Link(repo, b).Blob(b).QuotaBlob(repo, b)
		if r.opts.Shared {
			pf.Pin(kv.LeaseLink, repo, b, client)
		}
	}
	mans := p.Children
	if p.Subject != "" {
		mans = append(mans[:len(mans):len(mans)], p.Subject)
	}
	for _, m := range mans {
		pf.Manifest(repo, m, false)
		if r.opts.Shared {
			pf.Pin(kv.LeaseManifest, repo, m, client)
		}
	}
	return pf.Read()
}

// prefetchLeasesTx reads in one batch the lease entries of the holds that
// a manifest's edges are about to take over (a hold's last taker deletes
// its lease).
func prefetchLeasesTx(tx *kv.Tx, repo string, links map[string]kv.Link, children map[string]kv.Manifest) error {
	pf := tx.Prefetch()
	for b, l := range links {
		if l.Lease != 0 {
			pf.Lease(kv.Lease{Expiry: l.Lease, Kind: kv.LeaseLink, Repo: repo, Digest: b})
		}
	}
	for ch, m := range children {
		if m.Lease != 0 {
			pf.Lease(kv.Lease{Expiry: m.Lease, Kind: kv.LeaseManifest, Repo: repo, Digest: ch})
		}
	}
	return pf.Read()
}

// takeOverAllTx: a stored manifest pushed again takes over one hold (or
// pin) of each object it references, as a new one does.
func (r *Registry) takeOverAllTx(tx *kv.Tx, c *change, repo string, m kv.Manifest) error {
	for _, b := range m.Blobs {
		l, ok, err := tx.Link(repo, b)
		if err != nil || !ok {
			return err
		}
		if err := r.takeOverTx(tx, c, kv.LeaseLink, repo, b, &l.Hold); err != nil {
			return err
		}
		if err := tx.PutLink(repo, b, l); err != nil {
			return err
		}
	}
	for _, ch := range m.Children {
		cm, ok, err := tx.Manifest(repo, ch)
		if err != nil || !ok {
			return err
		}
		if err := r.takeOverTx(tx, c, kv.LeaseManifest, repo, ch, &cm.Hold); err != nil {
			return err
		}
		if err := tx.PutManifest(repo, ch, cm, nil); err != nil {
			return err
		}
	}
	return nil
}

// addManifestTx creates a manifest and its edges. Nothing is written unless
// everything it must reference is there.
func (r *Registry) addManifestTx(tx *kv.Tx, c *change, repo, d string, p *manifest.Parsed, body []byte) error {
	m := kv.Manifest{
		Created:      c.now,
		MediaType:    p.MediaType,
		ArtifactType: p.ArtifactType,
		Size:         int64(len(body)),
		Subject:      p.Subject,
		Annotations:  p.Annotations,
	}
	var missing, wrongSize []string
	links := map[string]kv.Link{}
	for _, b := range p.Blobs {
		l, ok, err := tx.Link(repo, b)
		if err == nil && ok {
			ok, err = r.linkVisible(tx, l, repo, b, c.now)
		}
		if err != nil {
			return err
		}
		if !ok {
			if !p.Optional[b] {
				missing = append(missing, b)
			}
			continue
		}
		if rec, ok, err := tx.Blob(b); err != nil {
			return err
		} else if ok && rec.Size != p.Sizes[b] {
			wrongSize = append(wrongSize, fmt.Sprintf("%s is %d bytes, not %d", b, rec.Size, p.Sizes[b]))
		}
		links[b] = l
		m.Blobs = append(m.Blobs, b)
	}
	children := map[string]kv.Manifest{}
	for _, ch := range p.Children {
		cm, ok, err := tx.Manifest(repo, ch)
		if err == nil && ok {
			ok, err = r.manifestVisible(tx, cm, repo, ch, c.now)
		}
		if err != nil {
			return err
		}
		if !ok {
			missing = append(missing, ch)
			continue
		}
		if cm.Size != p.Sizes[ch] {
			wrongSize = append(wrongSize, fmt.Sprintf("%s is %d bytes, not %d", ch, cm.Size, p.Sizes[ch]))
		}
		children[ch] = cm
		m.Children = append(m.Children, ch)
	}
	if len(missing) > 0 {
		return &MissingError{Digests: missing}
	}
	if len(wrongSize) > 0 {
		return fmt.Errorf("%w: descriptor sizes differ from the content: %s", manifest.ErrInvalid, strings.Join(wrongSize, "; "))
	}
	if err := prefetchLeasesTx(tx, repo, links, children); err != nil {
		return err
	}
	for _, b := range m.Blobs {
		l := links[b]
		l.Refs++
		if err := r.takeOverTx(tx, c, kv.LeaseLink, repo, b, &l.Hold); err != nil {
			return err
		}
		if err := tx.PutLink(repo, b, l); err != nil {
			return err
		}
	}
	for _, ch := range m.Children {
		cm := children[ch]
		cm.Refs++
		if err := r.takeOverTx(tx, c, kv.LeaseManifest, repo, ch, &cm.Hold); err != nil {
			return err
		}
		if err := tx.PutManifest(repo, ch, cm, nil); err != nil {
			return err
		}
	}
	if err := tx.PutManifest(repo, d, m, body); err != nil {
		return err
	}
	// The subject, if present, holds this manifest.
	if p.Subject != "" {
		counted := false
		sm, ok, err := tx.Manifest(repo, p.Subject)
		if err == nil && ok {
			ok, err = r.manifestVisible(tx, sm, repo, p.Subject, c.now)
		}
		if err != nil {
			return err
		} else if ok {
			loop, err := holdsTx(tx, repo, d, p.Subject)
			if err != nil {
				return err
			}
			if !loop {
				m.Refs++
				counted = true
			}
		}
		if err := tx.PutReferrer(repo, p.Subject, d, counted); err != nil {
			return err
		}
		if err := tx.PutManifest(repo, d, m, nil); err != nil {
			return err
		}
	}
	// Referrers pushed before this manifest are now held by it.
	refs, err := tx.Referrers(repo, d)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		if ref.Counted {
			continue
		}
		rm, ok, err := tx.Manifest(repo, ref.Digest)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		loop, err := holdsTx(tx, repo, ref.Digest, d)
		if err != nil {
			return err
		}
		if loop {
			continue
		}
		rm.Refs++
		if _, err := takeHoldTx(tx, kv.LeaseManifest, repo, ref.Digest, &rm.Hold); err != nil {
			return err
		}
		if err := tx.PutManifest(repo, ref.Digest, rm, nil); err != nil {
			return err
		}
		if err := tx.PutReferrer(repo, d, ref.Digest, true); err != nil {
			return err
		}
	}
	return nil
}

func (r *Registry) manifestVisible(tx *kv.Tx, m kv.Manifest, repo, d string, now int64) (bool, error) {
	if m.Refs > 0 || leaseLive(m.Lease, now) {
		return true, nil
	}
	return r.pinLive(tx, pinKey{kind: kv.LeaseManifest, repo: repo, digest: d}, now)
}

// ManifestInfo describes a stored manifest.
type ManifestInfo struct {
	Digest    digest.Digest
	MediaType string
	Size      int64
	Content   []byte // nil unless asked for
}

// resolveTx turns a tag or digest into a visible manifest's digest.
// With content, it reads the manifest's bytes in the same batch as its
// record, for the caller to read next.
func (r *Registry) resolveTx(tx *kv.Tx, repo, reference string, now int64, content bool) (string, kv.Manifest, error) {
	d := reference
	// Everything it may read of the manifest, in one batch, the View's
	// first read: the whole View is one round trip on PostgreSQL. By tag,
	// the batch reads the manifest the tag names; not its pin row, read
	// only for a manifest that nothing references (a tag does).
	pf := tx.Prefetch().Repo(repo)
	_, notDigest := blobs.ParseDigest(reference)
	byTag := notDigest != nil
	if byTag {
		pf.TagTarget(repo, reference, content)
	} else {
		pf.Manifest(repo, d, content)
	}
	if err := pf.Read(); err != nil {
		return "", kv.Manifest{}, err
	}
	if byTag {
		t, ok, err := tx.Tag(repo, reference)
		if err != nil {
			return "", kv.Manifest{}, err
		}
		if !ok {
			return "", kv.Manifest{}, r.unknownTx(tx, repo, ErrManifestUnknown)
		}
		d = t
	}
	m, ok, err := tx.Manifest(repo, d)
	if err == nil && ok {
		ok, err = r.manifestVisible(tx, m, repo, d, now)
	}
	if err != nil {
		return "", m, err
	}
	if !ok {
		return "", m, r.unknownTx(tx, repo, ErrManifestUnknown)
	}
	return d, m, nil
}

func (r *Registry) unknownTx(tx *kv.Tx, repo string, err error) error {
	exists, rerr := tx.RepoExists(repo)
	if rerr != nil {
		return rerr
	}
	if !exists {
		return fmt.Errorf("%w: %w", err, ErrNameUnknown)
	}
	return err
}

// GetManifest returns a manifest by tag or digest; with content, its bytes.
// It pins nothing: pull clients HEAD manifests all the time, and a pin would
// keep a deleted image's bytes after the DELETE that should free them.
func (r *Registry) GetManifest(repo, reference string, content bool) (ManifestInfo, error) {
	var info ManifestInfo
	now := r.now()
	err := r.db.View(func(tx *kv.Tx) error {
		d, m, err := r.resolveTx(tx, repo, reference, now, content)
		if err != nil {
			return err
		}
		info = ManifestInfo{Digest: digest.Digest(d), MediaType: m.MediaType, Size: m.Size}
		if content {
			if info.Content, err = tx.ManifestContent(repo, d); err != nil {
				return err
			}
			if info.Content == nil {
				return ErrManifestUnknown
			}
		}
		return nil
	})
	return info, err
}

// DeleteTag removes a tag and frees what only it held.
func (r *Registry) DeleteTag(repo, tag string) (int64, error) {
	return r.DeleteTagBy(Origin{}, repo, tag)
}

// DeleteTagBy is DeleteTag made by o, as its event says.
func (r *Registry) DeleteTagBy(o Origin, repo, tag string) (int64, error) {
	c, err := r.update(withOrigin(o, withDeleteEvent(repo, tag, "", r.deleteTagFn(repo, tag))))
	if err != nil {
		return 0, err
	}
	return c.Reclaimed, nil
}

// deleteTagFn is DeleteTag's transaction, which RemovePlan also runs.
func (r *Registry) deleteTagFn(repo, tag string) func(tx *kv.Tx, c *change) error {
	return func(tx *kv.Tx, c *change) error {
		d, ok, err := tx.Tag(repo, tag)
		if err != nil {
			return err
		}
		if !ok {
			return r.unknownTx(tx, repo, ErrManifestUnknown)
		}
		if err := r.guardDeleteTagsTx(tx, repo, d, []string{tag}); err != nil {
			return err
		}
		if err := r.deleteTagTx(tx, repo, tag); err != nil {
			return err
		}
		c.removed.tag(repo, tag)
		return r.releaseManifestTx(tx, c, repo, d)
	}
}

// DeleteManifest removes a manifest by digest with every tag on it, and
// frees what only it held. It refuses while an index of the repository
// references the manifest, so that no index is left broken.
func (r *Registry) DeleteManifest(repo string, d digest.Digest) (int64, error) {
	return r.DeleteManifestBy(Origin{}, repo, d)
}

// DeleteManifestBy is DeleteManifest made by o, as its event says.
func (r *Registry) DeleteManifestBy(o Origin, repo string, d digest.Digest) (int64, error) {
	c, err := r.update(withOrigin(o, withDeleteEvent(repo, "", string(d), r.deleteManifestFn(repo, d))))
	if err != nil {
		return 0, err
	}
	return c.Reclaimed, nil
}

// deleteManifestFn is DeleteManifest's transaction, which RemovePlan also
// runs.
func (r *Registry) deleteManifestFn(repo string, d digest.Digest) func(tx *kv.Tx, c *change) error {
	return func(tx *kv.Tx, c *change) error {
		pf := tx.Prefetch().Manifest(repo, string(d), false)
		if err := pf.Read(); err != nil {
			return err
		}
		m, ok, err := tx.Manifest(repo, string(d))
		if err != nil {
			return err
		}
		if !ok {
			return r.unknownTx(tx, repo, ErrManifestUnknown)
		}
		tags, err := tx.TagsOf(repo, string(d))
		if err != nil {
			return err
		}
		held := uint64(len(tags))
		if m.Subject != "" {
			refs, err := tx.Referrers(repo, m.Subject)
			if err != nil {
				return err
			}
			for _, ref := range refs {
				if ref.Digest == string(d) && ref.Counted {
					held++
				}
			}
		}
		if m.Refs > held {
			return fmt.Errorf("%w: manifest %s is referenced by %d index(es) of %s; delete them first", ErrInUse, d, m.Refs-held, repo)
		}
		if err := r.dropPinTx(tx, c, pinKey{kind: kv.LeaseManifest, repo: repo, digest: string(d)}); err != nil {
			return err
		}
		return r.deleteManifestTx(tx, c, repo, string(d), m)
	}
}

// Tags lists up to n tags of repo after last (n < 0: all).
func (r *Registry) Tags(repo, last string, n int) ([]string, bool, error) {
	var tags []string
	var more bool
	err := r.db.View(func(tx *kv.Tx) error {
		exists, err := tx.RepoExists(repo)
		if err != nil {
			return err
		}
		if !exists {
			return ErrNameUnknown
		}
		tags, more, err = tx.Tags(repo, last, n)
		return err
	})
	return tags, more, err
}

// Catalog lists up to n repositories after last (n < 0: all).
func (r *Registry) Catalog(last string, n int) ([]string, bool, error) {
	var repos []string
	var more bool
	err := r.db.View(func(tx *kv.Tx) error {
		var err error
		repos, more, err = tx.Repos(last, n)
		return err
	})
	return repos, more, err
}

// Referrers lists the manifests of repo whose subject is d, optionally only
// those of one artifact type.
func (r *Registry) Referrers(repo string, d digest.Digest, artifactType string) ([]Descriptor, error) {
	out := []Descriptor{}
	now := r.now()
	err := r.db.View(func(tx *kv.Tx) error {
		refs, err := tx.Referrers(repo, string(d))
		if err != nil {
			return err
		}
		for _, ref := range refs {
			m, ok, err := tx.Manifest(repo, ref.Digest)
			if err == nil && ok {
				ok, err = r.manifestVisible(tx, m, repo, ref.Digest, now)
			}
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if artifactType != "" && m.ArtifactType != artifactType {
				continue
			}
			out = append(out, Descriptor{
				MediaType:    m.MediaType,
				Digest:       ref.Digest,
				Size:         m.Size,
				ArtifactType: m.ArtifactType,
				Annotations:  m.Annotations,
			})
		}
		return nil
	})
	return out, err
}

// IsMissing reports whether err lists content a manifest lacks.
func IsMissing(err error) (*MissingError, bool) {
	var me *MissingError
	ok := errors.As(err, &me)
	return me, ok
}
