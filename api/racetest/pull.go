package racetest

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Pull GETs ref in repo and, recursively, every child and blob it names,
// checking each digest and size. strict: everything must be there;
// otherwise a 404 (something deleted meanwhile) ends it quietly. It
// returns the manifest's bytes, nil if it was not there.
func (c *Client) Pull(repo, ref string, strict bool) []byte {
	what := "GET manifest " + repo + ":" + ref
	accept := http.Header{"Accept": {MediaTypeManifest, MediaTypeIndex}}
	m := c.Do("manifest GET", http.MethodGet, "/v2/"+repo+"/manifests/"+ref, accept, nil)
	if !c.found(what, m, strict) {
		return nil
	}
	d := digest.FromBytes(m.Body).String()
	if got := m.Header.Get("Docker-Content-Digest"); got != d {
		c.T.Errorf("%s%s: Docker-Content-Digest %q, bytes are %s", what, m.via(), got, d)
	}
	if strings.Contains(ref, ":") && ref != d {
		c.T.Errorf("%s%s: served a manifest of digest %s", what, m.via(), d)
	}
	var v struct {
		Config    *desc  `json:"config"`
		Layers    []desc `json:"layers"`
		Manifests []desc `json:"manifests"`
	}
	if err := json.Unmarshal(m.Body, &v); err != nil {
		c.T.Errorf("%s%s: %v", what, m.via(), err)
		return m.Body
	}
	descs := v.Layers
	if v.Config != nil {
		descs = append([]desc{*v.Config}, descs...)
	}
	for _, ds := range descs {
		c.PullBlob(repo, ds.Digest, ds.Size, strict)
	}
	for _, ch := range v.Manifests {
		if c.Pull(repo, ch.Digest, strict) == nil && !strict {
			break
		}
	}
	return m.Body
}

// PullBlob GETs blob d of repo and checks its digest and, unless size is
// negative, its size; strict as Pull's. It says whether the blob was
// served right.
func (c *Client) PullBlob(repo, d string, size int, strict bool) bool {
	what := "GET blob " + repo + "@" + d
	r := c.Do("blob GET", http.MethodGet, "/v2/"+repo+"/blobs/"+d, nil, nil)
	if !c.found(what, r, strict) {
		return false
	}
	if got := digest.FromBytes(r.Body).String(); got != d || (size >= 0 && len(r.Body) != size) {
		c.T.Errorf("%s%s: served %d bytes of digest %s", what, r.via(), len(r.Body), got)
		return false
	}
	return true
}

// Tags lists repo's tags; a repository that is not there has none.
func (c *Client) Tags(repo string) []string {
	rs := c.Do("tags GET", http.MethodGet, "/v2/"+repo+"/tags/list", nil, nil)
	if rs.Status != http.StatusOK {
		c.Expect("tags of "+repo, rs, http.StatusNotFound)
		return nil
	}
	var v struct{ Tags []string }
	if err := json.Unmarshal(rs.Body, &v); err != nil {
		c.T.Errorf("tags of %s: %v", repo, err)
	}
	return v.Tags
}

// Catalog lists the repositories.
func (c *Client) Catalog() []string {
	rs := c.Do("catalog GET", http.MethodGet, "/v2/_catalog", nil, nil)
	if !c.Expect("catalog", rs, http.StatusOK) {
		return nil
	}
	var v struct{ Repositories []string }
	if err := json.Unmarshal(rs.Body, &v); err != nil {
		c.T.Errorf("catalog: %v", err)
	}
	return v.Repositories
}

// found reports whether r is a 200; otherwise it expects one if strict,
// else a 404 (something deleted meanwhile).
func (c *Client) found(what string, r Response, strict bool) bool {
	if r.Status == http.StatusOK {
		return true
	}
	want := http.StatusNotFound
	if strict {
		want = http.StatusOK
	}
	c.Expect(what, r, want)
	return false
}
