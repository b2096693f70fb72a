// Package upstream is the registry client kvreg uses towards an upstream
// registry for its pull-through cache. It owns the HTTP requests to the
// upstream (manifests by tag or digest, manifest HEADs for tag rechecks,
// blob streams that follow redirects), the Docker token flow towards the
// upstream (anonymous, or Basic credentials sent only to the upstream
// itself and to the token realm its own challenge names, never to a
// redirect target), a cache of tokens per scope until they expire, the
// checks that what the upstream sends is what it claims (digests, sizes),
// the classification of failures into a few sentinel errors (not found,
// unavailable, denied, digest mismatch, too large) and counters of its
// requests by kind and outcome.
//
// It stores nothing and knows nothing of kvreg's store: it imports neither
// kv, refcount, blobs nor package api; the caller verifies and stores what
// it fetches.
package upstream
