package regtest

// Replica opens another registry over r's database and blob store, as a
// second kvreg process sharing them does, on r's clock; it is checked and
// closed when the test ends, before r. r must be Shared, on PostgreSQL
// (a bbolt file has one writer).
func (r *Registry) Replica() *Registry {
	r.t.Helper()
	if !r.opts.Shared || r.Backend.DB != "postgres" {
		r.t.Fatalf("regtest: a replica needs a Shared registry on PostgreSQL (have %s, shared %v)", r.Backend.DB, r.opts.Shared)
	}
	o := *r
	o.Registry, o.closed = nil, false
	o.open()
	r.t.Cleanup(o.finish)
	return &o
}
