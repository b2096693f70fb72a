// Package e2e drives a real kvreg binary with real clients: the docker CLI
// (against a containerd and dockerd the suite starts itself), skopeo, crane
// and regctl. Everything runs on loopback with images made locally; nothing
// is fetched from the network. TestTokenAuthClients runs crane, skopeo,
// regctl, oras and helm against kvreg in token mode: anonymous pulls of a
// public repository, logins with each client's own command, and pushes
// refused with nothing written. The TestCache tests run kvreg as a
// pull-through cache of other kvregs: crane, skopeo and regctl pull through
// it, a dockerd of its own with registry-mirrors pulls busybox, containerd's
// ctr with a hosts.toml directory reaches two upstreams through one kvreg by
// ?ns=, it serves what it holds while the upstream fails, and it stays
// within its byte budget by evicting the least recently pulled images.
//
// A client that is missing or cannot start skips its tests, or fails them
// when CI=true. The package holds tests only; this file names it.
package e2e
