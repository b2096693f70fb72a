package refcount

import (
	"slices"

	"github.com/kvreg/kvreg/kv"
)

// outboxCount is an endpoint whose count of pending rows differs from the
// rows it has.
type outboxCount struct {
	endpoint     string
	pending, got int64
}

// outboxCountsTx lists the endpoints whose pending count is not their
// number of rows: the endpoints with rows, and the configured ones, whose
// count may stand with no row left.
func (r *Registry) outboxCountsTx(tx *kv.Tx) ([]outboxCount, error) {
	eps, err := tx.OutboxEndpoints()
	if err != nil {
		return nil, err
	}
	for _, e := range r.opts.Events {
		if !slices.Contains(eps, e.Name) {
			eps = append(eps, e.Name)
		}
	}
	var out []outboxCount
	for _, ep := range eps {
		var rows int64
		if err := tx.Outbox(ep, func(kv.OutboxRow) (bool, error) { rows++; return true, nil }); err != nil {
			return nil, err
		}
		n, err := tx.OutboxPending(ep)
		if err != nil {
			return nil, err
		}
		if n != rows {
			out = append(out, outboxCount{endpoint: ep, pending: n, got: rows})
		}
	}
	return out, nil
}

// checkOutboxTx reports the endpoints whose pending count is wrong.
func (r *Registry) checkOutboxTx(st *checkState, tx *kv.Tx) error {
	counts, err := r.outboxCountsTx(tx)
	for _, c := range counts {
		st.add(ProblemCounter, "events endpoint "+c.endpoint, "%d events pending, the outbox holds %d", c.pending, c.got)
	}
	return err
}

// mendOutboxTx sets each wrong pending count to the rows (repair).
func (r *Registry) mendOutboxTx(tx *kv.Tx) error {
	counts, err := r.outboxCountsTx(tx)
	if err != nil {
		return err
	}
	for _, c := range counts {
		if err := tx.AddOutboxPending(c.endpoint, c.got-c.pending); err != nil {
			return err
		}
	}
	return nil
}
