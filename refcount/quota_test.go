package refcount_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/policy"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

func quotaSet(qs ...policy.Quota) *policy.Set { return &policy.Set{Quotas: qs} }

// usage is the namespace's line of the stats.
func (f *fixture) quota(ns string) refcount.QuotaStat {
	f.t.Helper()
	qs, err := f.Quotas()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, q := range qs {
		if q.Namespace == ns {
			return q
		}
	}
	f.t.Fatalf("no quota %q among %+v", ns, qs)
	return refcount.QuotaStat{}
}

// bytesBlob uploads the given bytes to repo.
func (f *fixture) bytesBlob(repo string, b []byte) digest.Digest {
	f.t.Helper()
	d := digest.FromBytes(b)
	if _, err := f.PutBlob(repo, d, bytes.NewReader(b), int64(len(b)), 0); err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) random(n int) []byte {
	b := make([]byte, n)
	f.rnd.Read(b)
	return b
}

// imageOf pushes an image of config and layers (uploaded to repo before)
// under tag; it returns the manifest's digest, its size and the error.
func (f *fixture) imageOf(repo, tag string, blobs ...digest.Digest) (digest.Digest, int64, error) {
	f.t.Helper()
	var bl []string
	for _, b := range blobs {
		bl = append(bl, string(b))
	}
	body := imageBody(bl, f.size)
	res, err := f.PutManifest(repo, "", []string{tag}, refcount.MediaTypeOCIManifest, body, "")
	return res.Digest, int64(len(body)), err
}

// An image sharing its base layer with one already in the namespace (in
// another of its repositories) is charged only its new bytes; a
// repository outside the namespace is not charged; deleting returns the
// bytes at once.
func TestQuotaChargesOnlyNewBytes(t *testing.T) {
	f := newFixture(t, regtest.Options{Policies: quotaSet(policy.Quota{Repos: []string{"team-a/*"}, MaxBytes: 1 << 20})})
	base := f.random(5000)
	c1, l1 := f.random(100), f.bytesBlob("team-a/one", base)
	cfg1 := f.bytesBlob("team-a/one", c1)
	_, m1, err := f.imageOf("team-a/one", "v1", cfg1, l1)
	if err != nil {
		t.Fatal(err)
	}
	u := f.quota("team-a/*")
	if want := int64(100 + 5000 + m1); u.Bytes != want || u.Tags != 1 {
		t.Fatalf("after the first image: %d bytes %d tags, want %d bytes 1 tag", u.Bytes, u.Tags, want)
	}
	// The same base in another repository of the namespace.
	f.bytesBlob("team-a/two", base)
	cfg2 := f.bytesBlob("team-a/two", f.random(120))
	_, m2, err := f.imageOf("team-a/two", "v1", cfg2, l1)
	if err != nil {
		t.Fatal(err)
	}
	u2 := f.quota("team-a/*")
	if got, want := u2.Bytes-u.Bytes, int64(120+m2); got != want || u2.Tags != 2 {
		t.Fatalf("second image charged %d bytes (%d tags), want only its new %d", got, u2.Tags, want)
	}
	// Outside the namespace: nothing.
	f.bytesBlob("team-b/x", base)
	cfg3 := f.bytesBlob("team-b/x", f.random(50))
	if _, _, err := f.imageOf("team-b/x", "v1", cfg3, l1); err != nil {
		t.Fatal(err)
	}
	if u3 := f.quota("team-a/*"); u3.Bytes != u2.Bytes || u3.Tags != u2.Tags {
		t.Fatalf("a push outside the namespace changed it: %+v, was %+v", u3, u2)
	}
	// Deleting the first image returns its config and manifest; the base
	// stays charged (the second image holds it).
	if _, err := f.DeleteTag("team-a/one", "v1"); err != nil {
		t.Fatal(err)
	}
	if u4 := f.quota("team-a/*"); u4.Bytes != u2.Bytes-100-m1 || u4.Tags != 1 {
		t.Fatalf("after the delete: %+v, want %d bytes 1 tag", u4, u2.Bytes-100-m1)
	}
	if _, err := f.DeleteRepo("team-a/two"); err != nil {
		t.Fatal(err)
	}
	if u5 := f.quota("team-a/*"); u5.Bytes != 0 || u5.Tags != 0 {
		t.Fatalf("empty namespace uses %+v", u5)
	}
}

// A push over the byte quota is refused with the figures: what it needs,
// what is left, of how much; nothing of it stays; a delete makes room at
// once.
func TestQuotaRefusalFigures(t *testing.T) {
	const max = 10000
	f := newFixture(t, regtest.Options{Policies: quotaSet(policy.Quota{Repos: []string{"team-a/*"}, MaxBytes: max})})
	cfg1, l1 := f.bytesBlob("team-a/app", f.random(100)), f.bytesBlob("team-a/app", f.random(3000))
	_, m1, err := f.imageOf("team-a/app", "v1", cfg1, l1)
	if err != nil {
		t.Fatal(err)
	}
	used := int64(3100 + m1)
	cfg2, l2 := f.bytesBlob("team-a/app", f.random(110)), f.bytesBlob("team-a/app", f.random(8000))
	_, m2, err := f.imageOf("team-a/app", "v2", cfg2, l1, l2)
	if !errors.Is(err, refcount.ErrQuota) {
		t.Fatalf("push over the quota: %v", err)
	}
	need := int64(8110 + m2)
	want := fmt.Sprintf("quota of team-a/* exceeded: the push needs %s (%s bytes) more, %s of %s is left (%s in use)",
		refcount.HumanBytes(need), commas(need), refcount.HumanBytes(max-used), refcount.HumanBytes(max), refcount.HumanBytes(used))
	if err.Error() != want {
		t.Fatalf("refusal:\n%s\nwant\n%s", err, want)
	}
	if u := f.quota("team-a/*"); u.Bytes != used || u.Tags != 1 {
		t.Fatalf("a refused push changed the usage: %+v, want %d bytes", u, used)
	}
	if tags, _, err := f.Tags("team-a/app", "", -1); err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Fatalf("tags after a refused push: %v %v", tags, err)
	}
	// The same image with v1 deleted fits: the delete returned v1's bytes.
	if _, err := f.DeleteTag("team-a/app", "v1"); err != nil {
		t.Fatal(err)
	}
	if u := f.quota("team-a/*"); u.Bytes != 0 {
		t.Fatalf("after deleting the only image: %+v", u)
	}
	// Its blobs went with it: upload them again.
	f.bytesBlob("team-a/app", f.stored(cfg2))
	_, _, err = f.imageOf("team-a/app", "v2", cfg2, l2)
	if err != nil {
		t.Fatalf("push after the delete: %v", err)
	}
}

// commas is the byte count as the refusal writes it.
func commas(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func TestHumanBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{{12884901, "12.3 MiB"}, {100 << 20, "100 MiB"}, {3250586, "3.1 MiB"}, {512, "512 B"}, {1536, "1.5 KiB"}, {10 << 30, "10 GiB"}} {
		if got := refcount.HumanBytes(c.n); got != c.want {
			t.Errorf("HumanBytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	if got := commas(12884901); got != "12,884,901" {
		t.Errorf("commas: %s", got)
	}
}

// The tag quota counts tags: a new tag over it is refused, moving a tag
// is not a new one, a deleted tag makes room.
func TestQuotaTags(t *testing.T) {
	f := newFixture(t, regtest.Options{Policies: quotaSet(policy.Quota{Repos: []string{"ci/*"}, MaxTags: 2})})
	l := f.blob("ci/a", 10)
	f.image("ci/a", "one", l)
	f.image("ci/b", "two", f.blob("ci/b", 10))
	cfg := f.bytesBlob("ci/a", f.random(30))
	_, _, err := f.imageOf("ci/a", "three", cfg, l)
	if !errors.Is(err, refcount.ErrQuota) {
		t.Fatalf("third tag: %v", err)
	}
	want := "tag quota of ci/* exceeded: the push needs 1 more tag(s), 0 of 2 are left (2 in use)"
	if err.Error() != want {
		t.Fatalf("refusal %q, want %q", err, want)
	}
	// Moving "one" onto another image is no new tag.
	if _, _, err := f.imageOf("ci/a", "one", cfg, l); err != nil {
		t.Fatalf("moving a tag: %v", err)
	}
	if _, err := f.DeleteTag("ci/b", "two"); err != nil {
		t.Fatal(err)
	}
	cfg3 := f.bytesBlob("ci/a", f.random(31))
	if _, _, err := f.imageOf("ci/a", "three", cfg3, l); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
	if u := f.quota("ci/*"); u.Tags != 2 || u.MaxTags != 2 {
		t.Fatalf("usage %+v", u)
	}
}

// Two pushes racing for the last bytes of a quota: exactly one wins,
// every round, on each backend (on PostgreSQL, through two replicas).
func TestQuotaRacingPushes(t *testing.T) {
	bs, err := regtest.Backends()
	if err != nil {
		t.Fatal(err)
	}
	for _, be := range bs {
		t.Run(be.Name, func(t *testing.T) {
			opts := regtest.Options{Backend: be, Policies: quotaSet(policy.Quota{Repos: []string{"team/*"}, MaxBytes: 6000})}
			a := newFixture(t, opts)
			b := a
			if be.DB == "postgres" {
				opts.Shared = true
				a = newFixture(t, opts)
				b = &fixture{Registry: a.Replica(), t: t, rnd: rand.New(rand.NewSource(2))}
			}
			for round := 0; round < 6; round++ {
				// Each image alone fits (about 4 KB), both do not.
				pushers := []*fixture{a, b}
				var blobs [2][]digest.Digest
				for i, f := range pushers {
					repo := fmt.Sprintf("team/r%d", i)
					blobs[i] = []digest.Digest{f.bytesBlob(repo, f.random(100)), f.bytesBlob(repo, f.random(4000))}
				}
				var wg sync.WaitGroup
				errs := make([]error, 2)
				start := make(chan struct{})
				for i, f := range pushers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						_, _, errs[i] = f.imageOf(fmt.Sprintf("team/r%d", i), "t", blobs[i]...)
					}()
				}
				close(start)
				wg.Wait()
				won := 0
				for _, err := range errs {
					switch {
					case err == nil:
						won++
					case !errors.Is(err, refcount.ErrQuota):
						t.Fatalf("round %d: %v", round, err)
					}
				}
				if won != 1 {
					t.Fatalf("round %d: %d pushes won (%v)", round, won, errs)
				}
				if u := a.quota("team/*"); u.Bytes > 6000 || u.Tags != 1 {
					t.Fatalf("round %d: usage %+v over the quota", round, u)
				}
				for i := range pushers {
					if _, err := a.DeleteRepo(fmt.Sprintf("team/r%d", i)); err != nil && !errors.Is(err, refcount.ErrNameUnknown) {
						t.Fatal(err)
					}
				}
			}
			if s, ok := a.StoreStats(); ok {
				t.Logf("%s: %d reruns after conflicts", be.Name, s.Retries)
			}
		})
	}
}

// When the rules change between restarts the usage is rebuilt for the
// new ones (and fsck agrees); with no quota left, nothing is charged.
func TestQuotaRebuildAfterRuleChange(t *testing.T) {
	f := newFixture(t, regtest.Options{Policies: quotaSet(policy.Quota{Repos: []string{"team-a/*"}})})
	shared := f.blob("team-a/x", 1000)
	f.image("team-a/x", "v1", shared)
	f.bytesBlob("team-b/y", f.stored(shared))
	f.image("team-b/y", "v1", shared)
	a := f.quota("team-a/*")
	f.SetPolicies(quotaSet(policy.Quota{Repos: []string{"team-*"}, MaxTags: 10}))
	f.MustClean()
	u := f.quota("team-*")
	// Both images, the shared layer once.
	var b int64
	f.update(func(tx *kv.Tx) error {
		s, _, err := tx.RepoStats("team-b/y")
		b = s.Bytes
		return err
	})
	if want := a.Bytes + (b - 1000) + manifestBytes(t, f, "team-b/y"); u.Bytes != want || u.Tags != 2 {
		t.Fatalf("after the change: %+v, want %d bytes 2 tags", u, want)
	}
	// Limits alone change: no rebuild needed, the figures stay.
	f.SetPolicies(quotaSet(policy.Quota{Repos: []string{"team-*"}, MaxTags: 20}))
	if u2 := f.quota("team-*"); u2.Bytes != u.Bytes || u2.MaxTags != 20 {
		t.Fatalf("after a limit change: %+v", u2)
	}
	f.SetPolicies(&policy.Set{})
	if qs, err := f.Quotas(); err != nil || len(qs) != 0 {
		t.Fatalf("quotas with none configured: %v %v", qs, err)
	}
	f.MustClean()
	// Back to the first rules: the same figures as at first.
	f.SetPolicies(quotaSet(policy.Quota{Repos: []string{"team-a/*"}}))
	if u3 := f.quota("team-a/*"); u3.Bytes != a.Bytes || u3.Tags != a.Tags {
		t.Fatalf("back to the first rules: %+v, was %+v", u3, a)
	}
}

// manifestBytes sums the sizes of a repository's manifests.
func manifestBytes(t *testing.T, f *fixture, repo string) int64 {
	var n int64
	f.update(func(tx *kv.Tx) error {
		n = 0
		return tx.ForEachManifest(repo, func(_ string, m kv.Manifest) error { n += m.Size; return nil })
	})
	return n
}

// fsck finds a namespace's usage that differs from a recount, and
// --repair makes it right.
func TestQuotaFsck(t *testing.T) {
	f := newFixture(t, regtest.Options{Policies: quotaSet(policy.Quota{Repos: []string{"team/*"}, MaxBytes: 1 << 20})})
	f.image("team/a", "v1", f.blob("team/a", 500))
	want := f.quota("team/*")
	// Damage: the usage zeroed and the blob index emptied, as a rebuild
	// for rules that match nothing leaves them.
	f.update(func(tx *kv.Tx) error {
		_, err := tx.RebuildQuotas([]string{"team/*"}, nil)
		return err
	})
	if u := f.quota("team/*"); u.Bytes != 0 {
		t.Fatalf("damage did not take: %+v", u)
	}
	ps := f.Problems()
	got := kinds(ps)
	if len(got) != 3 || got[0] != refcount.ProblemQuota+" team/*" {
		t.Fatalf("fsck found %v, want the usage and the two blobs' rows", ps)
	}
	rep, err := f.Repair(true, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Remaining) != 0 || len(rep.Fixed) != 3 {
		t.Fatalf("repair: fixed %v, remaining %v", rep.Fixed, rep.Remaining)
	}
	if u := f.quota("team/*"); u.Bytes != want.Bytes || u.Tags != want.Tags {
		t.Fatalf("after repair %+v, want %+v", u, want)
	}
}

// BenchmarkPushQuota is a push of an image (a new config and layer over a
// shared base) with no quota rule and into a namespace with one: what
// keeping the usage and checking it costs a manifest PUT.
func BenchmarkPushQuota(b *testing.B) {
	for _, c := range []struct {
		name string
		p    *policy.Set
	}{{"none", nil}, {"quota", quotaSet(policy.Quota{Repos: []string{"team/*"}, MaxBytes: 1 << 40, MaxTags: 1 << 40})}} {
		b.Run(c.name, func(b *testing.B) {
			f := newFixture(b, regtest.Options{Policies: c.p})
			base := f.blob("team/app", 4096)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				cfg, l := f.blob("team/app", 100), f.blob("team/app", 1024)
				b.StartTimer()
				if _, _, err := f.imageOf("team/app", fmt.Sprintf("t%d", i), cfg, base, l); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Retention applies in the push's transaction before the quota is
// checked: under keep-last 2 a tag quota of 2 never refuses a push, the
// tag the push retires making room for its own.
func TestQuotaAfterRetention(t *testing.T) {
	p := quotaSet(policy.Quota{Repos: []string{"ci/*"}, MaxTags: 2})
	p.Retentions = []policy.Retention{{Repos: []string{"ci/*"}, KeepLast: 2}}
	f := newFixture(t, regtest.Options{Policies: p})
	for i := 0; i < 4; i++ {
		f.Clock.Advance(1e9)
		cfg := f.blob("ci/app", 50+i)
		if _, _, err := f.imageOf("ci/app", fmt.Sprintf("t%d", i), cfg); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if u := f.quota("ci/*"); u.Tags != 2 {
		t.Fatalf("usage %+v", u)
	}
}

// Concurrent pushes and deletes of images sharing a base, in several
// repositories of one namespace (on PostgreSQL through two replicas): the
// usage stays what a recount says (fsck at the end checks it).
func TestQuotaConcurrentSharedBase(t *testing.T) {
	bs, err := regtest.Backends()
	if err != nil {
		t.Fatal(err)
	}
	be := bs[0]
	opts := regtest.Options{Backend: be, Policies: quotaSet(policy.Quota{Repos: []string{"team/*"}, MaxBytes: 1 << 30})}
	opts.Shared = be.DB == "postgres"
	a := newFixture(t, opts)
	b := a
	if opts.Shared {
		b = &fixture{Registry: a.Replica(), t: t, rnd: rand.New(rand.NewSource(2))}
	}
	base := a.random(2000)
	const workers, rounds = 4, 5
	type job struct {
		f      *fixture
		repo   string
		blobs  [][]digest.Digest
		failed error
	}
	jobs := make([]*job, workers)
	for w := range jobs {
		f := []*fixture{a, b}[w%2]
		j := &job{f: f, repo: fmt.Sprintf("team/w%d", w)}
		for i := 0; i < rounds; i++ {
			j.blobs = append(j.blobs, []digest.Digest{f.bytesBlob(j.repo, f.random(40+w)), f.bytesBlob(j.repo, base), f.bytesBlob(j.repo, f.random(300))})
		}
		jobs[w] = j
	}
	sizes := map[string]int64{}
	for _, j := range jobs {
		for _, bl := range j.blobs {
			for _, d := range bl {
				sizes[string(d)] = a.size(string(d))
			}
		}
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, bl := range j.blobs {
				var body []byte
				var list []string
				for _, d := range bl {
					list = append(list, string(d))
				}
				body = imageBody(list, func(d string) int64 { return sizes[d] })
				if _, err := j.f.PutManifest(j.repo, "", []string{fmt.Sprintf("t%d", i)}, refcount.MediaTypeOCIManifest, body, ""); err != nil {
					j.failed = err
					return
				}
				if i%2 == 1 {
					if _, err := j.f.DeleteTag(j.repo, fmt.Sprintf("t%d", i-1)); err != nil {
						j.failed = err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, j := range jobs {
		if j.failed != nil {
			t.Fatal(j.failed)
		}
	}
	a.MustClean()
	if u := a.quota("team/*"); u.Tags != workers*(rounds-rounds/2) {
		t.Fatalf("usage %+v", u)
	}
}

// Replicas started with other quota rules: the last one to start rebuilds
// the usage for its own rules and records them, and a replica still
// charging by the earlier rules says it is not ready (the load balancer
// then sends it nothing) until it is restarted with the rules in force.
func TestQuotaReplicaRulesOutOfStep(t *testing.T) {
	bs, err := regtest.Backends()
	if err != nil {
		t.Fatal(err)
	}
	var a *fixture
	for _, be := range bs {
		if be.DB == "postgres" {
			a = newFixture(t, regtest.Options{Backend: be, Shared: true, Policies: quotaSet(policy.Quota{Repos: []string{"team/*"}, MaxBytes: 6000})})
		}
	}
	if a == nil {
		t.Skip("replicas need PostgreSQL (KVREG_TEST_BACKENDS=postgres)")
	}
	if err := a.Ready(); err != nil {
		t.Fatalf("the only replica: %v", err)
	}
	b := a.ReplicaWith(quotaSet(policy.Quota{Repos: []string{"team/*", "ops/*"}, MaxBytes: 6000}))
	if err := b.Ready(); err != nil {
		t.Fatalf("the replica with the rules in force: %v", err)
	}
	if err := a.Ready(); !errors.Is(err, refcount.ErrQuotaRulesDiffer) {
		t.Fatalf("the replica with the earlier rules: Ready = %v, want ErrQuotaRulesDiffer", err)
	}
	c := a.ReplicaWith(quotaSet(policy.Quota{Repos: []string{"team/*", "ops/*"}, MaxBytes: 6000}))
	if err := c.Ready(); err != nil {
		t.Fatalf("a replica restarted with the rules in force: %v", err)
	}
	if err := b.ReplicaWith(nil).Ready(); err != nil {
		t.Fatalf("a replica started with no quota rules (it records none): %v", err)
	}
	if err := c.Ready(); !errors.Is(err, refcount.ErrQuotaRulesDiffer) {
		t.Fatalf("after a replica without quotas started: Ready = %v, want ErrQuotaRulesDiffer", err)
	}
}
