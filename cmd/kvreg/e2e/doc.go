// Package e2e drives a real kvreg binary with real clients: the docker CLI
// (against a containerd and dockerd the suite starts itself), skopeo, crane
// and regctl. Everything runs on loopback with images made locally; nothing
// is fetched from the network.
//
// A client that is missing or cannot start skips its tests, or fails them
// when CI=true. The package holds tests only; this file names it.
package e2e
