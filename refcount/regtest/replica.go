package regtest

import (
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
)

// Replica opens another registry over r's database and blob store, as
// another kvreg process sharing them: its own kv.DB and blobs.Store, r's
// clock and windows. r must have been opened with Shared, on PostgreSQL (a
// bbolt file has one writer). It is closed when the test ends, before r is
// checked.
func (r *Registry) Replica() *refcount.Registry {
	r.t.Helper()
	if !r.opts.Shared || r.Backend.DB != "postgres" {
		r.t.Fatalf("regtest: a replica needs a Shared registry on PostgreSQL, not %s (Shared %v)", r.Backend.Name, r.opts.Shared)
	}
	reg, err := refcount.OpenStores(r.Root, r.db, r.blobs, kv.Options{}, r.refcountOptions())
	if err != nil {
		r.t.Fatalf("regtest: open replica (%s, %s blobs): %v", r.Backend.Name, r.Backend.Blob, err)
	}
	r.t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			r.t.Errorf("regtest: close replica: %v", err)
		}
	})
	return reg
}

// Opts are the options r was opened with (defaults filled in).
func (r *Registry) Opts() Options { return r.opts }
