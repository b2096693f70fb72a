package api_test

import (
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api"
)

// A client that guesses a user's password is refused (429, Retry-After)
// after 10 failures in a minute, the right password included, while the
// user signs in from elsewhere and the client as another user; after 30
// failures over all users the client is refused as anyone; the window's
// end lets it in again. Clients are told apart by the address a trusted
// balancer forwards.
func TestPasswordGuessingIsThrottled(t *testing.T) {
	cfg := authConfig(t, api.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, teamRules)
	r := startRegistry(t, regOptions{Config: cfg})
	from := func(client, user, pass string) response {
		return r.withAuthorization(basicHeader(user, pass)).get("/v2/", hdr("X-Forwarded-For", client))
	}
	const a, b, c = "192.0.2.1", "192.0.2.2", "192.0.2.3"
	for i := range 10 {
		expectError(t, "wrong password", from(a, "bob", "guess"+string(rune('a'+i))), 401, "UNAUTHORIZED")
	}
	resp := from(a, "bob", password("bob"))
	expectError(t, "the right password after 10 wrong ones", resp, 429, "TOOMANYREQUESTS")
	if got := resp.Header.Get("Retry-After"); got != "60" {
		t.Errorf("Retry-After %q, want 60", got)
	}
	if resp := from(b, "bob", password("bob")); resp.Status != 200 {
		t.Fatalf("bob from another client: %s", resp)
	}
	if resp := from(a, "alice", password("alice")); resp.Status != 200 {
		t.Fatalf("alice from the guessing client: %s", resp)
	}
	r.reg.Clock.Advance(30 * time.Second)
	if resp := from(a, "bob", password("bob")); resp.Status != 429 || resp.Header.Get("Retry-After") != "30" {
		t.Fatalf("half a minute later: %s, Retry-After %q", resp, resp.Header.Get("Retry-After"))
	}
	r.reg.Clock.Advance(30 * time.Second)
	if resp := from(a, "bob", password("bob")); resp.Status != 200 {
		t.Fatalf("once the minute is over: %s", resp)
	}

	// 30 failures over three users from one client: refused as anyone.
	for _, u := range testUsers {
		for range 10 {
			expectError(t, "wrong password", from(c, u, "guess"), 401, "UNAUTHORIZED")
		}
	}
	expectError(t, "a fourth user after 30 failures", from(c, "dave", "guess"), 429, "TOOMANYREQUESTS")
	if resp := from(b, "carol", password("carol")); resp.Status != 200 {
		t.Fatalf("carol from another client: %s", resp)
	}
	// 40 wrong passwords; refused unchecked: the right one twice, then dave.
	m := r.scrape()
	expectMetric(t, m, `kvreg_sign_ins_refused_total{reason="wrong_credential"}`, 40)
	expectMetric(t, m, `kvreg_sign_ins_refused_total{reason="throttled"}`, 3)
}

// The token endpoint counts the same failures: the password grant is
// refused with 429 once a client has guessed too often, and the refusal
// is counted as throttled.
func TestTokenPasswordGuessingIsThrottled(t *testing.T) {
	r, _ := startTokenRegistry(t, api.Config{}, teamRules, nil)
	form := func(pass string) url.Values {
		return url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {pass}, "service": {"kvreg"}}
	}
	for range 10 {
		expectError(t, "wrong password", r.postToken(form("guess")), 401, "UNAUTHORIZED")
	}
	resp := r.postToken(form(password("bob")))
	expectError(t, "the right password after 10 wrong ones", resp, 429, "TOOMANYREQUESTS")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	m := r.scrape()
	expectMetric(t, m, `kvreg_tokens_refused_total{reason="throttled"}`, 1)
	expectMetric(t, m, `kvreg_sign_ins_refused_total{reason="throttled"}`, 1)
	expectMetric(t, m, `kvreg_sign_ins_refused_total{reason="wrong_credential"}`, 10)
	// Basic credentials to GET /token count with the rest.
	expectError(t, "GET /token as bob", r.withAuthorization(basicHeader("bob", password("bob"))).getToken(nil), 429, "TOOMANYREQUESTS")
}
