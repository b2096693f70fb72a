package s3

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/opencontainers/go-digest"
)

// benchBlobs writes n blobs (index and a small data object each) by hand.
func benchBlobs(b *testing.B, d *Driver, n int) {
	ctx := context.Background()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			body := []byte(fmt.Sprint("blob ", i))
			obj := d.key("data", fmt.Sprintf("b%d-0000000000000000", i))
			ix, _ := json.Marshal(index{Object: obj, Size: int64(len(body))})
			if err := d.put(ctx, obj, body, false); err != nil {
				b.Error(err)
			}
			if err := d.put(ctx, d.indexKey(digest.FromBytes(body)), ix, false); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
}

// countRequests makes d count the S3 operations it sends in n.
func countRequests(d *Driver, n *atomic.Int64) {
	d.c = s3api.New(d.c.Options(), func(o *s3api.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("kvregCount",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					n.Add(1)
					return next.HandleInitialize(ctx, in)
				}), middleware.After)
		})
	})
}

// BenchmarkWalk walks 500 blobs and lists strays among them, with the
// serial read of every index that Walk did before as the baseline.
func BenchmarkWalk(b *testing.B) {
	srv, bucket := s3test.Bucket(b)
	d, err := New(context.Background(), Config{Bucket: bucket, Prefix: "kvreg", Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		b.Fatal(err)
	}
	benchBlobs(b, d, 500)
	var reqs atomic.Int64
	countRequests(d, &reqs)
	perOp := func(b *testing.B) { b.ReportMetric(float64(reqs.Load())/float64(b.N), "requests/op") }
	b.Run("walk", func(b *testing.B) {
		reqs.Store(0)
		for range b.N {
			n := 0
			if err := d.Walk(func(digest.Digest, string, int64) error { n++; return nil }); err != nil || n != 500 {
				b.Fatal(n, err)
			}
		}
		perOp(b)
	})
	b.Run("serial", func(b *testing.B) {
		ctx := context.Background()
		reqs.Store(0)
		for range b.N {
			n := 0
			err := d.list(ctx, d.key("blobs")+"/", "", func(key string, _ int64) error {
				e, _, err := d.readIndexKey(ctx, d.key("blobs")+"/", key)
				if err == nil && e.dg != "" {
					n++
				}
				return err
			})
			if err != nil || n != 500 {
				b.Fatal(n, err)
			}
		}
		perOp(b)
	})
	b.Run("strays", func(b *testing.B) {
		reqs.Store(0)
		for range b.N {
			if err := d.Strays(func(s driver.Stray) error { return fmt.Errorf("stray %s", s.Name) }); err != nil {
				b.Fatal(err)
			}
		}
		perOp(b)
	})
}
