package api

import (
	"testing"
	"time"

	"github.com/kvreg/kvreg/api/auth/token"
)

// The cache of verified tokens against a signature check per request.
func BenchmarkBearerVerify(b *testing.B) {
	key, err := token.NewSigningKey()
	if err != nil {
		b.Fatal(err)
	}
	iss, _ := token.NewIssuer(token.IssuerConfig{Key: key})
	ver, _ := token.NewVerifier(token.VerifierConfig{ValidName: validName})
	ver.SetOwnKeys(key)
	raw, _, err := iss.Issue("bob", []token.Access{{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}}}, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	tc := TokenConfig{Issuer: iss, Verifier: ver}.withDefaults()
	s := &Server{tokens: &tokenState{cfg: tc, cache: newTokenCache(tc.CacheSize, tc.Clock)}}
	b.Run("verify", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := ver.Verify(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := s.verifyBearer(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The cache stays within its size, dropping expired entries first.
func TestTokenCacheBound(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTokenCache(3, func() time.Time { return now })
	for i, ttl := range []time.Duration{time.Second, time.Hour, time.Hour} {
		c.add(string(rune('a'+i)), token.Claims{Expires: now.Add(ttl)})
	}
	now = now.Add(2 * time.Second)
	c.add("d", token.Claims{Expires: now.Add(time.Hour)})
	if _, ok := c.get("a"); ok || c.len() != 3 {
		t.Fatalf("after an expiry: a kept, or %d entries", c.len())
	}
	for _, k := range []string{"b", "c", "d"} {
		if _, ok := c.get(k); !ok {
			t.Errorf("%s dropped while an expired entry could go", k)
		}
	}
	c.add("e", token.Claims{Expires: now.Add(time.Hour)})
	if c.len() != 3 {
		t.Errorf("full cache grew to %d", c.len())
	}
	c.add("f", token.Claims{Expires: now})
	if _, ok := c.get("f"); ok {
		t.Error("an expired token was cached")
	}
}
