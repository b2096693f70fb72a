package testenv

import (
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"time"
)

// S3Store is the --blob-store URL of a prefix "kvreg" in a bucket of an S3
// server that takes path-style requests.
func S3Store(bucket, endpoint, region string) string {
	return fmt.Sprintf("s3://%s/kvreg?endpoint=%s&region=%s&path-style=true", bucket, url.QueryEscape(endpoint), region)
}

// ClusterOptions says how to start kvreg serve --replicas processes on one
// database and one bucket behind haproxy.
type ClusterOptions struct {
	Bin      string   // the kvreg binary (Kvreg)
	HAProxy  string   // the haproxy binary (FindHAProxy)
	DB       string   // --db: postgres://...
	Store    string   // --blob-store: s3://... (S3Store)
	Replicas int      // how many kvreg processes; 3 when zero
	Dir      string   // the replicas' data directories and haproxy's configuration go under it
	Args     []string // more flags of every kvreg serve
}

// Cluster is kvreg serve --replicas processes sharing a database and a
// bucket, behind haproxy balancing every request round robin. The
// credentials of the bucket come from the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY), as for any kvreg.
type Cluster struct {
	DB       string
	Store    string
	Replicas []*Server
	LB       *HAProxy

	bin string
}

// StartCluster starts the replicas, then haproxy, and returns once every
// replica has answered /readyz through haproxy. On error what had started
// is stopped.
func StartCluster(o ClusterOptions) (*Cluster, error) {
	n := o.Replicas
	if n == 0 {
		n = 3
	}
	c := &Cluster{DB: o.DB, Store: o.Store, bin: o.Bin}
	var addrs []string
	for i := range n {
		s, err := Start(o.Bin, Options{
			Root: filepath.Join(o.Dir, fmt.Sprintf("r%d", i)),
			// haproxy connects from 127.0.0.1 and forwards the client's
			// address: each client's HEADs pin for that client.
			Args: append([]string{"--replicas", "--db", o.DB, "--blob-store", o.Store, "--trusted-proxies", "127.0.0.1/32"}, o.Args...),
		})
		if err != nil {
			c.Stop()
			return nil, fmt.Errorf("replica %d: %w", i, err)
		}
		c.Replicas = append(c.Replicas, s)
		addrs = append(addrs, s.Addr)
	}
	lb, err := StartHAProxy(o.HAProxy, o.Dir, addrs)
	if err != nil {
		c.Stop()
		return nil, err
	}
	c.LB = lb
	return c, nil
}

// Stop stops haproxy, then each replica with SIGTERM (30 s each at most),
// and returns what did not exit cleanly.
func (c *Cluster) Stop() error {
	if c.LB != nil {
		c.LB.Stop()
	}
	var errs []error
	for i, s := range c.Replicas {
		if err := s.Stop(30 * time.Second); err != nil {
			errs = append(errs, fmt.Errorf("replica %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// Logs is haproxy's configuration and the tail of every process's output,
// for a failed test to show.
func (c *Cluster) Logs() string {
	var s string
	if c.LB != nil {
		s = fmt.Sprintf("haproxy:\n%s\n%s\n", c.LB.Config, Tail(c.LB.Log(), 6000))
	}
	for i, r := range c.Replicas {
		s += fmt.Sprintf("replica %d:\n%s\n", i, Tail(r.Log(), 6000))
	}
	return s
}

// Fsck runs kvreg fsck --deep over the cluster's database and bucket (with
// root, an empty directory, as its data directory) and returns its output;
// the error is not nil unless the store is clean.
func (c *Cluster) Fsck(root string) ([]byte, error) {
	return exec.Command(c.bin, "fsck", "--deep", "--root", root, "--db", c.DB, "--blob-store", c.Store).CombinedOutput()
}
