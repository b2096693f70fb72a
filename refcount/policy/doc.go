// Package policy owns the rules an operator sets on repositories: which
// tags are immutable, how many tags retention keeps, and how much a
// namespace may store (quotas). It parses and validates them, matches
// repository and tag names against their globs, and answers which rule
// applies to a repository or tag.
//
// It is pure: it knows no storage, no HTTP and no operating system, so
// that every layer (the reference model that enforces the rules, the
// access rules that share its glob matcher, the command that reads the
// configuration) may import it. Enforcing a rule is the caller's.
package policy
