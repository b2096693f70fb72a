package s3

import "net/http"

// Connection settings of the S3 client, for a registry's traffic: many
// requests at once to one endpoint, bodies of a MiB and more.
const (
	// idlePerHost: keep a connection per request in flight to the one
	// endpoint, so that a burst does not close connections only to dial
	// them again (the SDK keeps 10).
	idlePerHost = 256
	// ioBuffer: a part or segment goes out in writes of this size, not
	// net/http's 4 KiB (256 system calls per MiB otherwise); each pooled
	// connection holds two.
	ioBuffer = 64 << 10
)

// tuneTransport sets the SDK's HTTP transport for kvreg's traffic.
func tuneTransport(tr *http.Transport) {
	tr.MaxIdleConnsPerHost = idlePerHost
	tr.WriteBufferSize = ioBuffer
	tr.ReadBufferSize = ioBuffer
}
