package pgkv

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/kvreg/kvreg/kv/backend"
)

// keyLockClass is the class id of the two-int advisory locks that Lock
// takes on keys. A one-bigint advisory key k shares the lock space with
// the pair (k>>32, k&0xffffffff): the class differs from the high half of
// every bigint key above (0x006b7672), so the two never meet.
const keyLockClass int32 = 0x6b726c6b

var _ backend.Locker = (*Store)(nil)

// lockObj is the advisory lock's object id of key: 32 bits of its hash.
// Two keys that share one only wait for each other now and then.
func lockObj(key []byte) int32 {
	h := fnv.New32a()
	h.Write(key)
	return int32(h.Sum32())
}

// newLockPool is the pool of the connections that hold key locks: apart
// from the transactions' pool, so that holders, each of which runs a
// transaction while it holds its lock, can never take every connection of
// one pool and wait for a connection there. It connects on first use.
func newLockPool(cfg *pgxpool.Config, size int32) (*pgxpool.Pool, error) {
	lc := cfg.Copy()
	lc.MaxConns = size
	lc.MinConns = 0
	// A holder cut off from the server (its host gone, the network
	// parted) keeps its locks until the server finds the connection dead:
	// by keepalives, within about 25 s instead of the system's hours.
	rp := lc.ConnConfig.RuntimeParams
	rp["tcp_keepalives_idle"], rp["tcp_keepalives_interval"], rp["tcp_keepalives_count"] = "10", "5", "3"
	return pgxpool.NewWithConfig(context.Background(), lc)
}

// Lock takes the session advisory locks of keys on one connection of the
// lock pool, all of them or none, held until unlock (which may be called
// more than once): one round trip when no other session holds any of them,
// and one more for the unlock. A lock another session holds is waited for
// in steps of lock_timeout, up to Options.KeyLockWait in all. Waits take
// the keys in the order of their lock objects, so that two holders of
// several keys never wait for each other in a ring. The locks end with
// their session: a connection lost while they are held frees them for
// others.
func (s *Store) Lock(keys ...[]byte) (unlock func(), err error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.KeyLockWait)
	defer cancel()
	objs := lockObjs(keys)
	conn, err := s.lockPool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("pgkv: key lock: %w", mapErr(err))
	}
	var got []bool
	s.roundTrips.Add(1)
	err = conn.QueryRow(ctx, "SELECT array_agg(pg_try_advisory_lock($1, o) ORDER BY n) FROM unnest($2::int[]) WITH ORDINALITY AS k(o, n)",
		keyLockClass, objs).Scan(&got)
	if err == nil && slices.Contains(got, false) {
		s.lockWaits.Add(1)
		err = s.waitLocks(ctx, conn, objs, got)
	}
	if err != nil {
		// A lock may have been granted as the statement was cut off:
		// only the end of the session surely frees it.
		conn.Conn().Close(context.Background())
		conn.Release()
		return nil, fmt.Errorf("pgkv: key lock: %w", mapErr(err))
	}
	var once sync.Once
	return func() { once.Do(func() { s.unlockKeys(conn, objs) }) }, nil
}

// lockObjs are the lock objects of keys, sorted, each once.
func lockObjs(keys [][]byte) []int32 {
	objs := make([]int32, 0, len(keys))
	for _, k := range keys {
		objs = append(objs, lockObj(k))
	}
	slices.Sort(objs)
	return slices.Compact(objs)
}

// waitLocks takes the locks of objs after a first try got only some of
// them (got[i]): those past the first it missed are let go, so that what
// it holds while it waits is always a prefix of objs, and the rest are
// waited for in order: each wait ends after lock_timeout with 55P03, the
// lock not taken, and is asked again until ctx ends.
func (s *Store) waitLocks(ctx context.Context, conn *pgxpool.Conn, objs []int32, got []bool) error {
	if len(got) != len(objs) {
		return fmt.Errorf("%w: %d answers to %d locks", backend.ErrCorrupt, len(got), len(objs))
	}
	first := slices.Index(got, false)
	var held []int32
	for i := first + 1; i < len(objs); i++ {
		if got[i] {
			held, got[i] = append(held, objs[i]), false
		}
	}
	if len(held) > 0 {
		s.roundTrips.Add(1)
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1, o) FROM unnest($2::int[]) AS k(o)", keyLockClass, held); err != nil {
			return err
		}
	}
	for i, obj := range objs {
		for !got[i] {
			s.roundTrips.Add(1)
			_, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", keyLockClass, obj)
			var pe *pgconn.PgError
			if err == nil {
				got[i] = true
			} else if !errors.As(err, &pe) || pe.Code != "55P03" || ctx.Err() != nil {
				return err
			}
		}
	}
	return nil
}

// unlockKeys releases key locks. A connection whose unlock failed is
// closed, not returned to the pool, so that no idle connection keeps a
// lock.
func (s *Store) unlockKeys(conn *pgxpool.Conn, objs []int32) {
	ctx, cancel := s.statementContext()
	defer cancel()
	s.roundTrips.Add(1)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1, o) FROM unnest($2::int[]) AS k(o)", keyLockClass, objs); err != nil {
		conn.Conn().Close(context.Background())
	}
	conn.Release()
}

// defaultKeyLockWait bounds the wait for a key lock: holders keep one for
// a promotion and a transaction, far less than this.
const defaultKeyLockWait = 30 * time.Second
