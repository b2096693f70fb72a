package driver

// RequestCounter is a driver that counts the requests it sends to a
// storage service, for metrics and capacity planning. It is optional: a
// driver over a local directory has no requests to count.
type RequestCounter interface {
	// Requests returns how many requests the driver has sent since it
	// was made, by the service's operation name, attempts that were
	// retried included (each is one request the service answered).
	Requests() map[string]uint64
}
