// Package s3e2e tests kvreg serve with its blob bytes in an S3 bucket, on a
// real S3 server (versitygw) that the tests start.
package s3e2e
