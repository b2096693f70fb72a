package pgkv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/kvreg/kvreg/kv/backend"
)

// Advisory lock keys of kvreg in a database (one namespace per database).
const (
	migrateLockKey int64 = 0x6b767265670001 // held while migrating the schema
	writerLockKey  int64 = 0x6b767265670002 // held by an exclusive store for its lifetime, shared by replicas
	foldLockKey    int64 = 0x6b767265670003 // held by the transaction folding counters
)

// Options tune Open; zero values mean the defaults given.
type Options struct {
	// Exclusive holds the database's write lock for the store's lifetime:
	// Open fails with backend.ErrLocked while another process holds it.
	Exclusive bool
	// Replica holds the write lock in shared mode instead: stores opened
	// so write side by side, and Open fails with backend.ErrLocked while
	// an Exclusive store holds the lock (and an Exclusive Open fails while
	// a Replica store does), so that a process that keeps what it needs
	// in memory never writes beside others.
	Replica bool
	// LockTimeout and StatementTimeout are the connections' lock_timeout
	// (2 s) and statement_timeout (5 s).
	LockTimeout, StatementTimeout time.Duration
	// LockWait bounds an Update's wait for a row lock (200 ms): beyond
	// it the transaction is rerun, as after a serialization failure.
	// PostgreSQL detects deadlocks only after deadlock_timeout (1 s by
	// default), and at SERIALIZABLE a writer that waited for a row
	// usually fails once the holder commits.
	LockWait time.Duration
	// ConnectTimeout bounds a connection attempt (3 s).
	ConnectTimeout time.Duration
	// MaxConns is the pool's size (pgx's default when zero).
	MaxConns int32
	// MaxAttempts bounds the runs of an Update's closure that end in a
	// serialization failure or deadlock (30: with the backoff between
	// runs, about 3 s of contention); then backend.ErrConflict.
	MaxAttempts int
	// LockCheck is how often an exclusive store checks the connection
	// that holds its write lock, and retries taking a lost lock (1 s).
	LockCheck time.Duration
	// LockConns is the size of the pool of connections that hold key
	// locks (Lock), apart from the transactions' (16); KeyLockWait bounds
	// the wait for one key lock (30 s).
	LockConns   int32
	KeyLockWait time.Duration
	// FoldEvery is how many counter Adds commit between two folds of the
	// deltas into the base rows (256).
	FoldEvery int
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.LockTimeout, 2*time.Second)
	def(&o.StatementTimeout, 5*time.Second)
	def(&o.ConnectTimeout, 3*time.Second)
	def(&o.LockWait, 200*time.Millisecond)
	def(&o.LockCheck, time.Second)
	def(&o.KeyLockWait, defaultKeyLockWait)
	if o.LockConns <= 0 {
		o.LockConns = 16
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 30
	}
	if o.FoldEvery <= 0 {
		o.FoldEvery = 256
	}
}

// Store is an open PostgreSQL database.
type Store struct {
	pool     *pgxpool.Pool
	lockPool *pgxpool.Pool // connections holding key locks; see Lock
	o        Options
	lock     *writeLock // nil unless Exclusive

	lockWait string       // SET LOCAL lock_timeout of an Update
	gate     sync.RWMutex // held exclusively by an Update's reruns

	roundTrips, retries atomic.Uint64
	updates, gaveUp     atomic.Uint64
	lockWaits           atomic.Uint64
	adds                atomic.Int64 // Adds committed since the last fold
	foldc               chan struct{}
	done                chan struct{}
	wg                  sync.WaitGroup
	closeOnce           sync.Once
}

var _ backend.Store = (*Store)(nil)
var _ backend.Sizer = (*Store)(nil)
var _ backend.StatsReporter = (*Store)(nil)

// Open connects to the database at url (postgres://...), migrates its
// schema and, with o.Exclusive, takes its write lock.
func Open(url string, o Options) (*Store, error) {
	o.defaults()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgkv: %w", err)
	}
	cc := cfg.ConnConfig
	if cc.ConnectTimeout <= 0 || cc.ConnectTimeout > o.ConnectTimeout {
		cc.ConnectTimeout = o.ConnectTimeout
	}
	cc.RuntimeParams["lock_timeout"] = strconv.FormatInt(o.LockTimeout.Milliseconds(), 10)
	cc.RuntimeParams["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "kvreg"
	}
	// Every statement kvreg sends looks rows up by their primary key, so
	// one plan per statement and connection serves every execution.
	// Left to choose, the server plans a batch read afresh each time (a
	// generic plan guesses more rows in the batch than a custom one sees,
	// so it never looks cheaper), which cost as much as running it.
	if cc.RuntimeParams["plan_cache_mode"] == "" {
		cc.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	// Idle connections cut by a restart are found and dropped between
	// requests (pgxpool also pings one idle for over a second before
	// handing it out).
	cfg.HealthCheckPeriod = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), o.ConnectTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgkv: %w", err)
	}
	s := &Store{pool: pool, o: o, lockWait: fmt.Sprintf("SET LOCAL lock_timeout = %d", o.LockWait.Milliseconds()), foldc: make(chan struct{}, 1), done: make(chan struct{})}
	if err := s.migrate(); err != nil {
		pool.Close()
		return nil, err
	}
	if s.lockPool, err = newLockPool(cfg, o.LockConns); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgkv: %w", err)
	}
	if o.Exclusive || o.Replica {
		l, err := takeWriteLock(cc.Copy(), o.Replica, o.LockCheck, s.statementContext)
		if err != nil {
			s.lockPool.Close()
			pool.Close()
			return nil, err
		}
		s.lock = l
	}
	s.wg.Add(1)
	go s.folder()
	return s, nil
}

// Close stops the fold job, releases the write lock and closes the pool.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.wg.Wait()
		if s.lock != nil {
			s.lock.close()
		}
		s.lockPool.Close()
		s.pool.Close()
	})
	return nil
}

// Size is the size of the database in bytes.
func (s *Store) Size() (int64, error) {
	ctx, cancel := s.statementContext()
	defer cancel()
	var n int64
	s.roundTrips.Add(1)
	if err := s.pool.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n); err != nil {
		return 0, mapErr(err)
	}
	return n, nil
}

// statementContext bounds one statement on the client's side too: the
// server's statement_timeout cannot fire when the server is unreachable.
func (s *Store) statementContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.o.StatementTimeout+s.o.ConnectTimeout)
}

// HoldsWriteLock reports whether an exclusive or replica store holds the
// database's write lock now (always true for a store opened without).
func (s *Store) HoldsWriteLock() bool { return s.lock == nil || s.lock.held.Load() }

// Ready: an exclusive or replica store takes writes only while it holds
// the lock.
func (s *Store) Ready() error {
	if !s.HoldsWriteLock() {
		s.lock.wakeUp() // a health check asks: try again now, not at the next tick
		return fmt.Errorf("%w: %w", backend.ErrUnavailable, errNoWriteLock)
	}
	return nil
}

var _ backend.Readier = (*Store)(nil)

var errNoWriteLock = errors.New("this process does not hold the database's write lock (its connection was lost; retaking it)")

// TxStats are Stats with the Updates asked for and those given up after
// their last rerun, for the registry's metrics.
func (s *Store) TxStats() backend.TxStats {
	return backend.TxStats{
		Updates:    s.updates.Load(),
		RoundTrips: s.roundTrips.Load(),
		Retries:    s.retries.Load(),
		GaveUp:     s.gaveUp.Load(),
		LockWaits:  s.lockWaits.Load(),
	}
}
