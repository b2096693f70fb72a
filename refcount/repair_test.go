package refcount_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/manifest"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// damageStore builds: repo r with images A (base, a1) as r:a and B (base,
// b1) as r:b, and repo other with image C (base) as other:c.
type damageStore struct {
	*fixture
	base, a1, b1 digest.Digest
	A, B, C      digest.Digest
	lone         digest.Digest
}

// dropBlobTx deletes an unreferenced blob's records as a delete does,
// leaving its file (and tombstone) as a crash right after commit would.
func dropBlobTx(tx *kv.Tx, repo string, d digest.Digest) error {
	l, _, err := tx.Link(repo, string(d))
	if err != nil {
		return err
	}
	if err := tx.DeleteLease(kv.Lease{Expiry: l.Lease, Kind: kv.LeaseLink, Repo: repo, Digest: string(d)}); err != nil {
		return err
	}
	if _, err := tx.DeleteLink(repo, string(d)); err != nil {
		return err
	}
	return tx.DeleteBlob(string(d))
}

func newDamageStore(t *testing.T) *damageStore {
	f := newFixture(t, regtest.Options{})
	s := &damageStore{fixture: f}
	s.base = f.blob("r", 3000)
	s.a1 = f.blob("r", 2000)
	s.b1 = f.blob("r", 1000)
	s.A = f.image("r", "a", s.base, s.a1)
	s.B = f.image("r", "b", s.base, s.b1)
	if ok, err := f.Mount("other", "r", s.base); err != nil || !ok {
		t.Fatalf("mount: %v %v", ok, err)
	}
	s.C = f.image("other", "c", s.base)
	f.MustClean()
	return s
}

// intact asserts an image still resolves and every blob it uses is served
// and verifies.
func (s *damageStore) intact(repo, tag string) {
	s.t.Helper()
	info, err := s.GetManifest(repo, tag, true)
	if err != nil {
		s.t.Fatalf("%s:%s: %v", repo, tag, err)
	}
	p, err := manifest.Parse(info.MediaType, info.Content)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, b := range p.Blobs {
		d := digest.Digest(b)
		if _, err := s.StatBlob(repo, d, false, ""); err != nil {
			s.t.Fatalf("%s:%s blob %s: %v", repo, tag, b, err)
		}
		if ok, err := s.Blobs().Verify(d); err != nil || !ok {
			s.t.Fatalf("%s:%s blob %s does not verify", repo, tag, b)
		}
	}
}

func TestFsckFindsAndRepairsDamage(t *testing.T) {
	type scenario struct {
		name   string
		damage func(s *damageStore) // break the store
		want   func(s *damageStore) []string
		deep   bool // the damage is visible only to a deep check
		// broken: repair leaves r@A (and its tag) broken unless removeBroken.
		broken bool
		after  func(s *damageStore) // extra assertions after repair
	}
	scenarios := []scenario{
		{
			name: "blob file deleted",
			damage: func(s *damageStore) {
				if err := s.Blobs().Remove(s.a1); err != nil {
					s.t.Fatal(err)
				}
			},
			want:   func(s *damageStore) []string { return []string{refcount.ProblemBlobMissing + " " + string(s.a1)} },
			broken: true,
		},
		{
			name:   "blob file truncated",
			damage: func(s *damageStore) { s.plant(s.a1, s.stored(s.a1)[:10]) },
			want:   func(s *damageStore) []string { return []string{refcount.ProblemBlobSize + " " + string(s.a1)} },
			broken: true,
			after: func(s *damageStore) {
				if s.exists(s.a1) {
					s.t.Error("the truncated file is still there")
				}
			},
		},
		{
			name: "blob byte flipped",
			damage: func(s *damageStore) {
				b := s.stored(s.a1)
				b[len(b)/2] ^= 0xff
				s.plant(s.a1, b)
			},
			want:   func(s *damageStore) []string { return []string{refcount.ProblemBlobCorrupt + " " + string(s.a1)} },
			deep:   true,
			broken: true,
		},
		{
			// On a store that names locations (S3); the directory's
			// names none and ignores one.
			name: "blob record names another location",
			damage: func(s *damageStore) {
				s.update(func(tx *kv.Tx) error {
					b, _, err := tx.Blob(string(s.a1))
					if err != nil {
						return err
					}
					b.Location = "kvreg/data/elsewhere"
					return tx.RewriteBlob(string(s.a1), b)
				})
			},
			want: func(s *damageStore) []string {
				if _, loc, _ := s.Blobs().StoredSize(s.a1); loc == "" {
					return nil // a store that names bytes by digest alone
				}
				return []string{refcount.ProblemBlobLocation + " " + string(s.a1)}
			},
			after: func(s *damageStore) {
				if _, loc, _ := s.Blobs().StoredSize(s.a1); loc == "" {
					return
				}
				st, err := s.StatBlobRecord("r", s.a1)
				if err != nil || st.Location != "" {
					s.t.Fatalf("the record after repair: %+v, %v; want no location", st, err)
				}
				// A redirect finds the bytes through the store again.
				u, err := s.Blobs().PresignGet(s.a1, st.Created, st.Location, time.Minute)
				if err != nil || !servesBytes(s.t, u, s.stored(s.a1)) {
					s.t.Fatalf("the URL after repair (%v) does not serve the bytes", err)
				}
			},
		},
		{
			name: "orphan file",
			damage: func(s *damageStore) {
				b := []byte("nobody knows me")
				s.plant(digest.FromBytes(b), b)
			},
			want: func(s *damageStore) []string {
				return []string{refcount.ProblemOrphanFile + " " + string(digest.FromBytes([]byte("nobody knows me")))}
			},
			after: func(s *damageStore) {
				if s.exists(digest.FromBytes([]byte("nobody knows me"))) {
					s.t.Error("orphan file not removed")
				}
			},
		},
		{
			name: "link count bumped",
			damage: func(s *damageStore) {
				s.update(func(tx *kv.Tx) error {
					l, _, _ := tx.Link("r", string(s.a1))
					l.Refs += 2
					return tx.RewriteLink("r", string(s.a1), l)
				})
			},
			want: func(s *damageStore) []string { return []string{refcount.ProblemCount + " r@" + string(s.a1)} },
		},
		{
			name: "manifest count bumped",
			damage: func(s *damageStore) {
				s.update(func(tx *kv.Tx) error {
					m, _, _ := tx.Manifest("r", string(s.B))
					m.Refs++
					return tx.PutManifest("r", string(s.B), m, nil)
				})
			},
			want: func(s *damageStore) []string { return []string{refcount.ProblemCount + " r@" + string(s.B)} },
			after: func(s *damageStore) {
				// The recount must not free B: its tag still holds it.
				s.DeleteTag("r", "b")
				if _, err := s.GetManifest("r", string(s.B), false); !errors.Is(err, refcount.ErrManifestUnknown) {
					s.t.Errorf("B after its only tag went: %v", err)
				}
			},
		},
		{
			name: "counter bumped",
			damage: func(s *damageStore) {
				s.update(func(tx *kv.Tx) error {
					c, err := tx.Counters()
					if err != nil {
						return err
					}
					c.Tags += 5
					return tx.SetCounters(c)
				})
			},
			want: func(s *damageStore) []string { return []string{refcount.ProblemCounter + " store"} },
		},
		{
			name: "lease expired",
			damage: func(s *damageStore) {
				s.lone = s.blob("r", 500) // never referenced
				s.Clock.Advance(2 * time.Hour)
			},
			want: func(s *damageStore) []string {
				return []string{refcount.ProblemLeaseExpired + " r@" + string(s.lone)}
			},
			after: func(s *damageStore) {
				if s.exists(s.lone) {
					s.t.Error("the file of the expired blob is still there")
				}
			},
		},
		{
			name: "interrupted upload",
			damage: func(s *damageStore) {
				// What a crash between linking the file and recording it leaves.
				s.interrupt("r", []byte("half-committed"))
			},
			want: func(s *damageStore) []string {
				d := digest.FromBytes([]byte("half-committed"))
				return []string{refcount.ProblemInterrupted + " ?", refcount.ProblemOrphanFile + " " + string(d)}
			},
			after: func(s *damageStore) {
				if s.exists(digest.FromBytes([]byte("half-committed"))) {
					s.t.Error("the half-committed blob file is still there")
				}
				ids, _ := s.Blobs().Uploads()
				if len(ids) != 0 {
					s.t.Errorf("uploads left: %v", ids)
				}
			},
		},
		{
			name: "half-finished delete",
			damage: func(s *damageStore) {
				// The record went, the process died before the file did.
				lone := s.blob("r", 700)
				s.lone = lone
				s.update(func(tx *kv.Tx) error { return dropBlobTx(tx, "r", lone) })
			},
			want: func(s *damageStore) []string {
				return []string{refcount.ProblemPendingDelete + " " + string(s.lone)}
			},
			after: func(s *damageStore) {
				if s.exists(s.lone) {
					s.t.Error("file of the deleted record still there")
				}
			},
		},
	}
	for _, sc := range scenarios {
		for _, removeBroken := range []bool{false, true} {
			if !sc.broken && removeBroken {
				continue
			}
			name := sc.name
			if removeBroken {
				name += "/remove-broken"
			}
			t.Run(name, func(t *testing.T) {
				s := newDamageStore(t)
				sc.damage(s)
				if !sc.deep {
					// What a shallow check sees, a deep one sees too.
					assertProblems(t, s.Problems(), sc.want(s))
				}
				got, err := s.Check(sc.deep)
				if err != nil {
					t.Fatal(err)
				}
				assertProblems(t, got, sc.want(s))
				if sc.deep {
					if shallow, _ := s.Check(false); len(shallow) != 0 {
						t.Fatalf("a shallow check saw %v", kinds(shallow))
					}
				}
				rep, err := s.Repair(sc.deep, removeBroken)
				if err != nil {
					t.Fatal(err)
				}
				if sc.broken && !removeBroken {
					wantBroken := []string{"r@" + string(s.A), "r:a"}
					if !reflect.DeepEqual(rep.Broken, wantBroken) {
						t.Fatalf("broken = %v, want %v", rep.Broken, wantBroken)
					}
					for _, p := range rep.Remaining {
						if p.Kind != refcount.ProblemDanglingEdge || p.Object != "r@"+string(s.A) {
							t.Fatalf("after repair without --remove-broken: %v", kinds(rep.Remaining))
						}
					}
					// Nothing claims the lost blob exists.
					if _, err := s.StatBlob("r", s.a1, false, ""); !errors.Is(err, refcount.ErrBlobUnknown) {
						t.Fatalf("lost blob still served: %v", err)
					}
				} else {
					if len(rep.Remaining) != 0 {
						t.Fatalf("after repair: %v", kinds(rep.Remaining))
					}
					s.MustClean()
				}
				if sc.broken && removeBroken {
					if _, err := s.GetManifest("r", "a", false); !errors.Is(err, refcount.ErrManifestUnknown) {
						t.Fatalf("broken image still tagged: %v", err)
					}
				}
				// Nothing valid was removed.
				s.intact("r", "b")
				s.intact("other", "c")
				if !sc.broken {
					s.intact("r", "a")
				}
				if !s.exists(s.base) {
					t.Fatal("shared base layer removed")
				}
				if sc.after != nil {
					sc.after(s)
				}
				if sc.broken && !removeBroken {
					// The broken image stays until it is removed; removing
					// it leaves the store clean, as fsck at the end checks.
					rep, err := s.Repair(false, true)
					if err != nil || len(rep.Remaining) != 0 {
						t.Fatalf("removing the broken image: %v, %v", kinds(rep.Remaining), err)
					}
				}
			})
		}
	}
}

// assertProblems compares problem kinds and objects; "?" matches any
// object.
func assertProblems(t *testing.T, got []refcount.Problem, want []string) {
	t.Helper()
	g := kinds(got)
	if len(g) != len(want) {
		t.Fatalf("problems %v, want %v", g, want)
	}
	for i := range want {
		if strings.HasSuffix(want[i], " ?") {
			if !strings.HasPrefix(g[i], strings.TrimSuffix(want[i], "?")) {
				t.Fatalf("problem %d = %q, want %q", i, g[i], want[i])
			}
			continue
		}
		if g[i] != want[i] {
			t.Fatalf("problem %d = %q, want %q (all: %v)", i, g[i], want[i], g)
		}
	}
}

func TestRecoverOnOpenFinishesInterruptedWork(t *testing.T) {
	f := newFixture(t, regtest.Options{})
	base := f.blob("r", 1000)
	f.image("r", "x", base)
	d := f.interrupt("r", []byte("half-committed"))
	// A tombstone whose file is still there.
	lone := f.blob("r", 700)
	f.update(func(tx *kv.Tx) error { return dropBlobTx(tx, "r", lone) })
	if len(f.Problems()) == 0 {
		t.Fatal("damage not seen")
	}
	f.Reopen()
	f.MustClean()
	if f.exists(d) || f.exists(lone) {
		t.Fatal("recovery left files behind")
	}
	if !f.exists(base) {
		t.Fatal("recovery removed a live blob")
	}
}
