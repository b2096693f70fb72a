package browser

import (
	"bytes"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// content is what the test pushes, as alice:
//
//	public/base:1      base
//	team/app:1.0       base + one layer of its own, with labels and history;
//	                   a signature refers to it, and an attestation to the signature
//	team/app:2.0       base + two layers of its own
//	team/app:multi     an index of two images (linux/amd64, linux/arm64/v8)
//
// so that the base layer is shared by five image manifests.
type content struct {
	base                    v1.Layer
	app1, app2              v1.Image
	multi                   v1.ImageIndex
	sig, att                v1.Image
	app2Frees               int64 // what deleting team/app:2.0 frees: its own layers and config
	app1Digest, sigDigest   string
	attDigest, baseDigest   string
	multiDigest, app2Digest string
}

func layer(t *testing.T, size int64) v1.Layer {
	t.Helper()
	l, err := random.Layer(size, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func image(t *testing.T, cfg *v1.ConfigFile, layers ...v1.Layer) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		base, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cfg.RootFS = base.RootFS
		if img, err = mutate.ConfigFile(img, cfg); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func size(t *testing.T, s interface{ Size() (int64, error) }) int64 {
	t.Helper()
	n, err := s.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func digestOf(t *testing.T, s interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	d, err := s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func newContent(t *testing.T) *content {
	t.Helper()
	c := &content{base: layer(t, 300_000)}
	c.app1 = image(t, &v1.ConfigFile{
		Architecture: "amd64", OS: "linux",
		Config: v1.Config{Labels: map[string]string{"org.opencontainers.image.title": "app", "team": "platform"}},
		History: []v1.History{
			{CreatedBy: "ADD base.tar /"},
			{CreatedBy: "COPY app /usr/local/bin/app"},
		},
	}, c.base, layer(t, 120_000))
	own2, own3 := layer(t, 200_000), layer(t, 150_000)
	c.app2 = image(t, &v1.ConfigFile{Architecture: "amd64", OS: "linux",
		History: []v1.History{{CreatedBy: "ADD base.tar /"}, {CreatedBy: "RUN build"}, {CreatedBy: "RUN test"}}},
		c.base, own2, own3)
	cfg2, err := c.app2.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c.app2Frees = size(t, own2) + size(t, own3) + int64(len(cfg2))

	amd := image(t, &v1.ConfigFile{Architecture: "amd64", OS: "linux"}, c.base, layer(t, 50_000))
	arm := image(t, &v1.ConfigFile{Architecture: "arm64", Variant: "v8", OS: "linux"}, c.base, layer(t, 50_000))
	c.multi = mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)

	subject := func(img v1.Image) v1.Descriptor {
		raw, err := img.RawManifest()
		if err != nil {
			t.Fatal(err)
		}
		h, n, err := v1.SHA256(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		return v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: h, Size: n}
	}
	sig := image(t, nil, layer(t, 1_000))
	sig = mutate.ConfigMediaType(sig, "application/vnd.dev.cosign.artifact.sig.v1+json")
	c.sig = mutate.Subject(sig, subject(c.app1)).(v1.Image)
	att := image(t, nil, layer(t, 2_000))
	att = mutate.ConfigMediaType(att, "application/vnd.in-toto+json")
	c.att = mutate.Subject(att, subject(c.sig)).(v1.Image)

	c.baseDigest = digestOf(t, c.base)
	c.app1Digest, c.app2Digest = digestOf(t, c.app1), digestOf(t, c.app2)
	c.sigDigest, c.attDigest = digestOf(t, c.sig), digestOf(t, c.att)
	c.multiDigest = digestOf(t, c.multi)
	return c
}

// push writes the content into the registry at host as alice.
func (c *content) push(t *testing.T, host string) {
	t.Helper()
	auth := remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-pw"})
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(host+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	base := image(t, nil, c.base)
	for _, w := range []struct {
		ref string
		img v1.Image
	}{
		{"public/base:1", base}, {"team/app:1.0", c.app1}, {"team/app:2.0", c.app2},
		{"team/app@" + c.sigDigest, c.sig}, {"team/app@" + c.attDigest, c.att},
	} {
		if err := remote.Write(ref(w.ref), w.img, auth); err != nil {
			t.Fatalf("push %s: %v", w.ref, err)
		}
	}
	if err := remote.WriteIndex(ref("team/app:multi"), c.multi, auth); err != nil {
		t.Fatalf("push team/app:multi: %v", err)
	}
	t.Log("pushed public/base:1, team/app:{1.0,2.0,multi} and two referrers")
}
