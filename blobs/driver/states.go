package driver

import "errors"

// ErrExists: a record written only if none exists (States.PutState with
// create) found one.
var ErrExists = errors.New("blob driver: record exists")

// States keeps the records of uploads in progress (what a driver would
// otherwise keep in its own storage beside their bytes: where the bytes
// are, how many, the caller's checkpoint) in the registry's database, so
// that every process sharing the storage reads what the last write left,
// a write costs a database statement rather than a request to the
// storage, and the sweeps list uploads from the database rather than from
// a listing of the storage. A record is opaque bytes, the driver's own
// encoding. Its methods may fail with ErrUnavailable (wrapped) when the
// database cannot be reached.
type States interface {
	// GetState returns upload id's record, or ErrNotFound.
	GetState(id string) ([]byte, error)
	// PutState writes upload id's record: with prev nil only if the
	// upload has none (else it fails with ErrExists), otherwise only if
	// the record stored is prev, byte for byte, the one the caller read
	// or wrote last (else, another or none, it fails with ErrStale). So
	// a write never brings back the record of an upload that ended, nor
	// undoes one made by another process since the caller's read.
	PutState(id string, rec, prev []byte) error
	// DeleteState removes upload id's record; none is success.
	DeleteState(id string) error
	// EachState calls fn for every upload's record, in id order, until fn
	// returns an error (which EachState returns). rec is fn's to keep.
	EachState(fn func(id string, rec []byte) error) error
}

// StateKeeper is a driver that can keep its uploads' records in States
// rather than in its own storage. KeepStates is called before the driver
// is used; uploads whose records the driver kept itself before are then
// unknown (their bytes are what nothing names, see StrayLister).
//
// A commit may remove an upload's record in the database transaction that
// records its blob, after Promote: StateRemoved then tells the driver,
// within the hold of that request (Holder), so that the RemoveUpload that
// follows removes the rest of the upload and not the record again. Until
// that RemoveUpload, what the upload stored beside the blob's bytes is
// named by nothing, a stray (StrayLister) if the process dies first.
type StateKeeper interface {
	KeepStates(States)
	StateRemoved(id string)
}
