package manifest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"strings"

	"github.com/kvreg/kvreg/blobs"
)

// Manifest media types kvreg stores.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerSchema1  = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSigned1  = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// IsIndex reports whether a media type lists child manifests.
func IsIndex(mt string) bool { return mt == MediaTypeOCIIndex || mt == MediaTypeDockerList }

// Descriptor is the part of an OCI descriptor kvreg reads.
type Descriptor struct {
	MediaType    string            `json:"mediaType,omitempty"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	URLs         []string          `json:"urls,omitempty"`
	Data         *string           `json:"data,omitempty"`
	Platform     json.RawMessage   `json:"platform,omitempty"`
}

type rawManifest struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *Descriptor       `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Manifests     []Descriptor      `json:"manifests"`
	Subject       *Descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// Parsed is a validated manifest and the edges it adds.
type Parsed struct {
	MediaType    string
	ArtifactType string // as the referrers API reports it
	Subject      string
	Annotations  map[string]string
	// Blobs are the distinct blobs it references; Optional marks those
	// (non-distributable layers) that need not be in the registry.
	Blobs    []string
	Optional map[string]bool
	Children []string
	// Sizes are the sizes the descriptors give, by digest.
	Sizes map[string]int64
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// ParseManifest validates a manifest body pushed with a Content-Type.
func Parse(contentType string, body []byte) (*Parsed, error) {
	var raw rawManifest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return nil, invalid("not valid JSON: %v", err)
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) != 0 {
		return nil, invalid("trailing data after the JSON document")
	}
	if err := checkNames(body); err != nil {
		return nil, err
	}
	ct := ""
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return nil, invalid("bad Content-Type %q", contentType)
		}
		ct = mt
	}
	mt := ct
	switch {
	case raw.MediaType != "" && ct != "" && raw.MediaType != ct && !compatibleContentType(ct):
		return nil, invalid("mediaType %q does not match Content-Type %q", raw.MediaType, ct)
	case raw.MediaType != "":
		mt = raw.MediaType
	case compatibleContentType(mt):
		mt = ""
	}
	if mt == "" {
		// No usable type given: tell an index from an image by its fields.
		if raw.Manifests != nil {
			mt = MediaTypeOCIIndex
		} else {
			mt = MediaTypeOCIManifest
		}
	}
	switch mt {
	case MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifest, MediaTypeDockerList:
	case mediaTypeDockerSchema1, mediaTypeDockerSigned1:
		return nil, invalid("Docker schema 1 manifests are not supported; push schema 2 or OCI")
	default:
		return nil, invalid("unsupported manifest media type %q", mt)
	}
	if raw.SchemaVersion == nil || *raw.SchemaVersion != 2 {
		return nil, invalid("schemaVersion must be 2")
	}
	p := &Parsed{MediaType: mt, ArtifactType: raw.ArtifactType, Annotations: raw.Annotations, Optional: map[string]bool{}, Sizes: map[string]int64{}}
	sized := func(d Descriptor, where string) error {
		if s, ok := p.Sizes[d.Digest]; ok && s != d.Size {
			return invalid("%s: %s is given sizes %d and %d", where, d.Digest, s, d.Size)
		}
		p.Sizes[d.Digest] = d.Size
		return nil
	}
	seen := map[string]bool{}
	addBlob := func(d Descriptor, optional bool) {
		if seen[d.Digest] {
			if !optional {
				p.Optional[d.Digest] = false
			}
			return
		}
		seen[d.Digest] = true
		p.Blobs = append(p.Blobs, d.Digest)
		if optional {
			p.Optional[d.Digest] = true
		}
	}
	if IsIndex(mt) {
		if raw.Config != nil || raw.Layers != nil {
			return nil, invalid("an index has no config or layers")
		}
		for i, d := range raw.Manifests {
			if err := checkDescriptor(d, fmt.Sprintf("manifests[%d]", i)); err != nil {
				return nil, err
			}
			if err := sized(d, fmt.Sprintf("manifests[%d]", i)); err != nil {
				return nil, err
			}
			if !seen[d.Digest] {
				seen[d.Digest] = true
				p.Children = append(p.Children, d.Digest)
			}
		}
	} else {
		if raw.Manifests != nil {
			return nil, invalid("an image manifest has no manifests list")
		}
		if raw.Config == nil {
			return nil, invalid("config is required")
		}
		if err := checkDescriptor(*raw.Config, "config"); err != nil {
			return nil, err
		}
		if err := sized(*raw.Config, "config"); err != nil {
			return nil, err
		}
		addBlob(*raw.Config, false)
		for i, d := range raw.Layers {
			if err := checkDescriptor(d, fmt.Sprintf("layers[%d]", i)); err != nil {
				return nil, err
			}
			if err := sized(d, fmt.Sprintf("layers[%d]", i)); err != nil {
				return nil, err
			}
			addBlob(d, nonDistributable(d))
		}
		if p.ArtifactType == "" {
			p.ArtifactType = raw.Config.MediaType
		}
	}
	for d, opt := range p.Optional {
		if !opt {
			delete(p.Optional, d)
		}
	}
	if raw.Subject != nil {
		if err := checkDescriptor(*raw.Subject, "subject"); err != nil {
			return nil, err
		}
		p.Subject = raw.Subject.Digest
	}
	return p, nil
}

// compatibleContentType: generic types some clients send for any manifest.
func compatibleContentType(ct string) bool {
	return ct == "application/json" || ct == "application/octet-stream" || ct == "text/plain"
}

func nonDistributable(d Descriptor) bool {
	return strings.Contains(d.MediaType, ".nondistributable.") ||
		d.MediaType == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
}

func checkDescriptor(d Descriptor, where string) error {
	dg, err := blobs.ParseDigest(d.Digest)
	if err != nil {
		return invalid("%s: %v", where, err)
	}
	if d.Size < 0 {
		return invalid("%s: negative size", where)
	}
	if d.Data != nil {
		data, err := base64.StdEncoding.DecodeString(*d.Data)
		if err != nil {
			return invalid("%s: data is not base64: %v", where, err)
		}
		if int64(len(data)) != d.Size {
			return invalid("%s: data has %d bytes, size says %d", where, len(data), d.Size)
		}
		if dg.Algorithm().FromBytes(data) != dg {
			return invalid("%s: data does not match digest", where)
		}
	}
	return nil
}
