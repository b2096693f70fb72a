package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

// walkers bounds the index objects read at once by Walk and Strays: one
// GET each, which a serial walk would pay one round trip at a time.
const walkers = 16

// indexEntry is one index object as read; dg is "" for a key that is not a
// digest's or an index that does not parse.
type indexEntry struct {
	key string
	dg  digest.Digest
	ix  index
}

// indexes lists the index objects and reads them, walkers at a time,
// calling fn for each from this goroutine only. Indexes removed since the
// listing are left out.
func (d *Driver) indexes(ctx context.Context, fn func(indexEntry) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	root := d.key("blobs") + "/"
	keys := make(chan string, walkers)
	out := make(chan indexEntry, walkers)
	errc := make(chan error, walkers)
	listed := make(chan error, 1)
	go func() {
		defer close(keys)
		listed <- d.list(ctx, root, "", func(key string, _ int64) error {
			select {
			case keys <- key:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var wg sync.WaitGroup
	for range walkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range keys {
				e, ok, err := d.readIndexKey(ctx, root, key)
				if err != nil {
					errc <- err
					cancel()
					return
				}
				if !ok {
					continue
				}
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	var ferr error
	for e := range out {
		if ferr == nil {
			if ferr = fn(e); ferr != nil {
				cancel()
			}
		}
	}
	lerr := <-listed
	if ferr != nil {
		return ferr
	}
	select {
	case err := <-errc:
		return err
	default:
	}
	return lerr
}

// readIndexKey reads the index object at key; ok is false if it is gone.
func (d *Driver) readIndexKey(ctx context.Context, root, key string) (e indexEntry, ok bool, err error) {
	alg, hex, _ := strings.Cut(strings.TrimPrefix(key, root), "/")
	dg := digest.Digest(alg + ":" + hex)
	if !driver.Valid(string(dg)) {
		return indexEntry{key: key}, true, nil
	}
	ix, err := d.readIndex(ctx, dg)
	switch {
	case errors.Is(err, driver.ErrNotFound):
		return e, false, nil // removed since the listing
	case errors.Is(err, ErrCorrupt):
		return indexEntry{key: key}, true, nil
	case err != nil:
		return e, false, err
	}
	return indexEntry{key: key, dg: dg, ix: ix}, true, nil
}

// listObjects calls fn for every object under prefix, with its size and
// modification time.
func (d *Driver) listObjects(ctx context.Context, prefix string, fn func(types.Object) error) error {
	p := s3api.NewListObjectsV2Paginator(d.c, &s3api.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			if err := fn(o); err != nil {
				return err
			}
		}
	}
	return nil
}

// dataSizes lists the data objects: key to size.
func (d *Driver) dataSizes(ctx context.Context) (map[string]int64, error) {
	sizes := map[string]int64{}
	err := d.listObjects(ctx, d.key("data")+"/", func(o types.Object) error {
		sizes[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		return nil
	})
	return sizes, err
}

// Walk reports every blob with the size of its data object, as stored:
// one listing of the data objects, then the index objects, read
// concurrently. A blob whose data object is missing is not reported (it is
// not readable), and neither is one promoted during the walk.
func (d *Driver) Walk(fn func(dg digest.Digest, name string, size int64) error) error {
	ctx := context.Background()
	sizes, err := d.dataSizes(ctx)
	if err != nil {
		return err
	}
	return d.indexes(ctx, func(e indexEntry) error {
		if e.dg == "" {
			return fn("", e.key, 0)
		}
		n, ok := sizes[e.ix.Object]
		if !ok {
			return nil
		}
		return fn(e.dg, e.key, n)
	})
}

var _ driver.StoredSizer = (*Driver)(nil)

// StoredSize reads the blob's index and asks for its data object's size:
// Stat's request and one HEAD.
func (d *Driver) StoredSize(dg digest.Digest) (int64, error) {
	ctx := context.Background()
	ix, err := d.readIndex(ctx, dg)
	if err != nil {
		return 0, err
	}
	out, err := d.c.HeadObject(ctx, &s3api.HeadObjectInput{Bucket: &d.bucket, Key: &ix.Object})
	if err != nil {
		if notFound(err) {
			return 0, fmt.Errorf("%w: %s: data object %s is gone", driver.ErrNotFound, dg, ix.Object)
		}
		return 0, err
	}
	return aws.ToInt64(out.ContentLength), nil
}
