package refcount

import (
	"encoding/json"
	"fmt"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount/manifest"
)

// browsed is what the UI shows of a manifest's stored bytes: descriptors
// in the order the manifest gives them. The bytes were validated when
// pushed, so a parse error here means a damaged record.
type browsed struct {
	Config      *manifest.Descriptor  `json:"config"`
	Layers      []manifest.Descriptor `json:"layers"`
	Manifests   []manifest.Descriptor `json:"manifests"`
	Annotations map[string]string     `json:"annotations"`
}

func parseBrowsed(content []byte) (*browsed, error) {
	var b browsed
	if err := json.Unmarshal(content, &b); err != nil {
		return nil, fmt.Errorf("%w: stored manifest: %v", kv.ErrCorrupt, err)
	}
	return &b, nil
}

// platform is "os/arch[/variant]" of an index entry, "" when it gives none.
func platform(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var p struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	}
	if json.Unmarshal(raw, &p) != nil || (p.OS == "" && p.Architecture == "") {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// platforms lists an index's entries' platforms, in index order, leaving
// out entries that give none.
func (b *browsed) platforms() []string {
	var out []string
	for _, m := range b.Manifests {
		if p := platform(m.Platform); p != "" {
			out = append(out, p)
		}
	}
	return out
}
