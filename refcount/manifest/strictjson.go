package manifest

import (
	"bytes"
	"encoding/json"
	"strings"
)

// manifestFields are the names kvreg reads from manifests and descriptors.
var manifestFields = []string{
	"schemaVersion", "mediaType", "artifactType", "config", "layers", "manifests",
	"subject", "annotations", "digest", "size", "urls", "data", "platform",
}

// checkNames refuses documents whose object names a case-sensitive or
// first-wins client could read differently from Go's decoder, which matches
// names case-insensitively and lets the last duplicate win: a repeated name,
// two names that differ only in case, or a field name spelled in another
// case. The edges kvreg counts must be the ones every client reads.
// Annotation maps are exempt from the case rules (their keys are data).
func checkNames(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object bool
		names  map[string]string // folded -> as written
		data   bool              // an annotations map
		key    string            // the pending key, for objects
		expect bool              // the next token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // syntax errors are reported by the decoder proper
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expect {
			if name, ok := tok.(string); ok {
				folded := strings.ToLower(name)
				if top.data {
					folded = name
				}
				if prev, dup := top.names[folded]; dup {
					return invalid("the object names %q and %q are ambiguous", prev, name)
				}
				top.names[folded] = name
				if !top.data {
					for _, f := range manifestFields {
						if name != f && strings.EqualFold(name, f) {
							return invalid("%q must be spelled %q", name, f)
						}
					}
				}
				top.key, top.expect = name, false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			data := top != nil && top.object && top.key == "annotations"
			stack = append(stack, &frame{object: true, names: map[string]string{}, data: data, expect: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: the enclosing object expects a key next.
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].expect = true
		}
		if len(stack) == 0 {
			return nil
		}
	}
}
