// Package api serves the OCI distribution API (v1.1) and its Docker
// compatibility over HTTP. It owns routing, request parsing, headers and the
// JSON error body; it asks package refcount for everything that reads or
// changes the store, and never touches the database or blob files itself.
package api
