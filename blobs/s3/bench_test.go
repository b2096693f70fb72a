package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/opencontainers/go-digest"
)

// BenchmarkPush streams 64 MiB into an upload (in one Append, and in
// chunks of 1 MiB), seals and promotes it, then reads it back.
func BenchmarkPush(b *testing.B) {
	const size = 64 << 20
	body := randomBytes(size, 42)
	dg := digest.FromBytes(body)
	for _, chunk := range []int{size, 1 << 20} {
		b.Run(fmt.Sprintf("chunk=%dKiB", chunk>>10), func(b *testing.B) {
			srv, bucket := s3test.Bucket(b)
			d, err := New(context.Background(), Config{Bucket: bucket, Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				id := fmt.Sprint("u", i)
				if err := d.CreateUpload(id, "r"); err != nil {
					b.Fatal(err)
				}
				for off := 0; off < size; off += chunk {
					if _, err := d.Append(id, int64(off), bytes.NewReader(body[off:off+chunk])); err != nil {
						b.Fatal(err)
					}
				}
				if err := d.Seal(id); err != nil {
					b.Fatal(err)
				}
				if _, err := d.Promote(id, dg); err != nil {
					b.Fatal(err)
				}
				d.RemoveUpload(id)
				f, err := d.Open(dg)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, f); err != nil || n != size {
					b.Fatal(n, err)
				}
				f.Close()
				if err := d.Remove(dg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPresign signs a redirect for a blob whose record names its data
// object, as a replica does at the first GET of each blob: a signature
// only, no request (the endpoint here is never reached).
func BenchmarkPresign(b *testing.B) {
	d, err := New(context.Background(), Config{Bucket: "b", Endpoint: "http://127.0.0.1:9", Region: "us-east-1", PathStyle: true, AccessKey: "a", SecretKey: "s"})
	if err != nil {
		b.Fatal(err)
	}
	obj := d.key("data", "0123456789abcdef0123456789abcdef-0123456789abcdef")
	dg := digest.FromString("presigned")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		// A new incarnation each time: nothing signed before is reused.
		if _, err := d.PresignGetIncarnation(dg, int64(i+1), obj, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
