package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/kvreg/kvreg/api"
)

// Every path is answered by its handler or by an error: a path nothing
// serves is a 404 and a method its path does not take a 405 that says in
// Allow which ones it does, both with the distribution spec's JSON body,
// on the fixed paths as on the /v2/ ones.
func TestRouterAnswers404And405ThroughTheErrorBody(t *testing.T) {
	r := startRegistry(t, regOptions{})
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/nope", http.StatusNotFound, "NAME_UNKNOWN", ""},
		{"GET", "/v3/", http.StatusNotFound, "NAME_UNKNOWN", ""},
		{"GET", "/v2/app/unknown/x", http.StatusNotFound, "NAME_UNKNOWN", ""},
		{"POST", "/healthz", http.StatusMethodNotAllowed, "UNSUPPORTED", "GET, HEAD"},
		{"DELETE", "/metrics", http.StatusMethodNotAllowed, "UNSUPPORTED", "GET, HEAD"},
		{"PUT", "/v2", http.StatusMethodNotAllowed, "UNSUPPORTED", "GET, HEAD"},
		{"POST", "/v2/", http.StatusMethodNotAllowed, "UNSUPPORTED", "GET, HEAD"},
		{"POST", "/v2/app/tags/list", http.StatusMethodNotAllowed, "UNSUPPORTED", "GET"},
		{"DELETE", "/v2/app/blobs/uploads/", http.StatusMethodNotAllowed, "UNSUPPORTED", "POST"},
		{"PATCH", "/v2/app/manifests/v1", http.StatusMethodNotAllowed, "UNSUPPORTED", "DELETE, GET, HEAD, PUT"},
		{"OPTIONS", "/v2/app/manifests/v1", http.StatusMethodNotAllowed, "UNSUPPORTED", ""},
	} {
		what := tc.method + " " + tc.path
		resp := r.do(tc.method, tc.path, nil, nil)
		expectError(t, what, resp, tc.status, tc.code)
		if tc.allow != "" {
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("%s: Allow %q, want %q", what, got, tc.allow)
			}
		}
	}
}

// The operator socket answers every path with its own JSON: a report, or
// {"error": ...} with a 404 for an unknown path and a 405 for a method the
// path does not take.
func TestAdminRouterAnswersUnknownPathsWithItsJSON(t *testing.T) {
	r := startRegistry(t, regOptions{})
	admin := r.also(api.NewAdmin(r.reg.Registry)).srv
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/stats", http.StatusOK},
		{"GET", "/v1/nope", http.StatusNotFound},
		{"GET", "/v1/rm", http.StatusMethodNotAllowed},
		{"POST", "/v1/fsck", http.StatusMethodNotAllowed},
	} {
		req, _ := http.NewRequest(tc.method, admin.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		derr := json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || derr != nil {
			t.Errorf("%s %s: %d (%v), want %d with a JSON body", tc.method, tc.path, resp.StatusCode, derr, tc.status)
			continue
		}
		if _, isErr := body["error"]; isErr != (tc.status != http.StatusOK) {
			t.Errorf("%s %s: body %v", tc.method, tc.path, body)
		}
	}
}
