// Package events delivers what the outbox holds: the events that package
// refcount wrote in the transactions of their changes (a push, a tag
// moved, a delete, a pull when wanted), to HTTP endpoints, at least once
// and in commit order per endpoint.
//
// One Worker per endpoint delivers its rows oldest first, one at a time:
// it POSTs the event in the endpoint's format (format.go: the reference
// registry's notification envelope, or a CloudEvent in structured mode),
// signed with an HMAC-SHA256 of the body under the endpoint's secret
// (X-Kvreg-Signature: sha256=<hex>). A 2xx removes the row in a
// transaction; anything else keeps it, records the attempt, the error and
// the time of the next one (exponential backoff with a cap), and the
// worker waits: a later row never overtakes an earlier one. An event's id
// is made when its change commits, so every retry, and every replica's,
// carries the same one.
//
// Ordering. The outbox orders an endpoint's rows by a sequence number
// that each event-writing transaction reads and advances in the
// database (kv's outboxseq). On a serializable database two such
// transactions conflict and one reruns, so numbers follow commits: a row
// with a smaller number committed first. The cost is that writes
// producing events for one endpoint are serialised with each other (and
// a pull is a write when an endpoint wants pulls); writes that produce no
// event for it are not. A clock or an id made outside the transaction
// cannot give this order: two replicas' clocks disagree, and a
// transaction that takes a time first may commit last.
//
// Claims. With several replicas on one database exactly one delivers an
// endpoint at a time: a claim row per endpoint (owner, expiry) is taken
// when absent or expired and renewed by its owner every third of its
// lifetime while it delivers; a replica that dies stops renewing, and
// another takes over once the claim has expired (standbys ask every third
// of Options.ClaimTTL, so within four thirds of it).
// A replica whose POST outlived its claim may deliver a row the next owner
// delivers again, which at-least-once allows; the claim lifetime is kept
// at least three times the longest endpoint timeout so that this needs a
// stall, not a slow receiver. Expiries are compared on the clock of the
// replica that asks, so replicas' clocks must agree to well within it.
//
// Time comes from Options.Now and Options.After, which tests replace;
// the package sleeps on nothing else. It owns delivery and the wire
// formats; it must not write the outbox except through refcount's
// delivery calls, nor decide which changes make events (refcount does).
package events
