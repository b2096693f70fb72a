package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/kvreg/kvreg/api"
	blobs3 "github.com/kvreg/kvreg/blobs/s3"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/policy"
	"github.com/urfave/cli/v2"
)

// store is how an operator command reaches the data: through the admin
// socket of a running server (online), or by opening the data directory
// itself (offline).
type store struct {
	root   string
	client *http.Client       // online
	reg    *refcount.Registry // offline
}

// openStore prefers a running server; otherwise it opens the directory,
// read-only unless write. It never waits long for a lock.
func openStore(c *cli.Context, write bool) (*store, error) {
	return openStorePolicies(c, write, nil)
}

// openStorePolicies is openStore with the rules an offline store applies
// (a running server applies its own).
func openStorePolicies(c *cli.Context, write bool, policies *policy.Set) (*store, error) {
	root := c.String("root")
	cmd := commandName(c)
	// A PostgreSQL database with an S3 bucket may be shared by running
	// replicas (kvreg serve --replicas) that no socket here reaches, and
	// needs no data directory.
	db, bs := c.String("db"), c.String("blob-store")
	shared := kv.IsURL(db) && blobs3.IsURL(bs)
	_, rootErr := os.Stat(root)
	if rootErr != nil && !shared {
		return nil, cli.Exit(fmt.Sprintf("%s: data directory: %v", cmd, rootErr), 2)
	}
	sock := filepath.Join(root, api.AdminSocket)
	if conn, err := net.DialTimeout("unix", sock, time.Second); rootErr == nil && err == nil {
		conn.Close()
		fmt.Fprintf(c.App.ErrWriter, "%s: online, through the running server's socket %s\n", cmd, sock)
		return &store{root: root, client: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
		}}}, nil
	}
	reg, err := refcount.OpenStores(root, db, bs, kv.Options{ReadOnly: !write, LockTimeout: time.Second}, refcount.Options{Shared: shared, Policies: policies})
	if errors.Is(err, kv.ErrLocked) {
		return nil, cli.Exit(fmt.Sprintf("%s: the database is held by another process and no server answered on %s", cmd, sock), 2)
	}
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("%s: %v", cmd, err), 2)
	}
	if shared {
		fmt.Fprintf(c.App.ErrWriter, "%s: opened the shared database and bucket\n", cmd)
	} else {
		fmt.Fprintf(c.App.ErrWriter, "%s: offline, opened %s\n", cmd, root)
	}
	return &store{root: root, reg: reg}, nil
}

// commandName is the command as typed, "kvreg token ls" for a
// subcommand.
func commandName(c *cli.Context) string {
	if c.Command.HelpName != "" {
		return c.Command.HelpName
	}
	return "kvreg " + c.Command.Name
}

func (s *store) close() {
	if s.reg != nil {
		s.reg.Close()
	}
}

func (s *store) online() bool { return s.client != nil }

// ask answers an operator request through the running server, or with
// local on the opened store.
func ask[T any](st *store, method, path string, q url.Values, local func(*refcount.Registry) (T, error)) (T, error) {
	if st.online() {
		var out T
		err := st.call(method, path, q, &out)
		return out, err
	}
	return local(st.reg)
}

// call runs an admin request and decodes its JSON answer into out.
func (s *store) call(method, path string, q url.Values, out any) error {
	req, err := http.NewRequest(method, "http://kvreg"+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.Unmarshal(body, &e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		return errors.New(e.Error)
	}
	return json.Unmarshal(body, out)
}

func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
