package driver

// Holder is a driver that can keep what it reads and writes of one
// upload's record for the length of one request, so that the calls of
// that request (Checkpoint, Seal, Promote, RemoveUpload of a commit) read
// it once rather than once each. The caller holds the upload: nothing else
// touches it between Hold and release (its own lock serialises the
// upload's requests in this process, and a client sends one upload's
// requests one after the other). Holds of different uploads are
// independent; a driver that is not one reads its record every time.
type Holder interface {
	// Hold starts keeping upload id's record; release forgets it. What
	// the driver keeps describes what it stores, or differs from it only
	// in ways that are safe to lose at a crash.
	Hold(id string) (release func())
}
