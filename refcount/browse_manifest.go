package refcount

import (
	"fmt"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount/manifest"
)

// maxReferrerDepth bounds the referrers tree: a signature of an SBOM of
// an image is depth 2; nothing real goes near 8.
const maxReferrerDepth = 8

// ManifestView resolves reference (a tag or a digest) in repo, among the
// manifests GetManifest serves, and reads what the manifest's page shows.
// ErrNameUnknown for an unknown repository, ErrManifestUnknown for an
// unknown manifest.
func (r *Registry) ManifestView(repo, reference string) (*ManifestView, error) {
	return r.ManifestViewFor(repo, reference, nil)
}

// ManifestViewFor is ManifestView for a caller who sees only the
// repositories visible allows (nil: all): a blob's Images and Repos count
// only those, so that the page tells nothing of the others.
func (r *Registry) ManifestViewFor(repo, reference string, visible func(repo string) bool) (*ManifestView, error) {
	now := r.now()
	var v *ManifestView
	err := r.db.View(func(tx *kv.Tx) error {
		d, m, err := r.resolveTx(tx, repo, reference, now, true)
		if err != nil {
			return fmt.Errorf("%w: %s", err, reference)
		}
		v = &ManifestView{
			Repo: repo, Digest: d, MediaType: m.MediaType, ArtifactType: m.ArtifactType,
			Size: m.Size, Created: time.Unix(0, m.Created).UTC(), Subject: m.Subject,
		}
		if v.Content, err = tx.ManifestContent(repo, d); err != nil {
			return err
		}
		if v.Content == nil {
			return fmt.Errorf("%w: %s has no stored bytes", ErrManifestUnknown, d)
		}
		b, err := parseBrowsed(v.Content)
		if err != nil {
			return err
		}
		v.Annotations = b.Annotations
		if v.ImageSize, err = imageSizeTx(tx, repo, d); err != nil {
			return err
		}
		if v.Tags, err = tx.TagsOf(repo, d); err != nil {
			return err
		}
		if err := blobViewsTx(tx, v, b, visible); err != nil {
			return err
		}
		if manifest.IsIndex(m.MediaType) {
			for _, ch := range b.Manifests {
				v.Children = append(v.Children, ChildView{
					Digest: ch.Digest, MediaType: ch.MediaType, Platform: platform(ch.Platform), Size: ch.Size,
				})
			}
		}
		v.Referrers, err = r.referrerTreeTx(tx, repo, d, now, map[string]bool{d: true}, 1)
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// blobViewsTx fills the config and layers of an image manifest, in the
// manifest's order, each with how the store uses it.
func blobViewsTx(tx *kv.Tx, v *ManifestView, b *browsed, visible func(string) bool) error {
	uses := map[string]kv.BlobUse{}
	view := func(d manifest.Descriptor) (BlobView, error) {
		bv := BlobView{Digest: d.Digest, MediaType: d.MediaType, Size: d.Size}
		rec, ok, err := tx.Blob(d.Digest)
		if err != nil {
			return bv, err
		}
		if ok {
			bv.Size = rec.Size
		}
		u, seen := uses[d.Digest]
		if !seen {
			if u, err = blobUseTx(tx, d.Digest, visible); err != nil {
				return bv, err
			}
			uses[d.Digest] = u
		}
		bv.Images, bv.Repos = int64(u.Refs), int(u.Links)
		return bv, nil
	}
	if b.Config != nil {
		c, err := view(*b.Config)
		if err != nil {
			return err
		}
		v.Config = &c
	}
	for _, l := range b.Layers {
		lv, err := view(l)
		if err != nil {
			return err
		}
		v.Layers = append(v.Layers, lv)
	}
	return nil
}

// blobUseTx is how a blob is used over the repositories visible allows
// (nil: every one): those linking it and the sum of their links' manifest
// references.
func blobUseTx(tx *kv.Tx, d string, visible func(string) bool) (kv.BlobUse, error) {
	var u kv.BlobUse
	repos, err := tx.LinkingRepos(d)
	if err != nil {
		return u, err
	}
	for _, repo := range repos {
		if visible != nil && !visible(repo) {
			continue
		}
		l, ok, err := tx.Link(repo, d)
		if err != nil {
			return u, err
		}
		if ok {
			u.Links++
			u.Refs += l.Refs
		}
	}
	return u, nil
}

// referrerTreeTx lists the referrers of subject the referrers API lists
// (visible ones), each with its own referrers below it, depth levels at
// most. seen holds the manifests already in the tree, so that a cycle of
// subjects ends.
func (r *Registry) referrerTreeTx(tx *kv.Tx, repo, subject string, now int64, seen map[string]bool, depth int) ([]ReferrerNode, error) {
	if depth > maxReferrerDepth {
		return nil, nil
	}
	refs, err := tx.Referrers(repo, subject)
	if err != nil {
		return nil, err
	}
	var out []ReferrerNode
	for _, ref := range refs {
		if seen[ref.Digest] {
			continue
		}
		m, ok, err := tx.Manifest(repo, ref.Digest)
		if err == nil && ok {
			ok, err = r.manifestVisible(tx, m, repo, ref.Digest, now)
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		seen[ref.Digest] = true
		n := ReferrerNode{
			Digest: ref.Digest, MediaType: m.MediaType, ArtifactType: m.ArtifactType,
			Size: m.Size, Created: time.Unix(0, m.Created).UTC(), Annotations: m.Annotations,
		}
		if n.Referrers, err = r.referrerTreeTx(tx, repo, ref.Digest, now, seen, depth+1); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}
