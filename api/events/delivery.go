package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/kvreg/kvreg/refcount"
)

// Options shape the delivery.
type Options struct {
	// Owner names this process in claims; unique per process (a new one
	// when empty: host, pid and random bytes). A process that is the only
	// one by other means (the database's write lock) may use a fixed
	// name, so that after a crash it takes its own claim back at once.
	Owner  string
	Source Source // the Source of the events it sends (InstanceID: Owner when empty)
	// Now and After are the clock and the timer; time.Now and time.After
	// when nil. Tests inject both.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Client sends the requests; a client without a timeout of its own
	// when nil (each endpoint's timeout bounds a request).
	Client *http.Client
	// ClaimTTL is how long a claim lasts without renewal: how soon another
	// replica resumes a dead one's endpoint (30s when zero; raised to three
	// times the longest endpoint timeout).
	ClaimTTL time.Duration
	// Poll is how often a worker with nothing to do looks for rows that
	// other replicas wrote (5s when zero); this process's own commits wake
	// it at once.
	Poll time.Duration
	// BackoffMin and BackoffMax bound the wait after a failed attempt: the
	// first waits BackoffMin, each next one twice the last, up to
	// BackoffMax (1s and 5m when zero).
	BackoffMin, BackoffMax time.Duration
	Logger                 *slog.Logger
}

// backoff is the wait after the attempts-th failure in a row.
func (o *Options) backoff(attempts int) time.Duration {
	d := o.BackoffMin
	for i := 1; i < attempts && d < o.BackoffMax; i++ {
		d *= 2
	}
	return min(d, o.BackoffMax)
}

// ProcessID names this process: host, pid and random bytes.
func ProcessID() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Delivery is every endpoint's worker over one registry.
type Delivery struct {
	reg     *refcount.Registry
	opts    Options
	workers []*Worker
	count   *counts
}

// New makes the workers of validated endpoints (Endpoint.Validate). They
// deliver once Run runs, or step by step through Worker (tests).
func New(reg *refcount.Registry, eps []Endpoint, o Options) (*Delivery, error) {
	if o.Owner == "" {
		o.Owner = ProcessID()
	}
	if o.Source.InstanceID == "" {
		o.Source.InstanceID = o.Owner
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.ClaimTTL <= 0 {
		o.ClaimTTL = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 5 * time.Minute
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = o.BackoffMin
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Delivery{reg: reg, count: newCounts()}
	for i := range eps {
		if err := eps[i].Validate(); err != nil {
			return nil, err
		}
		o.ClaimTTL = max(o.ClaimTTL, 3*eps[i].Timeout)
	}
	if _, err := Refcount(eps); err != nil {
		return nil, err
	}
	d.opts = o
	for _, ep := range eps {
		d.workers = append(d.workers, &Worker{ep: ep, reg: reg, opts: &d.opts, count: d.count, wake: make(chan struct{}, 1)})
	}
	return d, nil
}

// Worker is the worker of an endpoint (nil: none of that name).
func (d *Delivery) Worker(name string) *Worker {
	for _, w := range d.workers {
		if w.ep.Name == name {
			return w
		}
	}
	return nil
}

// Run delivers until ctx ends: a goroutine per endpoint, woken by this
// process's commits that wrote rows. It returns once every worker has
// stopped and given its claim up.
func (d *Delivery) Run(ctx context.Context) {
	d.reg.OnEvents(d.Wake)
	var wg sync.WaitGroup
	for _, w := range d.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx)
		}()
	}
	wg.Wait()
}

// Wake has every worker look for rows now.
func (d *Delivery) Wake() {
	for _, w := range d.workers {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}
