package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Receiver is an events endpoint on loopback for kvreg's deliveries. It
// keeps each POST it accepts, in arrival order; it can refuse them with a
// status of the test's choosing (kvreg keeps the events and sends them
// again), and go down (its port closed: connections refused) and come
// back up on the same port.
type Receiver struct {
	addr   string
	mu     sync.Mutex
	refuse int
	got    []Delivery
	srv    *http.Server
}

// Delivery is one POST the receiver accepted.
type Delivery struct {
	Header http.Header
	Body   []byte
}

// NewReceiver starts a receiver on a free loopback port. Stop it with
// Down.
func NewReceiver() (*Receiver, error) {
	r := &Receiver{}
	return r, r.Up()
}

// Addr is the receiver's host:port, the same across Down and Up.
func (r *Receiver) Addr() string { return r.addr }

// URL is http://Addr.
func (r *Receiver) URL() string { return "http://" + r.addr }

// Up listens again, on the port it had; a no-op while it is up.
func (r *Receiver) Up() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		return nil
	}
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("receiver on %s: %w", addr, err)
	}
	r.addr = ln.Addr().String()
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve)}
	go r.srv.Serve(ln)
	return nil
}

// Down closes the port, letting a delivery in flight finish.
func (r *Receiver) Down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
}

// Refuse answers every POST from now on with status, keeping nothing; 0
// accepts them again.
func (r *Receiver) Refuse(status int) {
	r.mu.Lock()
	r.refuse = status
	r.mu.Unlock()
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	r.mu.Lock()
	refuse := r.refuse
	if err == nil && refuse == 0 {
		r.got = append(r.got, Delivery{Header: req.Header.Clone(), Body: body})
	}
	r.mu.Unlock()
	switch {
	case err != nil:
		w.WriteHeader(http.StatusBadRequest)
	case refuse != 0:
		w.WriteHeader(refuse)
	}
}

// Deliveries are the POSTs accepted so far.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.got...)
}

// Wait polls until enough says the deliveries so far are, and returns
// them, or fails after limit with those that came.
func (r *Receiver) Wait(limit time.Duration, enough func([]Delivery) bool) ([]Delivery, error) {
	deadline := time.Now().Add(limit)
	for {
		got := r.Deliveries()
		if enough(got) {
			return got, nil
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("%d deliveries within %v, not enough", len(got), limit)
		}
		time.Sleep(50 * time.Millisecond) // kvreg delivers from its own process
	}
}

// AtLeast is a Wait condition: n deliveries.
func AtLeast(n int) func([]Delivery) bool {
	return func(ds []Delivery) bool { return len(ds) >= n }
}
