// Package manifest owns what a manifest body means: it validates the bytes a
// client pushes (OCI image and index, Docker schema 2 and manifest list) and
// reads from them the edges they add — the distinct blobs, the child
// manifests, the subject — and the sizes their descriptors give.
//
// It is pure: no database, no files, no HTTP. Whether the referenced content
// exists, and what the edges hold alive, is package refcount's concern.
package manifest
