package cluster

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Token authentication across replicas: every replica signs with the one
// key kept in the database, so a token from one is accepted by the
// others; a robot account made through one replica's socket logs in at
// another and pushes through a third; revoked through a replica, it gets
// no token from any.
func TestClusterTokens(t *testing.T) {
	dir := t.TempDir()
	h, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ht := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(ht, []byte("alice:"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newClusterArgs(t, []string{"--htpasswd", ht, "--anonymous-pull", "public/*"})

	// One token from each replica: the same key id in each.
	kid := ""
	tokens := make([]string, len(c.replicas))
	for i, r := range c.replicas {
		tokens[i] = getToken(t, r.URL, "alice", "alice-pw", "repository:team/app:pull,push")
		k := tokenKID(t, tokens[i])
		if i > 0 && k != kid {
			t.Fatalf("replica %d signs with key %s, replica 0 with %s", i, k, kid)
		}
		kid = k
	}
	// A token of replica 0 pushes a blob through replica 1 and reads it
	// through replica 2; with no token, replica 2 challenges.
	b := []byte("a blob pushed with replica 0's token")
	d := digestOf(b)
	if st := send(t, http.MethodPost, c.replicas[1].URL+"/v2/team/app/blobs/uploads/?digest="+d, tokens[0], b); st != http.StatusCreated {
		t.Fatalf("monolithic push through replica 1 with replica 0's token: %d", st)
	}
	if st := send(t, http.MethodGet, c.replicas[2].URL+"/v2/team/app/blobs/"+d, tokens[0], nil); st != http.StatusOK {
		t.Fatalf("GET through replica 2 with replica 0's token: %d", st)
	}
	if st := send(t, http.MethodGet, c.replicas[2].URL+"/v2/team/app/blobs/"+d, "", nil); st != http.StatusUnauthorized {
		t.Fatalf("GET through replica 2 with no token: %d, want 401", st)
	}

	// A robot made through replica 1's socket.
	out, err := exec.Command(c.bin, "token", "create", "ci", "--root", c.replicas[1].Root, "--repos", "team/*", "--actions", "pull,push", "--expires", "1d").Output()
	if err != nil {
		t.Fatalf("kvreg token create: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	secret := lines[len(lines)-1]
	robotTok := getToken(t, c.replicas[2].URL, "ci", secret, "repository:team/ci:pull,push")
	rb := []byte("a blob pushed by the robot")
	if st := send(t, http.MethodPost, c.replicas[0].URL+"/v2/team/ci/blobs/uploads/?digest="+digestOf(rb), robotTok, rb); st != http.StatusCreated {
		t.Fatalf("the robot's push through replica 0 with replica 2's token: %d", st)
	}
	if out, err := exec.Command(c.bin, "token", "revoke", "ci", "--root", c.replicas[0].Root).CombinedOutput(); err != nil {
		t.Fatalf("kvreg token revoke: %v\n%s", err, out)
	}
	for i, r := range c.replicas {
		if st, body := tokenStatus(t, r.URL, "ci", secret, "repository:team/ci:pull"); st != http.StatusUnauthorized {
			t.Fatalf("replica %d gave the revoked robot %d: %s", i, st, body)
		}
	}
	c.fsck()
}

func digestOf(b []byte) string { return string(newBlob(b).Digest) }

// tokenStatus asks base's /token for scope with Basic credentials.
func tokenStatus(t *testing.T, base, user, pass, scope string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/token?"+url.Values{"service": {"kvreg"}, "scope": {scope}}.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// getToken is tokenStatus's token, which must be given.
func getToken(t *testing.T, base, user, pass, scope string) string {
	t.Helper()
	st, body := tokenStatus(t, base, user, pass, scope)
	var tr struct {
		Token string `json:"token"`
	}
	if st != http.StatusOK || json.Unmarshal(body, &tr) != nil || tr.Token == "" {
		t.Fatalf("token from %s as %s: %d %s", base, user, st, body)
	}
	return tr.Token
}

// tokenKID is the kid of a JWT's header.
func tokenKID(t *testing.T, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	var h struct {
		KID string `json:"kid"`
	}
	if err != nil || json.Unmarshal(b, &h) != nil || h.KID == "" {
		t.Fatalf("token header %q: %v", head, err)
	}
	return h.KID
}

// send sends a request with a Bearer token (none if empty) and returns
// the status.
func send(t *testing.T, method, u, tok string, body []byte) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
		req.ContentLength = int64(len(body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(fmt.Errorf("%s %s: %w", method, u, err))
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
