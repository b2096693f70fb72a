package kv

import (
	"fmt"
	"testing"

	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

// Each Prefetch method names the very keys its Tx method reads: after a
// prefetch, the reads cost no round trip (on PostgreSQL, which counts
// them), present records and absent ones alike, and read what was written.
func TestPrefetchCoversTheReads(t *testing.T) {
	db, err := Open(pgtest.NewDatabase(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	const repo, d, tag = "r/app", "sha256:aa", "v1"
	lease := Lease{Expiry: 77, Kind: LeaseLink, Repo: repo, Digest: d}
	if err := db.Update(func(tx *Tx) error {
		if err := tx.CreateBlob(d, Blob{Size: 5, Created: 1}); err != nil {
			return err
		}
		if err := tx.PutLink(repo, d, Link{Refs: 1}); err != nil {
			return err
		}
		if err := tx.PutManifest(repo, d, Manifest{Size: 3}, []byte("abc")); err != nil {
			return err
		}
		if err := tx.PutTag(repo, tag, d, 0); err != nil {
			return err
		}
		if err := tx.PutLease(lease); err != nil {
			return err
		}
		return tx.PutPin(Pin{Kind: LeaseLink, Repo: repo, Digest: d, Client: "ip:192.0.2.1", Until: 9})
	}); err != nil {
		t.Fatal(err)
	}
	trips := func() uint64 { s, _ := db.TxStats(); return s.RoundTrips }
	start := trips()
	var afterBatch uint64
	err = db.View(func(tx *Tx) error {
		pf := tx.Prefetch()
		for _, dg := range []string{d, "sha256:absent"} {
			pf.Blob(dg).Link(repo, dg).Manifest(repo, dg, true).Pin(LeaseLink, repo, dg, "ip:192.0.2.1").Tombstone(dg)
		}
		pf.Tag(repo, tag).Tag(repo, "absent").Repo(repo).Repo("absent").Lease(lease)
		if err := pf.Read(); err != nil {
			return err
		}
		afterBatch = trips()
		var got []string
		note := func(what string, v any, ok bool, err error) {
			got = append(got, fmt.Sprintf("%s=%v/%v/%v", what, v, ok, err))
		}
		for _, dg := range []string{d, "sha256:absent"} {
			b, ok, err := tx.Blob(dg)
			note("blob", b.Size, ok, err)
			l, ok, err := tx.Link(repo, dg)
			note("link", l.Refs, ok, err)
			m, ok, err := tx.Manifest(repo, dg)
			note("manifest", m.Size, ok, err)
			c, err := tx.ManifestContent(repo, dg)
			note("content", string(c), c != nil, err)
			p, ok, err := tx.Pin(LeaseLink, repo, dg, "ip:192.0.2.1")
			note("pin", p.Until, ok, err)
			_, ok, err = tx.Tombstone(dg)
			note("tombstone", "", ok, err)
		}
		v, ok, err := tx.Tag(repo, tag)
		note("tag", v, ok, err)
		_, ok, err = tx.Tag(repo, "absent")
		note("tag", "", ok, err)
		ok, err = tx.RepoExists(repo)
		note("repo", "", ok, err)
		ok, err = tx.RepoExists("absent")
		note("repo", "", ok, err)
		// PutLease reads the entry; on a read-only Tx it stops there,
		// with nothing to do for an entry that exists.
		note("lease", "", true, tx.PutLease(lease))
		want := fmt.Sprint([]string{
			"blob=5/true/<nil>", "link=1/true/<nil>", "manifest=3/true/<nil>", "content=abc/true/<nil>", "pin=9/true/<nil>", "tombstone=/false/<nil>",
			"blob=0/false/<nil>", "link=0/false/<nil>", "manifest=0/false/<nil>", "content=/false/<nil>", "pin=0/false/<nil>", "tombstone=/false/<nil>",
			"tag=sha256:aa/true/<nil>", "tag=/false/<nil>", "repo=/true/<nil>", "repo=/false/<nil>", "lease=/true/<nil>",
		})
		if fmt.Sprint(got) != want {
			t.Errorf("reads after the prefetch:\n got %v\nwant %v", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := afterBatch - start; n != 1 {
		t.Errorf("the prefetch took %d round trips, want 1", n)
	}
	if n := trips() - start; n != 1 {
		t.Errorf("the View took %d round trips, want 1: a read after the prefetch went to the database", n)
	}

	// By tag: the tag and the manifest it names, in one batch.
	for _, tg := range []string{tag, "absent"} {
		start = trips()
		var got string
		if err := db.View(func(tx *Tx) error {
			if err := tx.Prefetch().TagTarget(repo, tg, true).Read(); err != nil {
				return err
			}
			dg, ok, err := tx.Tag(repo, tg)
			if err != nil || !ok {
				got = fmt.Sprintf("tag %v %v", ok, err)
				return nil
			}
			m, ok, err := tx.Manifest(repo, dg)
			c, cerr := tx.ManifestContent(repo, dg)
			got = fmt.Sprintf("%s %d %v %v %s %v", dg, m.Size, ok, err, c, cerr)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{tag: "sha256:aa 3 true <nil> abc <nil>", "absent": "tag false <nil>"}[tg]
		if got != want {
			t.Errorf("by tag %q: read %q, want %q", tg, got, want)
		}
		if n := trips() - start; n != 1 {
			t.Errorf("by tag %q: the View took %d round trips, want 1", tg, n)
		}
	}
}
