package s3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
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

// indexes lists the index objects and calls fn for each, from this
// goroutine only; indexes removed since the listing are left out. data is
// the data objects listed before (key to size): an index is the JSON of
// its data object's key and size, so one whose ETag is the MD5 of that
// JSON for a listed data object names that object, and is not read. The
// others (the ETag is not an MD5 on this server or bucket, the data object
// is missing or of another size, the index does not parse) are read,
// walkers at a time.
func (d *Driver) indexes(ctx context.Context, data map[string]int64, fn func(indexEntry) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	expect := make(map[string]index, len(data))
	for key, size := range data {
		ix := index{Object: key, Size: size}
		b, _ := json.Marshal(ix)
		sum := md5.Sum(b)
		expect[hex.EncodeToString(sum[:])] = ix
	}
	root := d.key("blobs") + "/"
	keys := make(chan string, walkers)
	out := make(chan indexEntry, walkers)
	errc := make(chan error, walkers)
	listed := make(chan error, 1)
	send := func(e indexEntry) error {
		select {
		case out <- e:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(keys)
		listed <- d.listObjects(ctx, root, func(o types.Object) error {
			key := aws.ToString(o.Key)
			if ix, ok := expect[strings.Trim(aws.ToString(o.ETag), `"`)]; ok {
				alg, hx, _ := strings.Cut(strings.TrimPrefix(key, root), "/")
				if dg := digest.Digest(alg + ":" + hx); driver.Valid(string(dg)) {
					return send(indexEntry{key: key, dg: dg, ix: ix})
				}
			}
			select {
			case keys <- key:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
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
				if ok && send(e) != nil {
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

// Walk reports every blob with its data object's key and size, as stored:
// one listing of the data objects, then one of the index objects, which
// it reads only where their ETags do not say what they hold (see
// indexes). A blob whose data object is missing is not reported (it is
// not readable), and neither is one promoted during the walk.
func (d *Driver) Walk(fn func(dg digest.Digest, name string, size int64) error) error {
	ctx := context.Background()
	sizes, err := d.dataSizes(ctx)
	if err != nil {
		return err
	}
	return d.indexes(ctx, sizes, func(e indexEntry) error {
		if e.dg == "" {
			return fn("", e.key, 0)
		}
		n, ok := sizes[e.ix.Object]
		if !ok {
			return nil
		}
		return fn(e.dg, e.ix.Object, n)
	})
}

var _ driver.StoredSizer = (*Driver)(nil)

// StoredSize reads the blob's index and asks for its data object's size:
// Stat's request and one HEAD. The location is the data object the index
// names.
func (d *Driver) StoredSize(dg digest.Digest) (int64, string, error) {
	ctx := context.Background()
	ix, err := d.readIndex(ctx, dg)
	if err != nil {
		return 0, "", err
	}
	out, err := d.c.HeadObject(ctx, &s3api.HeadObjectInput{Bucket: &d.bucket, Key: &ix.Object})
	if err != nil {
		if notFound(err) {
			return 0, "", fmt.Errorf("%w: %s: data object %s is gone", driver.ErrNotFound, dg, ix.Object)
		}
		return 0, "", err
	}
	return aws.ToInt64(out.ContentLength), ix.Object, nil
}
