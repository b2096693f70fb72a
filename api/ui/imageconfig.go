package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/kvreg/kvreg/refcount"
	"github.com/opencontainers/go-digest"
)

// maxConfigBytes bounds the image config a page reads: configs are a few
// KiB; one beyond this is not shown rather than read into memory.
const maxConfigBytes = 4 << 20

var errConfigTooLarge = errors.New("ui: image config too large to show")

// imageConfig is what a page shows of an image config: its platform, the
// history of its layers and its labels.
type imageConfig struct {
	OS, Architecture, Variant string
	Created                   time.Time
	History                   []historyEntry
	Labels                    []label
}

type historyEntry struct {
	Created    time.Time
	CreatedBy  string
	Comment    string
	EmptyLayer bool
}

type label struct{ Key, Value string }

// configJSON is the part of the OCI (and Docker) image config the page
// reads.
type configJSON struct {
	Created      *time.Time `json:"created"`
	OS           string     `json:"os"`
	Architecture string     `json:"architecture"`
	Variant      string     `json:"variant"`
	Config       struct {
		Labels map[string]string `json:"Labels"`
	} `json:"config"`
	History []struct {
		Created    *time.Time `json:"created"`
		CreatedBy  string     `json:"created_by"`
		Comment    string     `json:"comment"`
		EmptyLayer bool       `json:"empty_layer"`
	} `json:"history"`
}

// isImageConfig reports whether a config blob's media type is an image
// config (an artifact's config may be anything, often empty).
func isImageConfig(mt string) bool {
	return mt == "application/vnd.oci.image.config.v1+json" || mt == "application/vnd.docker.container.image.v1+json"
}

// readImageConfig reads and parses repo's config blob d, at most
// maxConfigBytes of it.
func readImageConfig(reg *refcount.Registry, repo, d string) (*imageConfig, error) {
	dg, err := digest.Parse(d)
	if err != nil {
		return nil, err
	}
	f, size, err := reg.OpenBlob(repo, dg)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > maxConfigBytes {
		return nil, fmt.Errorf("%w: %d bytes", errConfigTooLarge, size)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxConfigBytes {
		return nil, fmt.Errorf("%w: over %d bytes", errConfigTooLarge, maxConfigBytes)
	}
	var cj configJSON
	if err := json.Unmarshal(b, &cj); err != nil {
		return nil, fmt.Errorf("ui: image config %s: %w", d, err)
	}
	ic := &imageConfig{OS: cj.OS, Architecture: cj.Architecture, Variant: cj.Variant}
	if cj.Created != nil {
		ic.Created = *cj.Created
	}
	for _, h := range cj.History {
		e := historyEntry{CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
		if h.Created != nil {
			e.Created = *h.Created
		}
		ic.History = append(ic.History, e)
	}
	ic.Labels = sortedPairs(cj.Config.Labels)
	return ic, nil
}

// sortedPairs lists a map's entries in key order, for a stable page.
func sortedPairs(m map[string]string) []label {
	out := make([]label, 0, len(m))
	for k, v := range m {
		out = append(out, label{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
