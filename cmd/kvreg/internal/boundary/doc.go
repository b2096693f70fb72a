// Package boundary holds the test of which kvreg package may import what:
// the layering that keeps the database behind kv, the blob bytes behind
// blobs and HTTP in api and cmd. It has no code of its own.
package boundary
