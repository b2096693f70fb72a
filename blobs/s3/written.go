package s3

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/kvreg/kvreg/blobs/driver"
)

var _ driver.WrittenLister = (*Driver)(nil)

// dateSlack covers the rounding of the times an age is taken from: the
// Date header counts whole seconds (cut down, which makes an age look
// shorter by up to one), and a server may round a LastModified up.
const dateSlack = 2 * time.Second

// UploadsWritten lists the objects under uploads/ (one listing, a page
// per thousand objects) and reports each upload with when its state
// object was last written, on this process's clock, without reading it.
//
// The age of a state is taken on the server's clock alone: the page's
// Date less the state's LastModified, both the server's. This process's
// clock before the listing, less that age and dateSlack, is then no later
// than the write, however far the server's clock is from this process's
// (or from the writer's, whose clock stamped the state's Modified). A
// page without a Date, or one from a cache (Age), or with an object
// stamped after its Date, and an upload with no state object listed, say
// nothing: zero, and the upload is read.
//
// With states in the database (KeepStates), the time is the state's own
// Modified, stamped by the process that wrote it: the time Upload reports,
// which the sweeps test anyway.
func (d *Driver) UploadsWritten() ([]driver.UploadWritten, error) {
	if d.states != nil {
		var out []driver.UploadWritten
		err := d.eachState(context.Background(), nil, func(id string, st *state) error {
			u := driver.UploadWritten{ID: id}
			if st != nil {
				u.Written = st.Modified
			}
			out = append(out, u)
			return nil
		})
		return out, err
	}
	ctx := context.Background()
	root := d.key("uploads") + "/"
	var out []driver.UploadWritten
	at := map[string]int{} // index in out, by id
	p := s3api.NewListObjectsV2Paginator(d.c, &s3api.ListObjectsV2Input{Bucket: &d.bucket, Prefix: aws.String(root)})
	for p.HasMorePages() {
		sent := time.Now()
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		server, dated := serverDate(page.ResultMetadata)
		for _, o := range page.Contents {
			// An object stamped after the answer's Date comes from a clock
			// ahead of the one that dated the page (gateways behind a
			// balancer): no age on this page can be trusted.
			if o.LastModified != nil && o.LastModified.After(server.Add(dateSlack)) {
				dated = false
			}
		}
		for _, o := range page.Contents {
			id, rest, ok := strings.Cut(strings.TrimPrefix(aws.ToString(o.Key), root), "/")
			if !ok {
				continue // not under an upload's prefix: not an upload
			}
			i, seen := at[id]
			if !seen {
				i = len(out)
				at[id] = i
				out = append(out, driver.UploadWritten{ID: id})
			}
			if rest == "state" && dated && o.LastModified != nil {
				age := server.Sub(*o.LastModified)
				out[i].Written = sent.Add(-age - dateSlack)
			}
		}
	}
	return out, nil
}

// serverDate is the server's clock when it answered, from the Date of a
// response that did not come from a cache.
func serverDate(md middleware.Metadata) (time.Time, bool) {
	if resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); !ok || resp.Header.Get("Age") != "" {
		return time.Time{}, false
	}
	t, ok := awsmiddleware.GetServerTime(md)
	return t, ok && !t.IsZero()
}
