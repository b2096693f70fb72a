// Package blobs owns the bytes' protocols: upload sessions and their running
// hash, verification of a digest, the locks of digests and uploads, and the
// commit and recovery of blobs. A commit holds its digest's lock and its
// upload's, a removal of a blob the digest's, a cancel (or expiry) the
// upload's: so a cancel never takes away bytes that a commit of the same
// upload, through another process sharing the store, is promoting,
// whatever their digest. A blob is written by appending to an upload, making it
// durable, verifying its digest and promoting it to the blob of that digest
// durably; only then may the caller record it. Storage is a driver (package
// blobs/driver); Open uses the directory driver (package blobs/local), the
// only code that knows the on-disk layout.
//
// An upload is named by a reference: its id, or, on a driver that starts
// uploads with nothing stored (driver.Deferrer, S3), its id and the token
// that stands for its record until its first bytes are written
// (NewUpload, UploadRef). A write at the upload's start takes the token's
// word and reads nothing; any other request reads the record, and finds
// the upload started and empty if there is none and the token is good,
// unless this process saw the upload end (endedUploads). A token says
// when it was issued and is good for the upload life (SetUploadLife): an
// upload that never got bytes expires as an idle one does, and another
// process takes a token of an upload that ended for a new, empty upload
// for no longer than that.
//
// It knows nothing of repositories' references or of the database: whether a
// blob may exist or must go is decided by package refcount, which calls Commit
// with a function that records the blob, and Remove for a blob it has freed.
package blobs
