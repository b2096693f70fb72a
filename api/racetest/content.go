package racetest

import (
	"encoding/json"
	"fmt"
	"math/rand"

	"github.com/opencontainers/go-digest"
)

// Media types of what the races push.
const (
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// Blob is content with its digest.
type Blob struct {
	Digest digest.Digest
	Data   []byte
}

// NewBlob is data with its digest.
func NewBlob(data []byte) Blob { return Blob{digest.FromBytes(data), data} }

// RandomBlob is n bytes from rng.
func RandomBlob(rng *rand.Rand, n int) Blob {
	b := make([]byte, n)
	rng.Read(b)
	return NewBlob(b)
}

// RandomConfig is an image configuration unique to rng's next number.
func RandomConfig(rng *rand.Rand) Blob {
	return NewBlob([]byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Env":["SEED=%d"]}}`, rng.Int63())))
}

// Manifest is a manifest's bytes and what a push of it must send first:
// its blobs (the config first) or, of an index, its children.
type Manifest struct {
	MediaType string
	Body      []byte
	Digest    digest.Digest
	Blobs     []Blob
	Children  []*Manifest
}

type desc struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int    `json:"size"`
}

// Image is the OCI image manifest of config and layers.
func Image(config Blob, layers ...Blob) *Manifest {
	v := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{2, MediaTypeManifest, desc{mediaTypeConfig, config.Digest.String(), len(config.Data)}, []desc{}}
	for _, l := range layers {
		v.Layers = append(v.Layers, desc{mediaTypeLayer, l.Digest.String(), len(l.Data)})
	}
	body, _ := json.Marshal(v)
	return &Manifest{MediaType: MediaTypeManifest, Body: body, Digest: digest.FromBytes(body),
		Blobs: append([]Blob{config}, layers...)}
}

// Index is the OCI image index of children.
func Index(children ...*Manifest) *Manifest {
	v := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Manifests     []desc `json:"manifests"`
	}{2, MediaTypeIndex, []desc{}}
	for _, c := range children {
		v.Manifests = append(v.Manifests, desc{c.MediaType, c.Digest.String(), len(c.Body)})
	}
	body, _ := json.Marshal(v)
	return &Manifest{MediaType: MediaTypeIndex, Body: body, Digest: digest.FromBytes(body), Children: children}
}
