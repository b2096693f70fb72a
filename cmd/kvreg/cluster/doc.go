// Package cluster tests kvreg serve --replicas: three kvreg processes
// sharing one PostgreSQL database and one S3 bucket behind haproxy, which
// sends every request to the next replica in turn. The tests start all
// of these on loopback (pgtest, s3test, testenv); only tests live here.
package cluster
