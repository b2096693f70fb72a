package pgkv

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/kvreg/kvreg/kv/backend"
)

// ErrSchemaTooNew: the database's schema was written by a newer kvreg.
var ErrSchemaTooNew = errors.New("pgkv: the database's schema is newer than this kvreg knows")

// retryable reports a serialization failure or a deadlock: the
// transaction was rolled back and running it again may succeed.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// lockWaitTimedOut reports a row lock wait that ran out of its time: in
// an Update, whose waits are short, another transaction holds the row and
// will most likely commit (then this one fails anyway at SERIALIZABLE) or
// the two deadlock; it is retried like a serialization failure.
func lockWaitTimedOut(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03"
}

// mapErr names what pgx reports as backend's sentinels, keeping the
// original in the chain.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "40001" || pe.Code == "40P01":
			return fmt.Errorf("pgkv: %w", err)
		case pe.Code == "23505": // unique_violation: only Insert makes one
			return fmt.Errorf("%w: %w", backend.ErrExists, err)
		case pe.Code == "22012": // division_by_zero: only Replace makes one
			return fmt.Errorf("%w: %w", backend.ErrStale, err)
		case pe.Code == "53100": // disk_full
			return fmt.Errorf("%w: %w", backend.ErrNoSpace, err)
		case pe.Code == "25006": // read_only_sql_transaction
			return fmt.Errorf("%w: %w", backend.ErrReadOnly, err)
		case pe.Code == "55P03", // lock_not_available: lock_timeout
			pe.Code == "57014",   // query_canceled: statement_timeout
			pe.Code == "53300",   // too_many_connections
			pe.Code[:2] == "08",  // connection exceptions
			pe.Code[:3] == "57P": // shutdown, crash, cannot connect now
			return fmt.Errorf("%w: %w", backend.ErrUnavailable, err)
		}
		return fmt.Errorf("pgkv: %w", err)
	}
	// Anything else pgx returns is about the connection: refused, cut,
	// timed out, or the pool closed.
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return fmt.Errorf("%w: timed out: %w", backend.ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %w", backend.ErrUnavailable, err)
}
