package kv

import (
	"strings"
	"testing"
)

func teamNS(repo string) string {
	if strings.HasPrefix(repo, "team/") {
		return "team/*"
	}
	return ""
}

// A version 9 store opens as version 10 with everything it answered
// unchanged, no quota rules recorded and no usage; a rebuild computes the
// usage (a blob referenced in two repositories of the namespace once, an
// unreferenced link not at all), and from then on the write methods keep
// it, as a recount finds it.
func TestMigrateQuotaV10(t *testing.T) {
	db, _ := migratedFrom(t, 9)
	err := db.Update(func(tx *Tx) error {
		if _, ok, err := tx.QuotaRules(); ok || err != nil {
			t.Errorf("quota rules in a migrated store: %v %v", ok, err)
		}
		if u, err := tx.QuotaUsage("team/*"); u != (QuotaUsage{}) || err != nil {
			t.Errorf("usage in a migrated store: %+v %v", u, err)
		}
		rc, err := tx.RebuildQuotas(nil, teamNS)
		if err != nil {
			return err
		}
		// base 100 (in both), a 10, b 20; lone (no manifest) not; three
		// manifests of 50; three tags.
		want := QuotaUsage{Bytes: 100 + 10 + 20 + 150, Tags: 3}
		if rc.Usage["team/*"] != want {
			t.Errorf("recount %+v, want %+v", rc.Usage, want)
		}
		if u, err := tx.QuotaUsage("team/*"); u != want || err != nil {
			t.Errorf("usage after the rebuild %+v %v, want %+v", u, err, want)
		}
		rows, err := tx.QuotaBlobs()
		if err != nil {
			return err
		}
		if r := rows["team/*"]; len(rows) != 1 || len(r) != 3 || r["sha256:base"] != 2 || r["sha256:a"] != 1 || r["sha256:b"] != 1 {
			t.Errorf("quotablobs %v", rows)
		}
		return tx.PutQuotaRules(QuotaRules{Namespaces: []string{"team/*"}, Hash: "h"})
	})
	if err != nil {
		t.Fatal(err)
	}
	db.SetQuotaNamespaces(teamNS)
	err = db.Update(func(tx *Tx) error {
		// team/b still references base: no change.
		if _, err := tx.DeleteLink("team/a", "sha256:base"); err != nil {
			return err
		}
		if ns, d := tx.QuotaNamespace("team/a"); ns != "team/*" || d != (QuotaUsage{}) {
			t.Errorf("after dropping a shared blob: %q %+v", ns, d)
		}
		// The last reference goes: base's bytes go.
		if err := tx.PutLink("team/b", "sha256:base", Link{}); err != nil {
			return err
		}
		// A link that a manifest now references is charged.
		if err := tx.PutLink("team/b", "sha256:lone", Link{Refs: 1}); err != nil {
			return err
		}
		if err := tx.DeleteTag("team/a", "v1"); err != nil {
			return err
		}
		if err := tx.DeleteManifest("team/a", "sha256:m1"); err != nil {
			return err
		}
		// Outside the namespace: nothing.
		if err := tx.PutLink("other", "sha256:a", Link{Refs: 1}); err != nil {
			return err
		}
		if err := tx.PutTag("other", "x", "sha256:m1", 0); err != nil {
			return err
		}
		if ns, d := tx.QuotaNamespace("team/b"); ns != "team/*" || d != (QuotaUsage{Bytes: -100 + 7 - 50, Tags: -1}) {
			t.Errorf("this transaction's change: %q %+v", ns, d)
		}
		if ns, d := tx.QuotaNamespace("other"); ns != "" || d != (QuotaUsage{}) {
			t.Errorf("outside every namespace: %q %+v", ns, d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *Tx) error {
		want := QuotaUsage{Bytes: 280 - 100 + 7 - 50, Tags: 2}
		if u, err := tx.QuotaUsage("team/*"); u != want || err != nil {
			t.Errorf("usage %+v %v, want %+v", u, err, want)
		}
		rc, err := tx.RecountQuotas(teamNS)
		if err != nil || rc.Usage["team/*"] != want {
			t.Errorf("recount %+v %v, want %+v", rc.Usage, err, want)
		}
		rows, err := tx.QuotaBlobs()
		if err != nil {
			return err
		}
		if r := rows["team/*"]; len(r) != 3 || r["sha256:base"] != 0 || r["sha256:lone"] != 1 {
			t.Errorf("quotablobs %v", rows)
		}
		// Rebuilding what is right changes nothing.
		if _, err := tx.RebuildQuotas([]string{"team/*"}, teamNS); err != nil {
			return err
		}
		if u, err := tx.QuotaUsage("team/*"); u != want || err != nil {
			t.Errorf("usage after a second rebuild %+v %v", u, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
