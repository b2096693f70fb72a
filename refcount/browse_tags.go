package refcount

import (
	"fmt"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount/manifest"
)

// defaultTagLimit is a tag page's length when the query sets none.
const defaultTagLimit = 100

// TagPage returns a page of repo's tags in name order (ErrNameUnknown
// when absent). The tags before the page are skipped by name, without
// reading what they name.
func (r *Registry) TagPage(repo string, q TagQuery) (*TagPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultTagLimit
	}
	offset := max(q.Offset, 0)
	var page *TagPage
	err := r.db.View(func(tx *kv.Tx) error {
		budget := int64(uniqueBudget)
		s, known, ok, err := statsTx(tx, repo, &budget)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %s", ErrNameUnknown, repo)
		}
		page = &TagPage{Repo: repo, Cached: r.IsCachedRepo(repo), Stats: s, Tags: []TagView{}, Total: int(s.Tags), UniqueUnknown: !known}
		names, _, err := tx.Tags(repo, "", offset+limit)
		if err != nil {
			return err
		}
		if offset >= len(names) {
			return nil
		}
		if err := prefetchTagsTx(tx, repo, names[offset:]); err != nil {
			return err
		}
		for _, tag := range names[offset:] {
			d, ok, err := tx.Tag(repo, tag)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			v, err := tagViewTx(tx, repo, tag, d)
			if err != nil {
				return err
			}
			page.Tags = append(page.Tags, v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// tagViewTx reads one tag's row: its manifest's record, the image's size
// and, for an index, its platforms from the stored bytes.
func tagViewTx(tx *kv.Tx, repo, tag, d string) (TagView, error) {
	v := TagView{Tag: tag, Digest: d}
	m, ok, err := tx.Manifest(repo, d)
	if err != nil || !ok {
		return v, err
	}
	v.MediaType, v.ArtifactType = m.MediaType, m.ArtifactType
	v.Created = time.Unix(0, m.Created).UTC()
	if v.Size, err = imageSizeTx(tx, repo, d); err != nil {
		return v, err
	}
	if manifest.IsIndex(m.MediaType) {
		content, err := tx.ManifestContent(repo, d)
		if err != nil {
			return v, err
		}
		b, err := parseBrowsed(content)
		if err != nil {
			return v, err
		}
		v.Platforms = b.platforms()
	}
	return v, nil
}

// prefetchTagsTx reads in two batches most of what a page of tags reads:
// the tags with their manifests, then those manifests' blobs and
// children. On PostgreSQL that makes a page a few round trips rather than
// several per tag; bbolt reads as it goes either way.
func prefetchTagsTx(tx *kv.Tx, repo string, tags []string) error {
	pf := tx.Prefetch()
	for _, t := range tags {
		pf.TagTarget(repo, t, false)
	}
	if err := pf.Read(); err != nil {
		return err
	}
	for _, t := range tags {
		d, ok, err := tx.Tag(repo, t)
		if err != nil {
			return err
		}
		m, found, err := tx.Manifest(repo, d)
		if err != nil {
			return err
		}
		if !ok || !found {
			continue
		}
		for _, b := range m.Blobs {
			pf.Blob(b)
		}
		for _, ch := range m.Children {
			pf.Manifest(repo, ch, false)
		}
		if manifest.IsIndex(m.MediaType) {
			pf.Manifest(repo, d, true)
		}
	}
	return pf.Read()
}
