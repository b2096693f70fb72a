// Package api serves the OCI distribution API (v1.1) and its Docker
// compatibility over HTTP. It owns routing, request parsing, headers and the
// JSON error body; the checks every request passes (credentials and rights,
// asked of package auth; Bearer tokens, checked by package auth/token;
// read-only mode; upload limits; stalled bodies); the token endpoint of the
// Docker registry token flow, which decides what a token grants;
// and what the server tells its operator: the access log, the request id,
// Prometheus metrics, /healthz and /readyz, and the admin socket's API. It
// asks package refcount for everything that reads or changes the store
// (and package authstore for robot accounts and signing keys), and never
// touches the database or blob files itself.
package api
