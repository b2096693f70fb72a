// Package blobs owns the bytes: the flat content-addressed directory of blob
// files (<root>/blobs/<algorithm>/<hex>) and the uploads in progress
// (<root>/uploads/<id>/). It writes a blob by hashing into a temporary file on
// the same filesystem, fsyncing it, verifying its digest, linking it into
// place and fsyncing the directory, and only then lets the caller record it.
//
// It knows nothing of repositories' references or of the database: whether a
// blob may exist or must go is decided by package refcount, which calls Commit
// with a function that records the blob, and Remove for a blob it has freed.
package blobs
