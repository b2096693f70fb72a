package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/api/auth/token"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

// kvreg serve with --htpasswd speaks the token flow by default, over TLS:
// the challenge names its https realm, tokens are signed with --token-key,
// a client following the flow pushes and pulls, and an outside issuer's
// token (--token-issuer) is accepted for what its access claim says.
func TestServeTokenAuth(t *testing.T) {
	bin := buildKvreg(t)
	pki := newTestPKI(t)
	key, err := token.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writeFile(t, "token.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key.MarshalPKCS8()})))
	corp, err := token.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	corpPub, err := x509.MarshalPKIXPublicKey(corp.Public())
	if err != nil {
		t.Fatal(err)
	}
	corpFile := writeFile(t, "corp.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: corpPub})))
	srv := serveWith(t, bin, testenv.Options{Root: t.TempDir(), CA: pki.Pool, Args: []string{
		"--htpasswd", writeHtpasswd(t, "alice"), "--tls-cert", pki.CertFile, "--tls-key", pki.KeyFile,
		"--anonymous-pull", "public/*", "--token-key", keyFile, "--token-issuer", "corp=" + corpFile,
	}})
	client := pki.client()
	get := func(path, authz string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, _ := get("/v2/", "")
	want := fmt.Sprintf(`Bearer realm="%s/token",service="kvreg"`, srv.URL)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != want || !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("anonymous GET /v2/: %s, WWW-Authenticate %q, want %q", resp.Status, resp.Header.Get("WWW-Authenticate"), want)
	}
	// The token is signed with --token-key.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/token?service=kvreg&scope="+url.QueryEscape("repository:team/app:pull,push"), nil)
	req.SetBasicAuth("alice", "alice-pw")
	tresp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct{ Token string }
	json.NewDecoder(tresp.Body).Decode(&tr)
	tresp.Body.Close()
	ver, _ := token.NewVerifier(token.VerifierConfig{ValidName: api.ValidRepositoryName})
	ver.SetOwnKeys(key)
	if cl, err := ver.Verify(tr.Token); err != nil || cl.Subject != "alice" || len(cl.Access) != 1 {
		t.Fatalf("token from /token: %+v %v", cl, err)
	}

	// A client following the flow.
	host := strings.TrimPrefix(srv.URL, "https://")
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(host + "/" + s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	img, _ := random.Image(1024, 1)
	alice := &authn.Basic{Username: "alice", Password: "alice-pw"}
	if err := remote.Write(ref("public/app:v1"), img, remote.WithAuth(alice), remote.WithTransport(client.Transport)); err != nil {
		t.Fatalf("alice pushes: %v", err)
	}
	if _, err := remote.Image(ref("public/app:v1"), remote.WithTransport(client.Transport)); err != nil {
		t.Fatalf("anonymous pull: %v", err)
	}
	if err := remote.Write(ref("public/app:v2"), img, remote.WithTransport(client.Transport)); err == nil {
		t.Fatal("anonymous push worked")
	}

	// An outside issuer's token: its access claim as it is.
	now := time.Now()
	ot := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "corp", "sub": "ci-job", "aud": "kvreg", "exp": now.Add(time.Minute).Unix(), "iat": now.Unix(),
		"access": []any{map[string]any{"type": "repository", "name": "public/app", "actions": []any{"pull"}}},
	})
	priv, _ := x509.ParsePKCS8PrivateKey(corp.MarshalPKCS8())
	raw, err := ot.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := get("/v2/public/app/tags/list", "Bearer "+raw); resp.StatusCode != http.StatusOK {
		t.Fatalf("outside token pulls: %s %s", resp.Status, body)
	}
	if resp, _ := get("/v2/_catalog", "Bearer "+raw); resp.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("outside token lists the catalog: %s %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
}
