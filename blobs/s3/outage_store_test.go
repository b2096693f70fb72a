package s3_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/blobs/s3"
)

// An upload this process has not seen, asked about while the S3 server
// does not answer, is an outage (503), not an unknown upload (404): the
// client must retry, not start over.
func TestUploadLookupDuringOutageIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	d, err := s3.New(context.Background(), s3.Config{
		Bucket: "b", Endpoint: closed, Region: "us-east-1", PathStyle: true,
		AccessKey: "k", SecretKey: "s", MaxAttempts: 2, MaxBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	st := blobs.New(d)
	_, err = st.UploadSize("team/app", "0123456789abcdef0123456789abcdef")
	if !errors.Is(err, blobs.ErrUnavailable) || errors.Is(err, blobs.ErrUploadUnknown) {
		t.Fatalf("upload lookup with S3 down: %v, want unavailable and not unknown", err)
	}
}
