package regtest

import "github.com/kvreg/kvreg/refcount/policy"

// Replica opens another registry over r's database and blob store, as
// another kvreg process sharing them: its own kv.DB and blobs.Store, r's
// clock and windows. r must have been opened with Shared, on PostgreSQL (a
// bbolt file has one writer). It is checked and closed when the test ends,
// before r.
func (r *Registry) Replica() *Registry {
	r.t.Helper()
	if !r.opts.Shared || r.Backend.DB != "postgres" {
		r.t.Fatalf("regtest: a replica needs a Shared registry on PostgreSQL, not %s (Shared %v)", r.Backend.Name, r.opts.Shared)
	}
	o := *r
	o.Registry, o.closed = nil, false
	o.open()
	r.t.Cleanup(o.finish)
	return &o
}

// Opts are the options r was opened with (defaults filled in).
func (r *Registry) Opts() Options { return r.opts }

// ReplicaWith is Replica with other operator rules: a replica started
// with another configuration.
func (r *Registry) ReplicaWith(p *policy.Set) *Registry {
	r.t.Helper()
	if !r.opts.Shared || r.Backend.DB != "postgres" {
		r.t.Fatalf("regtest: a replica needs a Shared registry on PostgreSQL, not %s (Shared %v)", r.Backend.Name, r.opts.Shared)
	}
	o := *r
	o.Registry, o.closed = nil, false
	o.opts.Policies = p
	o.open()
	r.t.Cleanup(o.finish)
	return &o
}
