package s3

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
)

// A multipart upload of an upload's data object that its state does not
// name (its create's answer was lost to a crash, or the client retried it)
// goes with the upload: RemoveUpload finds it by the key.
func TestRemoveUploadAbortsUnrecordedMultipart(t *testing.T) {
	d := newDriver(t)
	ctx := context.Background()
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Append("u", 0, bytes.NewReader(randomBytes(MinPartSize+10, 1))); err != nil {
		t.Fatal(err)
	}
	st, err := d.readState(ctx, "u")
	if err != nil || !st.Multipart || st.MultipartID == "" {
		t.Fatalf("state after a part: %+v, %v", st, err)
	}
	for i := 0; i < 2; i++ {
		if _, err := d.c.CreateMultipartUpload(ctx, &s3api.CreateMultipartUploadInput{Bucket: &d.bucket, Key: &st.Object}); err != nil {
			t.Fatal(err)
		}
	}
	// Another key's multipart upload is not the upload's.
	other := st.Object + "-other"
	if _, err := d.c.CreateMultipartUpload(ctx, &s3api.CreateMultipartUploadInput{Bucket: &d.bucket, Key: &other}); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveUpload("u"); err != nil {
		t.Fatal(err)
	}
	out, err := d.c.ListMultipartUploads(ctx, &s3api.ListMultipartUploadsInput{Bucket: aws.String(d.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) != 1 || aws.ToString(out.Uploads[0].Key) != other {
		var keys []string
		for _, u := range out.Uploads {
			keys = append(keys, aws.ToString(u.Key))
		}
		t.Fatalf("multipart uploads after RemoveUpload: %v, want only %s", keys, other)
	}
}
