package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address of the client that sent r. Behind a load
// balancer every connection comes from the balancer, so when the peer is
// one of trusted, the client is read from X-Forwarded-For: every proxy
// appends the address it was connected from, so walking the list from the
// right past the trusted proxies gives the first address that a trusted
// proxy saw and the client could not choose. Entries left of it are the
// client's to write and are never read. A list that is malformed before
// that address (a trusted proxy would not write it) is ignored: the peer
// is the client. A list of trusted proxies only gives its leftmost.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !isTrusted(peer.Unmap(), trusted) {
		return host
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	client := ""
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := forwardedAddr(hops[i])
		if !ok {
			return host
		}
		client = a.String()
		if !isTrusted(a, trusted) {
			break
		}
	}
	if client == "" {
		return host
	}
	return client
}

// forwardedAddr parses one entry of X-Forwarded-For: an IP address,
// possibly with a port ("1.2.3.4:5", "[::1]:5").
func forwardedAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
