package driver

import (
	"errors"
	"time"
)

// Deferrer is a driver that can start an upload storing nothing until its
// first bytes come: most uploads are started and sent on at once, and an
// upload with no bytes needs no record to be resumed or cleaned up. What
// stands for the record meanwhile is a token the client carries (in the
// upload's URL), signed with a key every process sharing the store reads
// from it.
type Deferrer interface {
	// DeferUpload starts upload id of repo with nothing stored, at
	// issued, and returns the token that vouches for it and carries
	// that time. An error (the driver cannot sign here, or not now)
	// leaves the caller to CreateUpload instead.
	DeferUpload(id, repo string, issued time.Time) (token string, err error)
	// Vouch reports whether token vouches for upload id of repo, from
	// DeferUpload in any process sharing the store, issued no earlier
	// than notBefore (so that an upload that never got a record expires
	// as one idle that long would, and a token of an upload that ended
	// is good for no longer than that). If it does and the
	// upload is held (Holder), a read of the upload's record under the
	// hold that finds none finds it started and empty; with trust, the
	// hold takes it so with no read at all, until it writes the record.
	// The hold's first write of the record is made only if none exists:
	// a client that sends the token again after its upload got bytes (a
	// chunk retried from the upload's first URL) finds its write failed
	// with ErrStale, and the upload as it was; what that write stored
	// before its record is what nothing names.
	Vouch(id, repo, token string, notBefore time.Time, trust bool) bool
}

// ErrStale: a write of an upload's record found it other than the caller
// saw it: one, under a token's word that the upload had none
// (Deferrer.Vouch), or another or none, where the caller had read one
// (States.PutState). The upload is as the other writer left it, and the
// caller's view of it is out of date.
var ErrStale = errors.New("blob driver: the upload has a record the request did not know of")
