// Package blobs owns the bytes' protocols: upload sessions and their running
// hash, verification of a digest, the digest locks, and the commit and
// recovery of blobs. A blob is written by appending to an upload, making it
// durable, verifying its digest and promoting it to the blob of that digest
// durably; only then may the caller record it. Storage is a driver (package
// blobs/driver); Open uses the directory driver (package blobs/local), the
// only code that knows the on-disk layout.
//
// It knows nothing of repositories' references or of the database: whether a
// blob may exist or must go is decided by package refcount, which calls Commit
// with a function that records the blob, and Remove for a blob it has freed.
package blobs
