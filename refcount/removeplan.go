package refcount

import (
	"errors"
	"fmt"
	"sort"

	"github.com/kvreg/kvreg/kv"
)

// FreedBlob is a blob whose record a delete removed (and its file after
// commit).
type FreedBlob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// RemovedManifest is a manifest a delete removed.
type RemovedManifest struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	MediaType  string `json:"mediaType"`
	Size       int64  `json:"size"`
}

// removal is what a write transaction deleted, in the order it did, for
// the report of a delete.
type removal struct {
	tags      []string // REPO:TAG
	manifests []RemovedManifest
	blobs     []FreedBlob
}

func (x *removal) tag(repo, tag string) { x.tags = append(x.tags, repo+":"+tag) }

// manifest records a manifest deleted with the tags still on it.
func (x *removal) manifest(repo, d string, m kv.Manifest, tags []string) {
	x.manifests = append(x.manifests, RemovedManifest{Repository: repo, Digest: d, MediaType: m.MediaType, Size: m.Size})
	for _, t := range tags {
		x.tag(repo, t)
	}
}

// since is what was recorded after mark (an earlier copy of x), as a
// report's lists.
func (x removal) since(mark removal) removal {
	return removal{
		tags:      append([]string(nil), x.tags[len(mark.tags):]...),
		manifests: append([]RemovedManifest(nil), x.manifests[len(mark.manifests):]...),
		blobs:     append([]FreedBlob(nil), x.blobs[len(mark.blobs):]...),
	}
}

// errPlanned ends a dry run's transaction once its figures are taken: the
// transaction rolls back, and RemovePlan turns it into success.
var errPlanned = errors.New("refcount: dry run rolled back")

// RemovePlan reports what Remove(target) would delete and reclaim now,
// changing nothing: it runs the very transaction of the delete and rolls
// it back. Nothing is written, no file removed and no pin in memory
// forgotten (finish does that, and it does not run).
func (r *Registry) RemovePlan(target string) (*RemoveReport, error) {
	return r.remove(target, true)
}

// remove runs the delete of target's transaction, committed (then
// finished) or, with dry, rolled back. The figures are the delete's own:
// what it removed after the transaction's sweep of expired leases, taken
// from its last attempt (a transaction may run more than once).
func (r *Registry) remove(target string, dry bool) (*RemoveReport, error) {
	return r.removeBy(Origin{}, target, dry)
}

// RemoveBy is Remove for a caller the delete's event names (origin).
func (r *Registry) RemoveBy(o Origin, target string) (*RemoveReport, error) {
	return r.removeBy(o, target, false)
}

func (r *Registry) removeBy(o Origin, target string, dry bool) (*RemoveReport, error) {
	repo, tag, d, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	var fn func(tx *kv.Tx, c *change) error
	switch {
	case tag != "":
		fn = r.deleteTagFn(repo, tag)
	case d != "":
		fn = r.deleteManifestFn(repo, d)
	default:
		fn = r.deleteRepoFn(repo)
	}
	fn = withOrigin(o, withDeleteEvent(repo, tag, string(d), fn))
	var (
		own       removal
		reclaimed int64
		swept     int64
	)
	run := func(tx *kv.Tx, c *change) error {
		mark, before := c.removed, c.Reclaimed
		if err := fn(tx, c); err != nil {
			return err
		}
		own, reclaimed, swept = c.removed.since(mark), c.Reclaimed-before, before
		if dry {
			return errPlanned
		}
		return nil
	}
	rep := &RemoveReport{Target: target, DryRun: dry}
	if dry {
		_, err = r.updateTx(run)
		if err == nil {
			// updateTx cannot commit what run refused; say so rather than
			// claim a plan.
			return nil, fmt.Errorf("refcount: dry run of %s committed", target)
		}
		if !errors.Is(err, errPlanned) {
			return nil, err
		}
		swept = 0 // rolled back with the rest
	} else {
		c, err := r.updateTx(run)
		if err != nil {
			return nil, err
		}
		err = r.finish(c)
		if tag == "" && d == "" {
			r.blobs.CancelRepo(repo)
		}
		if err != nil {
			rep.fill(own, reclaimed, swept)
			return rep, err
		}
	}
	rep.fill(own, reclaimed, swept)
	return rep, nil
}

// fill sets the report's figures and lists, sorted.
func (rep *RemoveReport) fill(own removal, reclaimed, swept int64) {
	rep.ReclaimedBytes, rep.SweptBytes = reclaimed, swept
	seen := map[string]bool{}
	rep.Tags = []string{}
	for _, t := range own.tags {
		if !seen[t] {
			seen[t] = true
			rep.Tags = append(rep.Tags, t)
		}
	}
	sort.Strings(rep.Tags)
	rep.Manifests = append([]RemovedManifest{}, own.manifests...)
	sort.Slice(rep.Manifests, func(i, j int) bool { return rep.Manifests[i].Digest < rep.Manifests[j].Digest })
	rep.Blobs = append([]FreedBlob{}, own.blobs...)
	sort.Slice(rep.Blobs, func(i, j int) bool { return rep.Blobs[i].Digest < rep.Blobs[j].Digest })
}
