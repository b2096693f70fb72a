package upstream

import "sync/atomic"

// Kind is what a request asked the upstream for.
type Kind int

const (
	KindManifest     Kind = iota // GET of a manifest
	KindManifestHead             // HEAD of a manifest (a tag recheck)
	KindBlob                     // GET of a blob (its redirects included)
	KindToken                    // GET of a token from the upstream's realm
	numKinds
)

var kindNames = [numKinds]string{"manifest", "manifest_head", "blob", "token"}

func (k Kind) String() string { return kindNames[k] }

// Outcome is how a request ended.
type Outcome int

const (
	OutcomeOK          Outcome = iota
	OutcomeNotFound            // ErrNotFound
	OutcomeUnavailable         // ErrUnavailable
	OutcomeDenied              // ErrDenied
	OutcomeError               // anything else (a bad answer, the caller's cancellation)
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "not_found", "unavailable", "denied", "error"}

func (o Outcome) String() string { return outcomeNames[o] }

// RequestKey names one counter: a kind and an outcome.
type RequestKey struct {
	Kind    string // manifest, manifest_head, blob, token
	Outcome string // ok, not_found, unavailable, denied, error
}

// counts are the client's requests by kind and outcome. One operation
// counts once, however many round trips it took (a 401 answered with a
// token, redirects); the token fetches count on their own.
type counts [numKinds][numOutcomes]atomic.Uint64

func (c *counts) add(k Kind, err error) { c[k][outcome(err)].Add(1) }

// Requests is a snapshot of the counters, every kind and outcome listed
// (zero included), for metrics.
func (c *Client) Requests() map[RequestKey]uint64 {
	m := make(map[RequestKey]uint64, int(numKinds)*int(numOutcomes))
	for k := range numKinds {
		for o := range numOutcomes {
			m[RequestKey{k.String(), o.String()}] = c.counts[k][o].Load()
		}
	}
	return m
}
