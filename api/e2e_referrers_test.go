package api_test

import (
	"encoding/json"
	"math/rand"
	"net/http"
	"net/url"
	"testing"
	"time"
)

const sbomType = "application/vnd.example.sbom"

type referrersIndex struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

// referrers GETs the referrers of subject (optionally filtered) and
// decodes the index.
func (r *testRegistry) referrers(repo, subject, artifactType string) (referrersIndex, response) {
	r.t.Helper()
	p := "/v2/" + repo + "/referrers/" + subject
	if artifactType != "" {
		p += "?artifactType=" + url.QueryEscape(artifactType)
	}
	resp := r.get(p, nil)
	expectStatus(r.t, "GET referrers of "+subject, resp, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); ct != mtOCIIndex {
		r.t.Fatalf("referrers Content-Type %q, want %q", ct, mtOCIIndex)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(resp.Body, &raw); err != nil {
		r.t.Fatalf("referrers body: %v: %s", err, resp.Body)
	}
	if m, ok := raw["manifests"]; !ok || string(m) == "null" {
		r.t.Fatalf("referrers body has no manifests array: %s", resp.Body)
	}
	var idx referrersIndex
	if err := json.Unmarshal(resp.Body, &idx); err != nil {
		r.t.Fatalf("referrers body: %v", err)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != mtOCIIndex {
		r.t.Fatalf("referrers: schemaVersion %d mediaType %q", idx.SchemaVersion, idx.MediaType)
	}
	return idx, resp
}

// sbomFor builds an artifact manifest about subject: artifactType sbomType,
// the empty config, one layer.
func sbomFor(rng *rand.Rand, subject manifest, note string) manifest {
	layer := randomLayer(rng, "application/spdx+json", 2<<10)
	return ociImage(emptyConfig(), []blob{layer}, imageOpts{
		ArtifactType: sbomType,
		Subject:      &subject,
		Annotations:  map[string]string{"org.example.note": note},
	})
}

func TestE2EReferrers(t *testing.T) {
	r, rng := startSeeded(t, 6)

	s := randomOCIImage(rng, nil, 20<<10)
	r.pushImage("ref", "s", s)

	art := sbomFor(rng, s, "first")
	resp := r.pushImage("ref", art.Digest, art)
	if got := resp.Header.Get("OCI-Subject"); got != s.Digest {
		t.Fatalf("PUT of a manifest with a subject: OCI-Subject %q, want %q", got, s.Digest)
	}
	r.pull("ref", art.Digest, art)

	check := func(idx referrersIndex, want ...manifest) {
		t.Helper()
		if len(idx.Manifests) != len(want) {
			t.Fatalf("referrers: %d entries, want %d: %+v", len(idx.Manifests), len(want), idx.Manifests)
		}
		for i, w := range want {
			got := idx.Manifests[i]
			if got.Digest != w.Digest || got.MediaType != mtOCIManifest || got.Size != int64(len(w.Body)) {
				t.Errorf("referrer %d: %+v, want digest %s size %d", i, got, w.Digest, len(w.Body))
			}
			if got.ArtifactType != sbomType {
				t.Errorf("referrer %d: artifactType %q, want %q", i, got.ArtifactType, sbomType)
			}
			if got.Annotations["org.example.note"] == "" {
				t.Errorf("referrer %d: annotations %v lack org.example.note", i, got.Annotations)
			}
		}
	}

	idx, resp := r.referrers("ref", s.Digest, "")
	check(idx, art)
	if idx.Manifests[0].Annotations["org.example.note"] != "first" {
		t.Errorf("referrer annotations %v", idx.Manifests[0].Annotations)
	}
	if resp.Header.Get("OCI-Filters-Applied") != "" {
		t.Errorf("unfiltered referrers: OCI-Filters-Applied %q", resp.Header.Get("OCI-Filters-Applied"))
	}
	idx, resp = r.referrers("ref", s.Digest, sbomType)
	check(idx, art)
	if got := resp.Header.Get("OCI-Filters-Applied"); got != "artifactType" {
		t.Errorf("filtered referrers: OCI-Filters-Applied %q, want artifactType", got)
	}
	idx, resp = r.referrers("ref", s.Digest, "application/vnd.example.other")
	check(idx)
	if got := resp.Header.Get("OCI-Filters-Applied"); got != "artifactType" {
		t.Errorf("filtered referrers: OCI-Filters-Applied %q, want artifactType", got)
	}
	r.checkInvariants(blobsOf(s, art))

	// A referrer pushed before its subject exists is accepted, and listed
	// once the subject arrives.
	s2 := randomOCIImage(rng, nil, 21<<10)
	art2 := sbomFor(rng, s2, "early")
	resp = r.pushImage("ref", art2.Digest, art2)
	if got := resp.Header.Get("OCI-Subject"); got != s2.Digest {
		t.Errorf("PUT of a referrer before its subject: OCI-Subject %q, want %q", got, s2.Digest)
	}
	r.pushImage("ref", "s2", s2)
	idx, _ = r.referrers("ref", s2.Digest, "")
	check(idx, art2)
	idx, _ = r.referrers("ref", s2.Digest, sbomType)
	check(idx, art2)

	// The subject holds it now, not only its lease: it outlives the grace.
	r.reg.Clock.Advance(2 * time.Hour)
	r.sweep()
	r.pull("ref", art2.Digest, art2)
	idx, _ = r.referrers("ref", s2.Digest, "")
	check(idx, art2)
	r.checkInvariants(blobsOf(s, art, s2, art2))

	// Deleting S takes its referrer and the referrer's own blobs with it.
	expectStatus(t, "DELETE s by tag", r.del("/v2/ref/manifests/s"), http.StatusAccepted)
	r.expectManifestGone("ref", s.Digest)
	r.expectManifestGone("ref", art.Digest)
	if r.hasBlobFile(art.Layers[0]) {
		t.Errorf("the deleted referrer's layer file is still on disk")
	}
	r.expectBlobGone("ref", art.Layers[0])
	idx, _ = r.referrers("ref", s.Digest, "")
	check(idx)
	// The empty config is shared with art2 and stays.
	r.pull("ref", art2.Digest, art2)
	r.checkInvariants(blobsOf(s2, art2))

	// Deleting S2 by digest takes art2 and every remaining blob.
	expectStatus(t, "DELETE s2 by digest", r.del("/v2/ref/manifests/"+s2.Digest), http.StatusAccepted)
	r.expectManifestGone("ref", art2.Digest)
	idx, _ = r.referrers("ref", s2.Digest, "")
	check(idx)
	r.expectBlobFiles()
	r.checkInvariants()
}

// A referrer that is tagged itself survives its subject's deletion.
func TestE2ETaggedReferrerSurvivesSubject(t *testing.T) {
	r, rng := startSeeded(t, 61)
	s := randomOCIImage(rng, nil, 4<<10)
	r.pushImage("tr", "s", s)
	art := sbomFor(rng, s, "tagged")
	r.pushImage("tr", "sbom", art)

	expectStatus(t, "DELETE subject", r.del("/v2/tr/manifests/"+s.Digest), http.StatusAccepted)
	r.expectManifestGone("tr", s.Digest)
	r.pull("tr", "sbom", art)
	r.checkInvariants(art.Blobs())

	expectStatus(t, "DELETE referrer tag", r.del("/v2/tr/manifests/sbom"), http.StatusAccepted)
	r.expectBlobFiles()
	r.checkInvariants()
}
