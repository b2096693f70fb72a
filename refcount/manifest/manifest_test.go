package manifest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestParse(t *testing.T) {
	cfg := digest.FromString("config")
	l1 := digest.FromString("layer1")
	l2 := digest.FromString("layer2")
	data := base64.StdEncoding.EncodeToString([]byte("layer1"))
	img := func(extra string) string {
		return fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":6},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":6},{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":6}]%s}`,
			MediaTypeOCIManifest, cfg, l1, l1, extra)
	}
	tests := []struct {
		name, ct, body string
		ok             bool
		check          func(*Parsed) error
	}{
		{name: "image", ct: MediaTypeOCIManifest, body: img(""), ok: true, check: func(p *Parsed) error {
			if len(p.Blobs) != 2 || p.Blobs[0] != string(cfg) || p.Blobs[1] != string(l1) {
				return fmt.Errorf("blobs %v: a layer listed twice is one edge", p.Blobs)
			}
			if p.ArtifactType != "application/vnd.oci.image.config.v1+json" {
				return fmt.Errorf("artifactType %q", p.ArtifactType)
			}
			return nil
		}},
		{name: "subject", ct: MediaTypeOCIManifest, body: img(fmt.Sprintf(`,"subject":{"mediaType":%q,"digest":%q,"size":1}`, MediaTypeOCIManifest, l2)), ok: true,
			check: func(p *Parsed) error {
				if p.Subject != string(l2) {
					return fmt.Errorf("subject %q", p.Subject)
				}
				return nil
			}},
		{name: "no content type", ct: "", body: img(""), ok: true},
		{name: "content type with parameters", ct: MediaTypeOCIManifest + "; charset=utf-8", body: img(""), ok: true},
		{name: "mismatched content type", ct: MediaTypeDockerList, body: img(""), ok: false},
		{name: "unknown type", ct: "application/x-nope", body: `{"schemaVersion":2}`, ok: false},
		{name: "schema1", ct: "application/vnd.docker.distribution.manifest.v1+prettyjws", body: `{"schemaVersion":1}`, ok: false},
		{name: "not json", ct: MediaTypeOCIManifest, body: `{"schemaVersion":2,`, ok: false},
		{name: "trailing", ct: MediaTypeOCIManifest, body: img("") + "{}", ok: false},
		{name: "trailing braces", ct: MediaTypeOCIManifest, body: img("") + "}}", ok: false},
		{name: "trailing space", ct: MediaTypeOCIManifest, body: img("") + " \n", ok: true},
		{name: "no config", ct: MediaTypeOCIManifest, body: `{"schemaVersion":2,"layers":[]}`, ok: false},
		{name: "bad schemaVersion", ct: MediaTypeOCIIndex, body: `{"schemaVersion":3,"manifests":[]}`, ok: false},
		{name: "bad digest", ct: MediaTypeOCIManifest, body: `{"schemaVersion":2,"config":{"digest":"sha256:xyz","size":1}}`, ok: false},
		{name: "negative size", ct: MediaTypeOCIManifest, body: fmt.Sprintf(`{"schemaVersion":2,"config":{"digest":%q,"size":-1}}`, cfg), ok: false},
		{name: "data ok", ct: MediaTypeOCIManifest, body: fmt.Sprintf(`{"schemaVersion":2,"config":{"digest":%q,"size":6,"data":%q}}`, l1, data), ok: true},
		{name: "data wrong", ct: MediaTypeOCIManifest, body: fmt.Sprintf(`{"schemaVersion":2,"config":{"digest":%q,"size":6,"data":%q}}`, l2, data), ok: false},
		{name: "index", ct: MediaTypeOCIIndex, body: fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":%q,"digest":%q,"size":1},{"mediaType":%q,"digest":%q,"size":1}]}`, MediaTypeOCIManifest, l1, MediaTypeOCIManifest, l1), ok: true,
			check: func(p *Parsed) error {
				if len(p.Children) != 1 || len(p.Blobs) != 0 {
					return fmt.Errorf("children %v blobs %v", p.Children, p.Blobs)
				}
				return nil
			}},
		{name: "index with layers", ct: MediaTypeOCIIndex, body: fmt.Sprintf(`{"schemaVersion":2,"manifests":[],"layers":[{"digest":%q,"size":1}]}`, l1), ok: false},
		{name: "nondistributable", ct: MediaTypeOCIManifest, body: fmt.Sprintf(`{"schemaVersion":2,"config":{"digest":%q,"size":1},"layers":[{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar","digest":%q,"size":1,"urls":["https://example.invalid/x"]}]}`, cfg, l2), ok: true,
			check: func(p *Parsed) error {
				if !p.Optional[string(l2)] || p.Optional[string(cfg)] {
					return fmt.Errorf("optional %v", p.Optional)
				}
				return nil
			}},
	}
	for _, tc := range tests {
		p, err := Parse(tc.ct, []byte(tc.body))
		if tc.ok != (err == nil) {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v is not ErrInvalid", tc.name, err)
		}
		if err == nil && tc.check != nil {
			if cerr := tc.check(p); cerr != nil {
				t.Errorf("%s: %v", tc.name, cerr)
			}
		}
	}
}
