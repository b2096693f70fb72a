package s3

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/kvreg/kvreg/blobs/driver"
)

var _ driver.StrayLister = (*Driver)(nil)

// multipartSep joins a multipart upload's key and id in a stray's name.
const multipartSep = "?uploadId="

// multipart is a multipart upload in progress.
type multipart struct {
	key, id string
	up      types.MultipartUpload
}

// multiparts lists the multipart uploads in progress under data/.
func (d *Driver) multiparts(ctx context.Context) ([]multipart, error) {
	prefix := d.key("data") + "/"
	var out []multipart
	p := s3api.NewListMultipartUploadsPaginator(d.c, &s3api.ListMultipartUploadsInput{Bucket: &d.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, u := range page.Uploads {
			out = append(out, multipart{key: aws.ToString(u.Key), id: aws.ToString(u.UploadId), up: u})
		}
	}
	return out, nil
}

// partBytes sums the parts a multipart upload holds so far.
func (d *Driver) partBytes(ctx context.Context, m multipart) (int64, error) {
	var n int64
	p := s3api.NewListPartsPaginator(d.c, &s3api.ListPartsInput{Bucket: &d.bucket, Key: &m.key, UploadId: &m.id})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if notFound(err) {
				return n, nil
			}
			return n, err
		}
		for _, pt := range page.Parts {
			n += aws.ToInt64(pt.Size)
		}
	}
	return n, nil
}

// Strays lists first what is stored (data objects, multipart uploads under
// data/, the objects under uploads/), then what names it (upload states,
// from the database when the driver keeps them there, then blob indexes).
// A state is removed only after the index naming its data object is
// written, so what is named when the listing starts is seen named. What
// is written before what names it (a data object or a tail segment before
// the state names it, a multipart upload before the state records its id)
// is reported while in flight: callers keep strays younger than a grace.
//
// Under uploads/<id>/, with a state every tail segment it does not name
// (nor its previous bytes) is a stray, and other keys are left to the
// upload; without a state everything is a stray. A state that does not
// parse keeps everything under its upload.
func (d *Driver) Strays(fn func(driver.Stray) error) error {
	ctx := context.Background()
	var data, under []types.Object
	if err := d.listObjects(ctx, d.key("data")+"/", func(o types.Object) error { data = append(data, o); return nil }); err != nil {
		return err
	}
	mps, err := d.multiparts(ctx)
	if err != nil {
		return err
	}
	uroot := d.key("uploads") + "/"
	if err := d.listObjects(ctx, uroot, func(o types.Object) error { under = append(under, o); return nil }); err != nil {
		return err
	}

	named := map[string]bool{}    // data objects and tail segments
	liveMP := map[string]bool{}   // multipart upload ids
	hasState := map[string]bool{} // upload ids
	keepAll := map[string]bool{}  // upload ids whose state does not parse
	var ids []string              // uploads with a state object listed, where states are objects
	for _, o := range under {
		id, rest, _ := strings.Cut(strings.TrimPrefix(aws.ToString(o.Key), uroot), "/")
		if rest == "state" && d.states == nil {
			ids = append(ids, id)
		}
	}
	// An upload whose state went since the listing is left out: its
	// objects are strays.
	err = d.eachState(ctx, ids, func(id string, st *state) error {
		hasState[id] = true
		if st == nil {
			keepAll[id] = true
			return nil
		}
		named[st.Object] = true
		if st.MultipartID != "" {
			liveMP[st.MultipartID] = true
		}
		for _, b := range []*bytesOf{&st.bytesOf, st.Prev} {
			if b != nil {
				for _, sg := range b.Tail {
					named[sg.Key] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	sizes := make(map[string]int64, len(data))
	for _, o := range data {
		sizes[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
	}
	if err := d.indexes(ctx, sizes, func(e indexEntry) error {
		if e.dg != "" {
			named[e.ix.Object] = true
		}
		return nil
	}); err != nil {
		return err
	}

	for _, o := range data {
		if key := aws.ToString(o.Key); !named[key] {
			if err := fn(driver.Stray{Name: key, Kind: driver.StrayObject, Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)}); err != nil {
				return err
			}
		}
	}
	for _, m := range mps {
		if liveMP[m.id] {
			continue
		}
		size, err := d.partBytes(ctx, m)
		if err != nil {
			return err
		}
		if err := fn(driver.Stray{Name: m.key + multipartSep + m.id, Kind: driver.StrayMultipart, Size: size, Modified: aws.ToTime(m.up.Initiated)}); err != nil {
			return err
		}
	}
	for _, o := range under {
		key := aws.ToString(o.Key)
		id, rest, _ := strings.Cut(strings.TrimPrefix(key, uroot), "/")
		// A state object is a stray too when states are in the database
		// (one written before KeepStates).
		stray := !hasState[id] || (!keepAll[id] && strings.HasPrefix(rest, "tail-") && !named[key]) ||
			(d.states != nil && rest == "state")
		if stray {
			if err := fn(driver.Stray{Name: key, Kind: driver.StrayObject, Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// RemoveStray deletes an object under data/ or uploads/, or aborts a
// multipart upload under data/; it does not look again whether something
// names it.
func (d *Driver) RemoveStray(name string) error {
	ctx := context.Background()
	droot, uroot := d.key("data")+"/", d.key("uploads")+"/"
	if key, id, ok := strings.Cut(name, multipartSep); ok {
		if !strings.HasPrefix(key, droot) || id == "" || !clean(key) {
			return fmt.Errorf("%w: stray %q", driver.ErrInvalidName, name)
		}
		_, err := d.c.AbortMultipartUpload(ctx, &s3api.AbortMultipartUploadInput{Bucket: &d.bucket, Key: &key, UploadId: &id})
		if err != nil && !notFound(err) {
			return err
		}
		return nil
	}
	if !(strings.HasPrefix(name, droot) || strings.HasPrefix(name, uroot)) || !clean(name) {
		return fmt.Errorf("%w: stray %q", driver.ErrInvalidName, name)
	}
	return d.del(ctx, name)
}

// clean reports whether key has no empty, "." or ".." segment.
func clean(key string) bool { return path.Clean("/"+key) == "/"+key && !strings.HasSuffix(key, "/") }
