package refcount

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/kv"
	"github.com/opencontainers/go-digest"
)

// Problem is one broken invariant.
type Problem struct {
	Kind   string `json:"kind"`
	Object string `json:"object"`
	Detail string `json:"detail"`
}

func (p Problem) String() string { return p.Kind + " " + p.Object + ": " + p.Detail }

// Kinds of Problem.
const (
	ProblemDanglingTag      = "dangling-tag"       // a tag names a manifest that does not exist
	ProblemDanglingEdge     = "dangling-edge"      // a manifest references a link or child that does not exist
	ProblemDanglingLink     = "dangling-link"      // a link names a blob with no record
	ProblemDanglingReferrer = "dangling-referrer"  // the referrers index names a manifest that does not exist
	ProblemCount            = "count-mismatch"     // a stored count differs from the edges
	ProblemUnheld           = "unheld"             // no edges and no lease
	ProblemLeaseExpired     = "lease-expired"      // no edges and a lease that has expired, not yet swept
	ProblemLeaseIndex       = "lease-index"        // a lease and the expiry index disagree
	ProblemContentMissing   = "content-missing"    // a manifest record without its bytes
	ProblemBlobMissing      = "blob-missing"       // a blob record without its file
	ProblemBlobSize         = "blob-size"          // a blob file of the wrong size
	ProblemBlobCorrupt      = "blob-corrupt"       // a blob file whose bytes do not match its digest (deep)
	ProblemBlobLocation     = "blob-location"      // a blob record naming another location than the store keeps its bytes at
	ProblemOrphanFile       = "orphan-file"        // a file in the blob directory with no record
	ProblemOrphanObject     = "orphan-object"      // a stored object or upload file nothing names, older than the grace
	ProblemOrphanMultipart  = "orphan-multipart"   // an S3 multipart upload nothing names, older than the grace
	ProblemPendingDelete    = "pending-delete"     // a tombstone whose file is still there
	ProblemCounter          = "counter-mismatch"   // a store or repository total differs from the records
	ProblemLinkIndex        = "link-index"         // the blob-to-repository index disagrees with the links
	ProblemInterrupted      = "interrupted-upload" // an upload caught between its file and its record
	ProblemOrphanCacheRow   = "orphan-cache-row"   // a cache row whose manifest or tag does not exist
	ProblemTagPushed        = "tag-push-time"      // a tag without its push time, or a push time without its tag
)

// CheckReport is a check's findings, split: Problems are damage; Pending
// is work a crash (or a sweep not yet due) left that the next start, or
// Repair, finishes by itself, and that harms nothing meanwhile.
type CheckReport struct {
	Problems []Problem `json:"problems"`
	Pending  []Problem `json:"pending"`
}

// checkState is what a check learns.
type checkState struct {
	now     int64
	grace   time.Duration
	probs   []Problem
	pending map[Problem]bool   // those of probs that are pending work
	blobs   map[string]kv.Blob // records as stored
	tombs   map[string]bool
}

func (st *checkState) add(kind, obj, format string, args ...any) {
	st.probs = append(st.probs, Problem{Kind: kind, Object: obj, Detail: fmt.Sprintf(format, args...)})
}

// addPending adds a finding that is pending work, not damage.
func (st *checkState) addPending(kind, obj, format string, args ...any) {
	st.add(kind, obj, format, args...)
	st.pending[st.probs[len(st.probs)-1]] = true
}

// DefaultOrphanGrace is how old a stray (an object or upload file that
// nothing names) must be for Check to report it: younger ones may be the
// work of an upload in flight in a running registry.
const DefaultOrphanGrace = time.Hour

// Check verifies the invariants of the reference model over the database
// and the blob directory. With deep, it rehashes every blob file. It reads
// one consistent snapshot of the database; files written while it runs may
// show as orphans on a busy registry.
func (r *Registry) Check(deep bool) ([]Problem, error) {
	return r.CheckGrace(deep, DefaultOrphanGrace)
}

// CheckGrace is Check reporting strays older than grace (by the
// registry's clock); grace <= 0 means DefaultOrphanGrace. Pending work
// counts: a store is clean only once it is finished (see Fsck).
func (r *Registry) CheckGrace(deep bool, grace time.Duration) ([]Problem, error) {
	st, err := r.check(deep, grace)
	if err != nil {
		return nil, err
	}
	return st.probs, nil
}

// Fsck is CheckGrace with its findings split into damage and pending work:
// the deletes whose file is still there (tombstones), the uploads caught
// between promoting their blob and recording it and the blob such an
// upload created, the strays written before this registry opened, and the
// expired leases not yet swept. Each is what Recover (or the sweeper) does
// at the next start; anything else stays damage. On a running registry
// each finding is confirmed under its digest's lock, so a commit or a
// removal in flight is neither.
func (r *Registry) Fsck(deep bool, grace time.Duration) (*CheckReport, error) {
	st, err := r.check(deep, grace)
	if err != nil {
		return nil, err
	}
	rep := &CheckReport{Problems: []Problem{}, Pending: []Problem{}}
	for _, p := range st.probs {
		if st.pending[p] {
			rep.Pending = append(rep.Pending, p)
		} else {
			rep.Problems = append(rep.Problems, p)
		}
	}
	return rep, nil
}

func (r *Registry) check(deep bool, grace time.Duration) (*checkState, error) {
	if grace <= 0 {
		grace = DefaultOrphanGrace
	}
	st := &checkState{now: r.now(), grace: grace, tombs: map[string]bool{}, pending: map[Problem]bool{}}
	if err := r.db.View(st.checkDBTx); err != nil {
		return nil, err
	}
	if err := r.db.View(func(tx *kv.Tx) error { return r.checkQuotasTx(tx, st) }); err != nil {
		return nil, err
	}
	if err := r.db.View(func(tx *kv.Tx) error { return r.checkOutboxTx(st, tx) }); err != nil {
		return nil, err
	}
	if err := r.checkFiles(st, deep); err != nil {
		return nil, err
	}
	sort.Slice(st.probs, func(i, j int) bool {
		if st.probs[i].Kind != st.probs[j].Kind {
			return st.probs[i].Kind < st.probs[j].Kind
		}
		return st.probs[i].Object < st.probs[j].Object
	})
	return st, nil
}

// checkDBTx compares what is stored with what the edges say.
func (st *checkState) checkDBTx(tx *kv.Tx) error {
	d, err := deriveTx(tx)
	if err != nil {
		return err
	}
	st.probs = append(st.probs, d.probs...)
	st.blobs = d.stored
	if err := st.checkCacheRowsTx(tx); err != nil {
		return err
	}
	if err := st.checkTagPushedTx(tx); err != nil {
		return err
	}
	tombs, err := tx.Tombstones()
	if err != nil {
		return err
	}
	for _, t := range tombs {
		st.tombs[t] = true
	}
	leases := d.leases
	checkHeld := func(kind kv.LeaseKind, what, repo, dg string, c counted, refs uint64) {
		obj := repo + "@" + dg
		if c.refs != refs {
			st.add(ProblemCount, obj, "%s count is %d, edges say %d", what, c.refs, refs)
		}
		h := c.hold
		if (h.Lease != 0) != (h.Pending != 0) {
			st.add(ProblemLeaseIndex, obj, "lease until %d with %d pending holds", h.Lease, h.Pending)
		}
		if h.Lease != 0 {
			l := kv.Lease{Expiry: h.Lease, Kind: kind, Repo: repo, Digest: dg}
			if !leases[l] {
				st.add(ProblemLeaseIndex, obj, "lease until %d is not in the expiry index", h.Lease)
			}
			delete(leases, l)
		}
		if refs == 0 {
			switch {
			case h.Lease == 0:
				st.add(ProblemUnheld, obj, "no edges and no lease")
			case h.Lease <= st.now:
				// The sweep at the next start (or the running sweeper)
				// deletes it.
				st.addPending(ProblemLeaseExpired, obj, "no edges and its lease expired")
			}
		}
	}
	for _, repo := range d.repos {
		for dg, c := range d.manifests[repo] {
			checkHeld(kv.LeaseManifest, "manifest", repo, dg, c, d.manRefs[repo][dg])
		}
		for dg, c := range d.links[repo] {
			checkHeld(kv.LeaseLink, "link", repo, dg, c, d.linkRefs[repo][dg])
		}
		got, _, err := tx.RepoStats(repo)
		if err != nil {
			st.add(ProblemCounter, repo, "repository stats unreadable: %v", err)
		} else if want := d.repoStats[repo]; storedStats(got, want) != want {
			st.add(ProblemCounter, repo, "repository stats %+v, records say %+v", got, want)
		}
	}
	for l := range leases {
		st.add(ProblemLeaseIndex, l.Repo+"@"+l.Digest, "expiry index entry with no matching lease")
	}
	for dg := range d.stored {
		if want := d.blobs[dg]; want.Links == 0 {
			st.add(ProblemUnheld, dg, "blob record that no repository links")
		}
		idx, err := tx.LinkingRepos(dg)
		if err != nil {
			return err
		}
		sort.Strings(idx)
		if fmt.Sprint(idx) != fmt.Sprint(d.linkedIn[dg]) {
			st.add(ProblemLinkIndex, dg, "index lists repositories %v, links are in %v", idx, d.linkedIn[dg])
		}
	}
	got, err := tx.Counters()
	if err != nil {
		return err
	}
	if storedTotals(got, d.totals) != d.totals {
		st.add(ProblemCounter, "store", "counters %+v, records say %+v", got, d.totals)
	}
	return nil
}

func (r *Registry) checkFiles(st *checkState, deep bool) error {
	type candidate struct {
		kind string
		d    digest.Digest
	}
	var cands []candidate
	seen := map[string]bool{}
	err := r.blobs.Walk(func(d digest.Digest, name string, size int64) error {
		if d == "" {
			st.add(ProblemOrphanFile, name, "not a blob file name")
			return nil
		}
		seen[string(d)] = true
		b, ok := st.blobs[string(d)]
		switch {
		case !ok && st.tombs[string(d)]:
			cands = append(cands, candidate{ProblemPendingDelete, d})
		case !ok:
			cands = append(cands, candidate{ProblemOrphanFile, d})
		case size != b.Size:
			cands = append(cands, candidate{ProblemBlobSize, d})
		case b.Location != "" && name != b.Location:
			cands = append(cands, candidate{ProblemBlobLocation, d})
		case deep:
			ok, err := r.blobs.Verify(d)
			switch {
			case storeSilent(err):
				return err
			case errors.Is(err, blobs.ErrNotFound):
				// Gone since the listing: a delete ran meanwhile.
			case !ok:
				cands = append(cands, candidate{ProblemBlobCorrupt, d})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for d := range st.blobs {
		if !seen[d] {
			if dg, err := digest.Parse(d); err == nil {
				cands = append(cands, candidate{ProblemBlobMissing, dg})
			}
		}
	}
	// An upload is interrupted if it still is once the digest's lock, which
	// a commit in flight holds from its promotion to its record, is ours.
	interrupted, err := r.blobs.Interrupted()
	if err != nil {
		return err
	}
	// The blobs that interrupted uploads created, which Recover removes
	// (Unpromote) unless a record names them.
	promoted := map[digest.Digest]bool{}
	for id, d := range interrupted {
		unlock, err := r.blobs.Lock(d)
		if err != nil {
			return err
		}
		still, err := r.blobs.Interrupted()
		var created bool
		if _, ok := still[id]; ok && err == nil {
			created, err = r.blobs.Promoted(id, d)
		}
		unlock()
		if err != nil {
			return err
		}
		if _, ok := still[id]; ok {
			st.addPending(ProblemInterrupted, id, "upload stopped between promoting its blob %s and recording it", d)
			if created {
				promoted[d] = true
			}
		}
	}
	// The walk and the snapshot are not atomic on a running registry: an
	// upload may have linked a file it has not recorded yet, a delete may
	// have removed a file after the snapshot. Confirm each finding under
	// the digest's lock against the current record.
	for _, c := range cands {
		kind, detail, err := r.fileStateLocked(c.d)
		if err != nil {
			return err
		}
		if kind == c.kind || (c.kind == ProblemBlobCorrupt && kind == "") {
			if c.kind == ProblemBlobCorrupt {
				detail = "content does not match its digest"
			}
			switch {
			case c.kind == ProblemPendingDelete:
				// Recover removes the file of a tombstone with no record.
				st.addPending(c.kind, string(c.d), "%s", detail)
			case c.kind == ProblemOrphanFile && promoted[c.d]:
				st.addPending(c.kind, string(c.d), "%s, promoted by an interrupted upload", detail)
			default:
				st.add(c.kind, string(c.d), "%s", detail)
			}
		}
	}
	strays, err := r.blobs.Strays(time.Unix(0, st.now).Add(-st.grace))
	if err != nil {
		return err
	}
	for _, s := range strays {
		kind := ProblemOrphanObject
		if s.Kind == driver.StrayMultipart {
			kind = ProblemOrphanMultipart
		}
		// Recover removes the strays written before the registry opened:
		// if this registry has not run it (a check of a stopped one), the
		// next start does; if it has, any such stray left is damage, and
		// later ones are nobody's work but Repair's.
		if s.Modified.Before(r.opened) && !r.recovered.Load() {
			st.addPending(kind, s.Name, "%d bytes last written %s that nothing names", s.Size, s.Modified.UTC().Format(time.RFC3339))
			continue
		}
		st.add(kind, s.Name, "%d bytes last written %s that nothing names", s.Size, s.Modified.UTC().Format(time.RFC3339))
	}
	return nil
}

// storeSilent reports whether err, from a look at a blob's bytes, says
// nothing of them (the store did not answer, or refused): only "not
// found" and bytes of another digest are findings. Taking the rest for
// missing or corrupt bytes would have a repair drop the images that use
// them, so the check fails instead.
func storeSilent(err error) bool { return err != nil && !errors.Is(err, blobs.ErrNotFound) }

// fileStateLocked classifies a blob's file against its current record,
// holding the digest's lock; "" means consistent.
func (r *Registry) fileStateLocked(d digest.Digest) (kind, detail string, err error) {
	unlock, err := r.blobs.Lock(d)
	if err != nil {
		return "", "", err
	}
	defer unlock()
	var rec kv.Blob
	var ok, tomb bool
	err = r.db.View(func(tx *kv.Tx) error {
		var err error
		if rec, ok, err = tx.Blob(string(d)); err != nil {
			return err
		}
		_, tomb, err = tx.Tombstone(string(d))
		return err
	})
	if err != nil {
		return "", "", err
	}
	// The bytes themselves, not a record of them (S3's index names a data
	// object that may be gone or of another size).
	size, loc, serr := r.blobs.StoredSize(d)
	if storeSilent(serr) {
		return "", "", serr
	}
	exists := serr == nil
	switch {
	case exists && !ok && tomb:
		return ProblemPendingDelete, "record deleted, file still present", nil
	case exists && !ok:
		return ProblemOrphanFile, fmt.Sprintf("file with no record (%d bytes)", size), nil
	case exists && size != rec.Size:
		return ProblemBlobSize, fmt.Sprintf("file has %d bytes, record says %d", size, rec.Size), nil
	case !exists && ok:
		return ProblemBlobMissing, "record with no file", nil
	case exists && ok && rec.Location != "" && loc != "" && loc != rec.Location:
		return ProblemBlobLocation, fmt.Sprintf("record names %s, the store keeps the bytes at %s", rec.Location, loc), nil
	}
	return "", "", nil
}

// storedTotals is got with the figures kv computes when read (rather than
// stores) taken from want: they follow the link counts and the
// blob-to-repository index, which are checked on their own, so only the
// stored counters can drift by themselves.
func storedTotals(got, want kv.Counters) kv.Counters {
	got.SharedBytes, got.UnreferencedBlobs, got.UnreferencedBytes = want.SharedBytes, want.UnreferencedBlobs, want.UnreferencedBytes
	return got
}

// storedStats is storedTotals for a repository's totals.
func storedStats(got, want kv.RepoStats) kv.RepoStats {
	got.UniqueBytes = want.UniqueBytes
	return got
}
