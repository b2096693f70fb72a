package driver

// Deferrer is a driver that can start an upload storing nothing until its
// first bytes come: most uploads are started and sent on at once, and an
// upload with no bytes needs no record to be resumed or cleaned up. What
// stands for the record meanwhile is a token the client carries (in the
// upload's URL), signed with a key every process sharing the store reads
// from it.
type Deferrer interface {
	// DeferUpload starts upload id of repo with nothing stored and
	// returns the token that vouches for it. An error (the driver cannot
	// sign here, or not now) leaves the caller to CreateUpload instead.
	DeferUpload(id, repo string) (token string, err error)
	// Fresh reports whether token vouches for upload id of repo, from
	// DeferUpload in any process sharing the store. If it does and the
	// upload is held (Holder), it reads as started and empty, with no
	// request, until the hold writes it: the caller has it from the
	// client that the upload has had no bytes. A client that sends the
	// token again after sending bytes starts the upload over, as two
	// requests racing at one offset would; the bytes it had are then
	// what nothing names.
	Fresh(id, repo, token string) bool
}
