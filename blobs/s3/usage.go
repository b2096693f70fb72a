package s3

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/kvreg/kvreg/blobs/driver"
)

var _ driver.Usager = (*Driver)(nil)

// Usage lists every object under the prefix once and the parts of the
// multipart uploads in progress: data objects are blob bytes (sealed
// uploads' and strays' too), tail segments and parts are upload bytes,
// indexes and states the rest. An upload's first tail segment is written
// at its data object's key (inPlace): the states of the uploads in
// progress are read to count it as upload bytes. With states in the
// database (KeepStates), everything under uploads/ is upload bytes.
func (d *Driver) Usage() (driver.Usage, error) {
	ctx := context.Background()
	var u driver.Usage
	droot, uroot := d.key("data")+"/", d.key("uploads")+"/"
	data := map[string]int64{}
	var ids []string
	err := d.listObjects(ctx, d.prefix, func(o types.Object) error {
		key, n := aws.ToString(o.Key), aws.ToInt64(o.Size)
		switch {
		case strings.HasPrefix(key, droot):
			u.BlobBytes += n
			u.BlobObjects++
			data[key] = n
		case strings.HasPrefix(key, uroot) && (d.states != nil || !strings.HasSuffix(key, "/state")):
			u.UploadBytes += n
		default:
			if strings.HasPrefix(key, uroot) {
				ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(key, uroot), "/state"))
			}
			u.OtherBytes += n
		}
		return nil
	})
	if err != nil {
		return u, err
	}
	err = d.eachState(ctx, ids, func(_ string, st *state) error {
		if st == nil {
			return nil
		}
		n, ok := data[st.Object]
		if ok && !st.Sealed && (st.bytesOf.names(st.Object) || st.Prev.names(st.Object)) {
			u.BlobBytes -= n
			u.BlobObjects--
			u.UploadBytes += n
		}
		return nil
	})
	if err != nil {
		return u, err
	}
	mps, err := d.multiparts(ctx)
	if err != nil {
		return u, err
	}
	for _, m := range mps {
		n, err := d.partBytes(ctx, m)
		if err != nil {
			return u, err
		}
		u.UploadBytes += n
	}
	return u, nil
}
