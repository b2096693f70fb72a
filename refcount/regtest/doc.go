// Package regtest opens registries for tests: the one way that the tests of
// refcount, api and cmd get a Registry over real backends, with a settable
// clock, and with the invariants checked (a deep fsck) when the test ends.
//
// It owns nothing of the store: it opens one through refcount exactly as the
// binary does, and it reads the store only through refcount's own calls. It
// must not be imported by non-test code.
package regtest
