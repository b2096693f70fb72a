package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

const (
	defaultPage = 1000
	maxPage     = 10000
)

// page reads the n and last query parameters.
func page(r *http.Request) (n int, last string, err error) {
	q := r.URL.Query()
	last = q.Get("last")
	n = defaultPage
	if v := q.Get("n"); v != "" {
		n, err = strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, "", apiErr(kPageInvalid, "n must be a non-negative integer, not %q", v)
		}
		if n > maxPage {
			n = maxPage
		}
	}
	return n, last, nil
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, contentType string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
	return nil
}

func nextLink(path string, n int, last string) string {
	q := url.Values{"n": {strconv.Itoa(n)}, "last": {last}}
	return fmt.Sprintf("<%s?%s>; rel=\"next\"", path, q.Encode())
}

func (s *Server) catalog(w http.ResponseWriter, r *http.Request, _ route) error {
	n, last, err := page(r)
	if err != nil {
		return err
	}
	repos, more, err := s.catalogPage(info(r).caller, last, n)
	if err != nil {
		return err
	}
	if more && n > 0 {
		w.Header().Set("Link", nextLink("/v2/_catalog", n, repos[len(repos)-1]))
	}
	return writeJSON(w, r, http.StatusOK, "application/json", map[string]any{"repositories": repos})
}

func (s *Server) tagsList(w http.ResponseWriter, r *http.Request, rt route) error {
	n, last, err := page(r)
	if err != nil {
		return err
	}
	tags, more, err := s.reg.Tags(rt.name, last, n)
	if err != nil {
		return err
	}
	if more && n > 0 {
		w.Header().Set("Link", nextLink("/v2/"+rt.name+"/tags/list", n, tags[len(tags)-1]))
	}
	return writeJSON(w, r, http.StatusOK, "application/json", map[string]any{"name": rt.name, "tags": tags})
}

// catalogPage is a page of the repositories the caller may pull. With
// access rules it reads on past the ones hidden from the caller until the
// page is full or the catalog ends; "more" only counts repositories the
// caller may see, so that a next link never hints at hidden ones.
func (s *Server) catalogPage(c principal, last string, n int) ([]string, bool, error) {
	if !s.authOn() {
		return s.reg.Catalog(last, n)
	}
	out := []string{}
	if n == 0 {
		return out, false, nil
	}
	for {
		repos, more, err := s.reg.Catalog(last, n)
		if err != nil {
			return nil, false, err
		}
		for _, name := range repos {
			if !s.listable(c, name) {
				continue
			}
			if len(out) == n {
				return out, true, nil
			}
			out = append(out, name)
		}
		if !more || len(repos) == 0 {
			return out, false, nil
		}
		last = repos[len(repos)-1]
	}
}
