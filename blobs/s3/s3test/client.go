package s3test

import (
	"bytes"
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
)

// Client reaches a bucket through the S3 API, under kvreg's driver, for
// tests that leave there what a crash would, or look at what is stored
// without importing an S3 client themselves.
type Client struct {
	c      *s3api.Client
	bucket string
}

// Client returns a client of bucket on the server.
func (s Server) Client(bucket string) *Client {
	return &Client{bucket: bucket, c: s3api.New(s3api.Options{
		BaseEndpoint: aws.String(s.Endpoint), Region: s.Region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})}
}

// Put writes an object.
func (c *Client) Put(key string, body []byte) error {
	_, err := c.c.PutObject(context.Background(), &s3api.PutObjectInput{Bucket: &c.bucket, Key: &key, Body: bytes.NewReader(body)})
	return err
}

// Delete removes an object.
func (c *Client) Delete(key string) error {
	_, err := c.c.DeleteObject(context.Background(), &s3api.DeleteObjectInput{Bucket: &c.bucket, Key: &key})
	return err
}

// Head reports an object's size, or an error if there is none.
func (c *Client) Head(key string) (int64, error) {
	out, err := c.c.HeadObject(context.Background(), &s3api.HeadObjectInput{Bucket: &c.bucket, Key: &key})
	if err != nil {
		return 0, err
	}
	return aws.ToInt64(out.ContentLength), nil
}

// List returns the keys under prefix with their sizes.
func (c *Client) List(prefix string) (map[string]int64, error) {
	out := map[string]int64{}
	p := s3api.NewListObjectsV2Paginator(c.c, &s3api.ListObjectsV2Input{Bucket: &c.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
	}
	return out, nil
}

// CreateMultipart starts a multipart upload of key and returns its id.
func (c *Client) CreateMultipart(key string) (string, error) {
	out, err := c.c.CreateMultipartUpload(context.Background(), &s3api.CreateMultipartUploadInput{Bucket: &c.bucket, Key: &key})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.UploadId), nil
}

// Multiparts lists the multipart uploads in progress, as their keys.
func (c *Client) Multiparts() ([]string, error) {
	out, err := c.c.ListMultipartUploads(context.Background(), &s3api.ListMultipartUploadsInput{Bucket: &c.bucket})
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys, nil
}
