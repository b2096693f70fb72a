package kv

import (
	"encoding/json"
	"fmt"
)

// CachePrefixes reads the pull-through cache's repository prefixes as the
// server last recorded them (nil: never recorded).
func (t *Tx) CachePrefixes() ([]string, error) {
	v, err := t.b.Get(tableMeta, keyCachePrefixes)
	if err != nil || v == nil {
		return nil, err
	}
	var out []string
	if err := json.Unmarshal(v, &out); err != nil {
		return nil, fmt.Errorf("%w: cache prefixes: %v", ErrCorrupt, err)
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// PutCachePrefixes records the prefixes.
func (t *Tx) PutCachePrefixes(ps []string) error {
	if ps == nil {
		ps = []string{}
	}
	b, _ := json.Marshal(ps)
	return t.b.Put(tableMeta, keyCachePrefixes, b)
}
