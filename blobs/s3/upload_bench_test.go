package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/opencontainers/go-digest"
)

// cpuTime is the CPU this process has used (user and system), not the S3
// server's, which runs in a process of its own.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkUpload pushes a blob as blobs drives the driver: one chunk
// teed through the running sha256 whose state is the checkpoint, then, in
// one hold, the checkpoint read, Seal, Promote and the upload's removal.
// cpu-ns/op is this process's CPU per push (the server's is left out);
// reqs/op the S3 requests. The blob is removed after each push, untimed.
func BenchmarkUpload(b *testing.B) {
	for _, size := range []int{1 << 20, 4 << 20, 20 << 20} {
		b.Run(fmt.Sprintf("size=%dMiB", size>>20), func(b *testing.B) {
			body := randomBytes(size, 42)
			dg := digest.FromBytes(body)
			srv, bucket := s3test.Bucket(b)
			d, err := New(context.Background(), Config{Bucket: bucket, Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
			if err != nil {
				b.Fatal(err)
			}
			if err := d.Ping(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			var cpu time.Duration
			var reqs uint64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id := fmt.Sprint("u", i)
				c0, r0 := cpuTime(b), sum(d.Requests())
				if err := d.CreateUpload(id, "r"); err != nil {
					b.Fatal(err)
				}
				h := sha256.New()
				cp := func() []byte { s, _ := h.(encoding.BinaryMarshaler).MarshalBinary(); return s }
				release := d.Hold(id)
				if _, err := d.AppendCheckpoint(id, 0, io.TeeReader(bytes.NewReader(body), h), cp); err != nil {
					b.Fatal(err)
				}
				release()
				release = d.Hold(id)
				if _, _, err := d.Checkpoint(id); err != nil {
					b.Fatal(err)
				}
				if err := d.Seal(id); err != nil {
					b.Fatal(err)
				}
				if _, err := d.Promote(id, dg); err != nil {
					b.Fatal(err)
				}
				if err := d.RemoveUpload(id); err != nil {
					b.Fatal(err)
				}
				release()
				cpu += cpuTime(b) - c0
				reqs += sum(d.Requests()) - r0
				b.StopTimer()
				if err := d.Remove(dg); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(reqs)/float64(b.N), "reqs/op")
		})
	}
}
