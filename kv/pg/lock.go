package pgkv

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kvreg/kvreg/kv/backend"
)

// writeLock is the session advisory lock of an exclusive store (or, taken
// shared, of a replica store), held on a connection of its own for the
// store's lifetime. A session lock dies
// with its connection, so a watcher checks the connection and, once it is
// lost, takes the lock again when the database is back (if no other
// process took it meanwhile).
type writeLock struct {
	cfg    *pgx.ConnConfig
	shared bool
	check  time.Duration
	ctx    func() (context.Context, context.CancelFunc)

	held atomic.Bool
	conn *pgx.Conn // owned by the watcher once started
	wake chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

func takeWriteLock(cfg *pgx.ConnConfig, shared bool, check time.Duration, ctx func() (context.Context, context.CancelFunc)) (*writeLock, error) {
	l := &writeLock{cfg: cfg, shared: shared, check: check, ctx: ctx, wake: make(chan struct{}, 1), done: make(chan struct{})}
	conn, ok, err := l.try()
	if err != nil {
		return nil, fmt.Errorf("pgkv: taking the write lock of database %q: %w", cfg.Database, err)
	}
	if !ok && shared {
		return nil, fmt.Errorf("%w: a kvreg process that is not a replica holds the write lock of database %q on %s (replicas write beside each other, never beside a kvreg serve without --replicas)", backend.ErrLocked, cfg.Database, cfg.Host)
	}
	if !ok {
		return nil, fmt.Errorf("%w: another kvreg process holds the write lock of database %q on %s (only one kvreg serve may write to a database at a time, unless every one is a replica)", backend.ErrLocked, cfg.Database, cfg.Host)
	}
	l.conn = conn
	l.held.Store(true)
	l.wg.Add(1)
	go l.watch()
	return l, nil
}

// try connects and tries the lock once; the connection is returned only
// when the lock was taken.
func (l *writeLock) try() (*pgx.Conn, bool, error) {
	ctx, cancel := l.ctx()
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, l.cfg.Copy())
	if err != nil {
		return nil, false, mapErr(err)
	}
	q := "SELECT pg_try_advisory_lock($1)"
	if l.shared {
		q = "SELECT pg_try_advisory_lock_shared($1)"
	}
	var ok bool
	if err := conn.QueryRow(ctx, q, writerLockKey).Scan(&ok); err != nil || !ok {
		conn.Close(ctx)
		return nil, false, mapErr(err)
	}
	return conn, true, nil
}

func (l *writeLock) watch() {
	defer l.wg.Done()
	t := time.NewTicker(l.check)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
		case <-l.wake:
		}
		if l.conn != nil {
			ctx, cancel := l.ctx()
			err := l.conn.Ping(ctx)
			cancel()
			if err == nil {
				continue
			}
			l.held.Store(false)
			l.conn.Close(context.Background())
			l.conn = nil
		}
		if conn, ok, _ := l.try(); ok {
			l.conn = conn
			l.held.Store(true)
		}
	}
}

// wakeUp has the watcher check the connection now.
func (l *writeLock) wakeUp() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *writeLock) close() {
	close(l.done)
	l.wg.Wait()
	l.held.Store(false)
	if l.conn != nil {
		ctx, cancel := l.ctx()
		defer cancel()
		l.conn.Close(ctx) // ends the session and with it the lock
	}
}
