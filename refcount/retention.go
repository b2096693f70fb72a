package refcount

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount/policy"
)

// Retention (Options.Policies): a repository's rule keeps the tags
// matching keep-tags and the immutable ones, which do not count; of the
// others (the countable tags), the keep-last most recently pushed, and
// any whose image was pulled within keep-pulled-within (without
// keep-last: pulled or pushed). The rest are deleted as DeleteTag deletes them,
// freeing what only they held.
//
// A manifest PUT applies its repository's rule (when it has keep-last) in
// its own transaction, after moving its tags: the push never leaves more
// countable tags than keep-last allows, but for those a recent pull
// keeps. Pulls age without a write, so RetentionSweep applies every rule
// again later; it is idempotent and safe to run on several replicas at
// once (each repository is one transaction that reads what it deletes).

// RetentionReport is what retention removed, or with DryRun would remove.
type RetentionReport struct {
	DryRun bool `json:"dryRun,omitempty"`
	// ReclaimedBytes is the bytes of the blobs freed (Blobs).
	ReclaimedBytes int64             `json:"reclaimedBytes"`
	Tags           []string          `json:"tags"`      // REPO:TAG, sorted
	Manifests      []RemovedManifest `json:"manifests"` // in digest order
	Blobs          []FreedBlob       `json:"blobs"`     // in digest order
}

// retainAfterPushTx applies repo's rule after a push moved tags to it
// (the tags pushed count as the newest, whatever the clock says).
func (r *Registry) retainAfterPushTx(tx *kv.Tx, c *change, repo string, pushed []string) error {
	if len(pushed) == 0 {
		return nil
	}
	rule, ok := r.opts.Policies.Retention(repo)
	if !ok || rule.KeepLast == 0 {
		return nil // keep-pulled-within alone: the sweep applies it
	}
	// A push never leaves more tags than the rule keeps, and its 201
	// names every tag it sets: one that sets more countable tags than
	// keep-last is refused.
	countable := 0
	for _, t := range pushed {
		if !policy.MatchAny(rule.KeepTags, t) && !r.opts.Policies.ImmutableTag(repo, t) {
			countable++
		}
	}
	if countable > rule.KeepLast {
		return fmt.Errorf("%w: %s keeps the last %d tag(s) under the rule %s; this push sets %d", ErrRetention, repo, rule.KeepLast, rule, countable)
	}
	// A tag pushed again with the content it names did not move, but it
	// was pushed: it is the newest now, and stays so for the next push.
	for _, t := range pushed {
		if p, _, err := tx.TagPushed(repo, t); err != nil {
			return err
		} else if p != c.now {
			if err := tx.SetTagPushed(repo, t, c.now); err != nil {
				return err
			}
		}
	}
	return r.retainTx(tx, c, repo, rule, c.now, pushed)
}

// tracksPulls reports whether repo's rule needs its images' last pulls.
func (r *Registry) tracksPulls(repo string) bool {
	rule, ok := r.opts.Policies.Retention(repo)
	return ok && rule.KeepPulledWithin > 0
}

// retainTag is a countable tag: its target and when it was pushed.
type retainTag struct {
	tag, digest string
	pushed      int64
	fresh       bool // moved by the transaction's own push
}

// retainTx deletes the tags of repo that rule does not keep at now.
func (r *Registry) retainTx(tx *kv.Tx, c *change, repo string, rule policy.Retention, now int64, fresh []string) error {
	victims, err := r.retentionVictimsTx(tx, repo, rule, now, fresh)
	if err != nil {
		return err
	}
	for _, v := range victims {
		// Each tag that goes is a delete event of its own, as if deleted
		// by hand, with the bytes it freed.
		del := func(tx *kv.Tx, c *change) error {
			if err := r.deleteTagTx(tx, repo, v.tag); err != nil {
				return err
			}
			c.removed.tag(repo, v.tag)
			return r.releaseManifestTx(tx, c, repo, v.digest)
		}
		if err := withDeleteEvent(repo, v.tag, "", del)(tx, c); err != nil {
			return err
		}
	}
	return nil
}

// retentionVictimsTx lists the tags of repo that rule does not keep at
// now, reading only.
func (r *Registry) retentionVictimsTx(tx *kv.Tx, repo string, rule policy.Retention, now int64, fresh []string) ([]retainTag, error) {
	isFresh := map[string]bool{}
	for _, t := range fresh {
		isFresh[t] = true
	}
	pushed := map[string]int64{}
	if err := tx.ForEachTagPushed(repo, func(tag string, p int64) error { pushed[tag] = p; return nil }); err != nil {
		return nil, err
	}
	var tags []retainTag
	if err := tx.ForEachTag(repo, func(t, d string) error {
		if policy.MatchAny(rule.KeepTags, t) || r.opts.Policies.ImmutableTag(repo, t) {
			return nil
		}
		tags = append(tags, retainTag{tag: t, digest: d, pushed: pushed[t], fresh: isFresh[t]})
		return nil
	}); err != nil {
		return nil, err
	}
	if rule.KeepLast > 0 && len(tags) <= rule.KeepLast {
		return nil, nil // pulls keep only what keep-last would remove
	}
	// Newest first: the push's own tags, then by push time; a tie by name,
	// so that every run (and the plan) picks the same.
	sort.Slice(tags, func(i, j int) bool {
		a, b := tags[i], tags[j]
		if a.fresh != b.fresh {
			return a.fresh
		}
		if a.pushed != b.pushed {
			return a.pushed > b.pushed
		}
		return a.tag < b.tag
	})
	var victims []retainTag
	for _, v := range tags[min(rule.KeepLast, len(tags)):] {
		if v.fresh {
			// A tag the push itself sets stays, even past keep-last (a
			// push of more tags than it keeps): its 201 names it.
			continue
		}
		if rule.KeepPulledWithin > 0 {
			recent, err := r.usedSinceTx(tx, repo, v, now-int64(rule.KeepPulledWithin), rule.KeepLast == 0)
			if err != nil {
				return nil, err
			}
			if recent {
				continue
			}
		}
		victims = append(victims, v)
	}
	return victims, nil
}

// usedSinceTx reports whether a tag's image was pulled at or after since,
// or with pushes, the tag pushed then. A rule without keep-last counts
// the push, so that a sweep does not take a tag nobody had time to pull;
// with keep-last, that keeps the newest pushes, and a push alone must not
// keep more.
func (r *Registry) usedSinceTx(tx *kv.Tx, repo string, t retainTag, since int64, pushes bool) (bool, error) {
	if t.fresh || (pushes && t.pushed >= since) {
		return true, nil
	}
	m, ok, err := tx.Manifest(repo, t.digest)
	if err != nil || !ok {
		return false, err
	}
	pulled, err := pulledTx(tx, repo, t.digest, m)
	return pulled >= since, err
}

// retentionRepos lists the repositories that have an active rule; with
// due, only those where the rule removes something at now (read in one
// read-only transaction, so that a sweep writes only where it deletes).
func (r *Registry) retentionRepos(due bool, now time.Time) ([]string, error) {
	if len(r.opts.Policies.RetentionRules()) == 0 {
		return nil, nil
	}
	var out []string
	err := r.db.View(func(tx *kv.Tx) error {
		out = out[:0]
		repos, _, err := tx.Repos("", -1)
		if err != nil {
			return err
		}
		for _, repo := range repos {
			rule, ok := r.opts.Policies.Retention(repo)
			if !ok || !rule.Active() {
				continue
			}
			if due {
				victims, err := r.retentionVictimsTx(tx, repo, rule, now.UnixNano(), nil)
				if err != nil {
					return err
				}
				if len(victims) == 0 {
					continue
				}
			}
			out = append(out, repo)
		}
		return nil
	})
	return out, err
}

// sweepRetentionFn is the transaction that applies the rules of repos at
// now, recording what it removed (after the transaction's own sweep of
// expired leases) in own and reclaimed.
func (r *Registry) sweepRetentionFn(repos []string, now time.Time, own *removal, reclaimed *int64) func(tx *kv.Tx, c *change) error {
	return func(tx *kv.Tx, c *change) error {
		mark, before := c.removed, c.Reclaimed
		for _, repo := range repos {
			rule, ok := r.opts.Policies.Retention(repo)
			if !ok || !rule.Active() {
				continue
			}
			if err := r.retainTx(tx, c, repo, rule, now.UnixNano(), nil); err != nil {
				return fmt.Errorf("retention of %s: %w", repo, err)
			}
		}
		*own, *reclaimed = c.removed.since(mark), c.Reclaimed-before
		return nil
	}
}

// RetentionSweep applies every retention rule at now, one write
// transaction per repository where its rule removes something (found by
// one read-only pass; the write reads again what it deletes), and
// reports what it removed.
func (r *Registry) RetentionSweep(now time.Time) (*RetentionReport, error) {
	repos, err := r.retentionRepos(true, now)
	if err != nil {
		return nil, err
	}
	var all removal
	var total int64
	for _, repo := range repos {
		var own removal
		var reclaimed int64
		if _, err := r.update(r.sweepRetentionFn([]string{repo}, now, &own, &reclaimed)); err != nil {
			return nil, err
		}
		all.tags = append(all.tags, own.tags...)
		all.manifests = append(all.manifests, own.manifests...)
		all.blobs = append(all.blobs, own.blobs...)
		total += reclaimed
	}
	return retentionReport(all, total, false), nil
}

// RetentionPlan reports what RetentionSweep would remove now and the
// exact bytes it would free, changing nothing: it runs the sweep's
// transaction over every repository at once and rolls it back.
func (r *Registry) RetentionPlan() (*RetentionReport, error) {
	repos, err := r.retentionRepos(false, time.Time{})
	if err != nil {
		return nil, err
	}
	var own removal
	var reclaimed int64
	sweep := r.sweepRetentionFn(repos, r.opts.Now(), &own, &reclaimed)
	_, err = r.updateTx(func(tx *kv.Tx, c *change) error {
		if err := sweep(tx, c); err != nil {
			return err
		}
		return errPlanned
	})
	if err == nil {
		return nil, errors.New("refcount: retention plan committed")
	}
	if !errors.Is(err, errPlanned) {
		return nil, err
	}
	return retentionReport(own, reclaimed, true), nil
}

func retentionReport(own removal, reclaimed int64, dry bool) *RetentionReport {
	var rep RemoveReport
	rep.fill(own, reclaimed, 0)
	return &RetentionReport{DryRun: dry, ReclaimedBytes: reclaimed, Tags: rep.Tags, Manifests: rep.Manifests, Blobs: rep.Blobs}
}
