package regtest

import "github.com/kvreg/kvreg/refcount/policy"

// ReopenWith reopens the registry, as a restart with another
// configuration does, under the rules p.
func (r *Registry) ReopenWith(p *policy.Set) {
	r.t.Helper()
	r.opts.Policies = p
	r.Reopen()
}
