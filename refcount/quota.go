package refcount

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount/policy"
)

// ErrQuota: a manifest PUT would take its namespace over a quota. The
// error's text says the limit, the usage, what the push needs and what is
// left.
var ErrQuota = errors.New("quota exceeded")

// ProblemQuota: a quota namespace's stored usage (or a row of its blob
// index) differs from a recount of its repositories.
const ProblemQuota = "quota-usage"

// QuotaError is a refusal by a quota.
type QuotaError struct {
	msg string
}

func (e *QuotaError) Error() string        { return e.msg }
func (e *QuotaError) Is(target error) bool { return target == ErrQuota }

// Quotas are enforced in kv: every write method of a transaction keeps the
// usage of its repository's namespace (kv/quota.go), so that every path
// that adds or removes a link, manifest or tag (pushes, deletes, cascades,
// lease sweeps, cache eviction) charges it exactly. A namespace is named
// by its rule's repos globs; the first rule whose globs match a repository
// is its namespace.

// QuotaNamespace names the namespace of a quota rule.
func QuotaNamespace(q policy.Quota) string { return strings.Join(q.Repos, " ") }

// quotaRecord is a rule as the meta key quotarules keeps it (limits as
// plain numbers), for the operator commands.
type quotaRecord struct {
	Repos    []string `json:"repos"`
	MaxBytes int64    `json:"maxBytes"`
	MaxTags  int64    `json:"maxTags"`
}

// quotaRules describes rules for kv: their namespaces, the hash of how
// they map repositories (the globs, in order: limits do not change the
// usage) and the rules themselves.
func quotaRules(qs []policy.Quota) kv.QuotaRules {
	out := kv.QuotaRules{Namespaces: []string{}}
	recs := []quotaRecord{}
	h := sha256.New()
	for _, q := range qs {
		ns := QuotaNamespace(q)
		out.Namespaces = append(out.Namespaces, ns)
		fmt.Fprintf(h, "%s\n", ns)
		recs = append(recs, quotaRecord{Repos: q.Repos, MaxBytes: int64(q.MaxBytes), MaxTags: q.MaxTags})
	}
	out.Hash = hex.EncodeToString(h.Sum(nil))
	out.Rules, _ = json.Marshal(recs)
	return out
}

// decodeQuotaRules reads the rules a server recorded.
func decodeQuotaRules(r kv.QuotaRules) ([]policy.Quota, error) {
	var recs []quotaRecord
	if len(r.Rules) > 0 {
		if err := json.Unmarshal(r.Rules, &recs); err != nil {
			return nil, fmt.Errorf("%w: quota rules: %v", kv.ErrCorrupt, err)
		}
	}
	out := make([]policy.Quota, 0, len(recs))
	for _, q := range recs {
		out = append(out, policy.Quota{Repos: q.Repos, MaxBytes: policy.Size(q.MaxBytes), MaxTags: q.MaxTags})
	}
	return out, nil
}

// quotaMapper maps repositories to the namespaces of qs (nil: none).
func quotaMapper(qs []policy.Quota) func(string) string {
	if len(qs) == 0 {
		return nil
	}
	set := &policy.Set{Quotas: qs}
	return func(repo string) string {
		if q, ok := set.Quota(repo); ok {
			return QuotaNamespace(q)
		}
		return ""
	}
}

// settleQuotas decides the quota rules of a registry about to open d and
// keeps the usage tables right for them. A server's rules (OwnQuotas) are
// recorded in the database, and when the mapping of repositories to
// namespaces differs from the one recorded, the usage is rebuilt (a scan
// of the namespaces' repositories, in one transaction, under a lock
// shared by the processes of the database; running it again changes
// nothing). Otherwise the recorded rules replace those of opts.Policies,
// so that an operator command charges what it deletes as the server
// does.
func settleQuotas(d *kv.DB, dbOpts kv.Options, opts *Options) error {
	var rec kv.QuotaRules
	var recorded bool
	err := d.View(func(tx *kv.Tx) error {
		var err error
		rec, recorded, err = tx.QuotaRules()
		return err
	})
	if err != nil {
		return err
	}
	if !opts.OwnQuotas {
		qs, err := decodeQuotaRules(rec)
		if err != nil {
			return err
		}
		var p policy.Set
		if opts.Policies != nil {
			p = *opts.Policies
		}
		p.Quotas = qs
		opts.Policies = &p
		d.SetQuotaNamespaces(quotaMapper(qs))
		return nil
	}
	var qs []policy.Quota
	if opts.Policies != nil {
		qs = opts.Policies.Quotas
	}
	d.SetQuotaNamespaces(quotaMapper(qs))
	if dbOpts.ReadOnly {
		return nil
	}
	want := quotaRules(qs)
	if recorded && rec.Hash == want.Hash && string(rec.Rules) == string(want.Rules) {
		return nil
	}
	if !recorded && len(qs) == 0 {
		return nil
	}
	unlock, err := d.Lock("kvreg quota rules")
	if err != nil {
		return err
	}
	defer unlock()
	return d.Update(func(tx *kv.Tx) error {
		cur, ok, err := tx.QuotaRules()
		if err != nil {
			return err
		}
		if !ok || cur.Hash != want.Hash {
			if _, err := tx.RebuildQuotas(cur.Namespaces, quotaMapper(qs)); err != nil {
				return err
			}
		}
		return tx.PutQuotaRules(want)
	})
}

// quotaRule is the rule of a namespace.
func (r *Registry) quotaRule(ns string) (policy.Quota, bool) {
	if r.opts.Policies == nil {
		return policy.Quota{}, false
	}
	for _, q := range r.opts.Policies.Quotas {
		if QuotaNamespace(q) == ns {
			return q, true
		}
	}
	return policy.Quota{}, false
}

// quotaCheckTx refuses, at the end of a manifest PUT's transaction, a
// change that took repo's namespace over a limit: only one that added
// bytes (or tags) is refused, so that a push which frees more than it
// adds always goes through. The usage read is the namespace's counter:
// on a serializable database a concurrent push into the namespace writes
// it, so one of two pushes racing for the last bytes runs again and sees
// the other's. With no quota rule it reads nothing.
func (r *Registry) quotaCheckTx(tx *kv.Tx, repo string) error {
	ns, delta := tx.QuotaNamespace(repo)
	if ns == "" || (delta.Bytes <= 0 && delta.Tags <= 0) {
		return nil
	}
	q, ok := r.quotaRule(ns)
	if !ok {
		return nil
	}
	u, err := tx.QuotaUsage(ns)
	if err != nil {
		return err
	}
	if q.MaxBytes > 0 && delta.Bytes > 0 && u.Bytes > int64(q.MaxBytes) {
		left := max(int64(q.MaxBytes)-(u.Bytes-delta.Bytes), 0)
		return &QuotaError{msg: fmt.Sprintf("quota of %s exceeded: the push needs %s (%s bytes) more, %s of %s is left (%s in use)",
			ns, HumanBytes(delta.Bytes), GroupDigits(delta.Bytes), HumanBytes(left), HumanBytes(int64(q.MaxBytes)), HumanBytes(u.Bytes-delta.Bytes))}
	}
	if q.MaxTags > 0 && delta.Tags > 0 && u.Tags > q.MaxTags {
		left := max(q.MaxTags-(u.Tags-delta.Tags), 0)
		return &QuotaError{msg: fmt.Sprintf("tag quota of %s exceeded: the push needs %d more tag(s), %d of %d are left (%d in use)",
			ns, delta.Tags, left, q.MaxTags, u.Tags-delta.Tags)}
	}
	return nil
}

// QuotaStat is one quota's line of the stats: its usage against its
// limits (0: none).
type QuotaStat struct {
	Namespace string   `json:"namespace"`
	Repos     []string `json:"repos"`
	Bytes     int64    `json:"bytes"`
	MaxBytes  int64    `json:"maxBytes"`
	Tags      int64    `json:"tags"`
	MaxTags   int64    `json:"maxTags"`
}

// quotaStatsTx reads every quota's usage.
func (r *Registry) quotaStatsTx(tx *kv.Tx) ([]QuotaStat, error) {
	if r.opts.Policies == nil || len(r.opts.Policies.Quotas) == 0 {
		return nil, nil
	}
	out := []QuotaStat{}
	seen := map[string]bool{}
	for _, q := range r.opts.Policies.Quotas {
		ns := QuotaNamespace(q)
		if seen[ns] {
			continue
		}
		seen[ns] = true
		u, err := tx.QuotaUsage(ns)
		if err != nil {
			return nil, err
		}
		out = append(out, QuotaStat{Namespace: ns, Repos: q.Repos, Bytes: u.Bytes, MaxBytes: int64(q.MaxBytes), Tags: u.Tags, MaxTags: q.MaxTags})
	}
	return out, nil
}

// Quotas returns every quota's usage against its limits.
func (r *Registry) Quotas() ([]QuotaStat, error) {
	if r.opts.Policies == nil || len(r.opts.Policies.Quotas) == 0 {
		return nil, nil // no transaction: a scrape of /metrics asks on every run
	}
	var out []QuotaStat
	err := r.db.View(func(tx *kv.Tx) error {
		var err error
		out, err = r.quotaStatsTx(tx)
		return err
	})
	return out, err
}

// checkQuotasTx compares the stored usage with a recount (fsck).
func (r *Registry) checkQuotasTx(tx *kv.Tx, st *checkState) error {
	var qs []policy.Quota
	if r.opts.Policies != nil {
		qs = r.opts.Policies.Quotas
	}
	rc, err := tx.RecountQuotas(quotaMapper(qs))
	if err != nil {
		return err
	}
	for _, q := range qs {
		ns := QuotaNamespace(q)
		got, err := tx.QuotaUsage(ns)
		if err != nil {
			return err
		}
		if want := rc.Usage[ns]; got != want {
			st.add(ProblemQuota, ns, "stored %d bytes, %d tags; recounted %d bytes, %d tags", got.Bytes, got.Tags, want.Bytes, want.Tags)
		}
	}
	stored, err := tx.QuotaBlobs()
	if err != nil {
		return err
	}
	for ns, ds := range rc.Blobs {
		for d, n := range ds {
			if stored[ns][d] != n {
				st.add(ProblemQuota, ns+"@"+d, "stored %d referencing repositories, recounted %d", stored[ns][d], n)
			}
		}
	}
	for ns, ds := range stored {
		for d, n := range ds {
			if rc.Blobs[ns][d] == 0 {
				st.add(ProblemQuota, ns+"@"+d, "stored %d referencing repositories, recounted 0", n)
			}
		}
	}
	return nil
}

// repairQuotasTx rebuilds the usage tables from a recount (fsck --repair).
func (r *Registry) repairQuotasTx(tx *kv.Tx) error {
	var qs []policy.Quota
	if r.opts.Policies != nil {
		qs = r.opts.Policies.Quotas
	}
	cur, _, err := tx.QuotaRules()
	if err != nil {
		return err
	}
	_, err = tx.RebuildQuotas(cur.Namespaces, quotaMapper(qs))
	return err
}

// ErrQuotaRulesDiffer: this replica's quota rules are not the ones the
// database records (another replica started with other ones).
var ErrQuotaRulesDiffer = errors.New("refcount: quota rules differ from the database's")

// quotasInStep reports, on a replica (Options.Shared, serving its own
// quotas), whether the quota rules recorded in the database are still
// this process's: a replica started since with other rules rebuilt the
// usage for its own, and a write here would charge by the old mapping.
// Ready asks it, so that the load balancer stops sending such a replica
// anything until it is restarted with the rules in force.
func (r *Registry) quotasInStep() error {
	if !r.opts.Shared || !r.opts.OwnQuotas {
		return nil
	}
	var qs []policy.Quota
	if r.opts.Policies != nil {
		qs = r.opts.Policies.Quotas
	}
	var rec kv.QuotaRules
	var ok bool
	if err := r.db.View(func(tx *kv.Tx) error {
		var err error
		rec, ok, err = tx.QuotaRules()
		return err
	}); err != nil {
		return err
	}
	if !ok {
		if len(qs) == 0 {
			return nil
		}
		return fmt.Errorf("%w: none recorded, this replica has %d", ErrQuotaRulesDiffer, len(qs))
	}
	if own := quotaRules(qs); rec.Hash != own.Hash || string(rec.Rules) != string(own.Rules) {
		return fmt.Errorf("%w: a replica started since with other quota rules; restart this one with the same configuration", ErrQuotaRulesDiffer)
	}
	return nil
}
