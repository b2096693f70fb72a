package api

import (
	"net/http"
	"net/netip"
	"testing"
)

// The client's address: the peer, unless the peer is a trusted proxy; then
// the rightmost address of X-Forwarded-For that is not a trusted proxy.
// What a client writes into the header itself (left of what the trusted
// proxies appended) never counts, and neither does a header from a peer
// that is not trusted.
func TestClientAddrFromForwardedFor(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, c := range []struct {
		name   string
		peer   string
		xff    []string // one entry per header line
		want   string
		trusts []netip.Prefix
	}{
		{name: "no proxies trusted", peer: "127.0.0.1:5000", xff: []string{"192.0.2.7"}, want: "127.0.0.1"},
		{name: "untrusted peer's header is ignored", peer: "192.0.2.9:5000", xff: []string{"192.0.2.7"}, want: "192.0.2.9", trusts: trusted},
		{name: "trusted peer, no header", peer: "127.0.0.1:5000", want: "127.0.0.1", trusts: trusted},
		{name: "trusted peer", peer: "127.0.0.1:5000", xff: []string{"127.0.0.2"}, want: "127.0.0.2", trusts: trusted},
		{name: "spoofed entries left of the proxy's", peer: "127.0.0.1:5000", xff: []string{"6.6.6.6, 127.0.0.1, 192.0.2.7"}, want: "192.0.2.7", trusts: trusted},
		{name: "chain of trusted proxies", peer: "127.0.0.1:5000", xff: []string{"6.6.6.6, 192.0.2.7, 10.1.2.3"}, want: "192.0.2.7", trusts: trusted},
		{name: "chain over several header lines", peer: "127.0.0.1:5000", xff: []string{"6.6.6.6", "192.0.2.7, 10.1.2.3"}, want: "192.0.2.7", trusts: trusted},
		{name: "spoofed junk left of the proxy's entry", peer: "127.0.0.1:5000", xff: []string{"not an address, 192.0.2.7"}, want: "192.0.2.7", trusts: trusted},
		{name: "malformed entry a trusted proxy would not write", peer: "127.0.0.1:5000", xff: []string{"192.0.2.7, bogus"}, want: "127.0.0.1", trusts: trusted},
		{name: "empty entry", peer: "127.0.0.1:5000", xff: []string{"192.0.2.7,"}, want: "127.0.0.1", trusts: trusted},
		{name: "every hop trusted", peer: "127.0.0.1:5000", xff: []string{"10.0.0.5, 10.0.0.6"}, want: "10.0.0.5", trusts: trusted},
		{name: "entry with a port", peer: "127.0.0.1:5000", xff: []string{"192.0.2.7:41000"}, want: "192.0.2.7", trusts: trusted},
		{name: "IPv6 peer and client", peer: "[fd00::1]:5000", xff: []string{"2001:db8::7"}, want: "2001:db8::7", trusts: trusted},
		{name: "IPv4-mapped peer", peer: "[::ffff:127.0.0.1]:5000", xff: []string{"192.0.2.7"}, want: "192.0.2.7", trusts: trusted},
		{name: "zone in an entry", peer: "127.0.0.1:5000", xff: []string{"fe80::1%eth0"}, want: "127.0.0.1", trusts: trusted},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodHead, "http://registry/v2/", nil)
			if err != nil {
				t.Fatal(err)
			}
			r.RemoteAddr = c.peer
			for _, h := range c.xff {
				r.Header.Add("X-Forwarded-For", h)
			}
			if got := clientAddr(r, c.trusts); got != c.want {
				t.Fatalf("client %q, want %q", got, c.want)
			}
		})
	}
}
