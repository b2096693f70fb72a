package events

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/kvreg/kvreg/refcount"
)

// Worker delivers one endpoint's rows, oldest first, one at a time.
type Worker struct {
	ep    Endpoint
	reg   *refcount.Registry
	opts  *Options
	count *counts
	wake  chan struct{}

	renewAt time.Time // when the claim is next renewed; zero: not held
}

// Step does one unit of delivery and says how long to wait before the
// next: it takes or renews the endpoint's claim when due (without it, it
// waits a third of a claim's lifetime and asks again), then delivers the
// oldest row if its time has come. A wait of 0 means go on at once.
func (w *Worker) Step(ctx context.Context) (time.Duration, error) {
	now := w.opts.Now()
	third := w.opts.ClaimTTL / 3
	if w.renewAt.IsZero() || !now.Before(w.renewAt) {
		held, err := w.reg.ClaimEvents(w.ep.Name, w.opts.Owner, now, now.Add(w.opts.ClaimTTL))
		if err != nil {
			w.renewAt = time.Time{}
			return third, err
		}
		if !held {
			w.renewAt = time.Time{}
			return third, nil
		}
		w.renewAt = now.Add(third)
	}
	// The claim is read again with the row: it must outlast the delivery,
	// or another replica may be delivering the same rows.
	e, ok, held, err := w.reg.OldestEventHeld(w.ep.Name, w.opts.Owner, now.Add(w.ep.Timeout))
	if err != nil {
		return w.opts.Poll, err
	}
	if !held {
		w.renewAt = time.Time{}
		return 0, nil
	}
	if !ok {
		return min(w.opts.Poll, w.renewAt.Sub(now)), nil
	}
	if e.Next.After(now) {
		return min(e.Next.Sub(now), w.renewAt.Sub(now)), nil
	}
	if derr := w.deliver(ctx, e.Event); derr != nil {
		attempts := e.Attempts + 1
		wait := w.opts.backoff(attempts)
		w.count.failed(w.ep.Name)
		if err := w.reg.EventFailed(w.ep.Name, e.Seq, attempts, derr.Error(), now.Add(wait)); err != nil {
			return wait, err
		}
		w.opts.Logger.Warn("event delivery failed", "endpoint", w.ep.Name, "id", e.Event.ID, "attempts", attempts, "retry_in", wait, "error", derr)
		return min(wait, w.renewAt.Sub(now)), nil
	}
	if err := w.reg.EventDelivered(w.ep.Name, e.Seq); err != nil {
		return w.opts.Poll, err
	}
	w.count.delivered(w.ep.Name)
	return 0, nil
}

// deliver POSTs one event; an answer other than 2xx is an error.
func (w *Worker) deliver(ctx context.Context, e refcount.Event) error {
	body, ct, err := render(w.ep.Format, e, w.opts.Source)
	if err != nil || body == nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, w.ep.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.ep.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ct)
	if len(w.ep.Secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(w.ep.Secret, body))
	}
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// Release gives the endpoint's claim up, so that another replica takes
// over at once.
func (w *Worker) Release() error {
	if w.renewAt.IsZero() {
		return nil
	}
	w.renewAt = time.Time{}
	return w.reg.ReleaseEvents(w.ep.Name, w.opts.Owner)
}

// run steps until ctx ends, waiting between steps on the injected timer
// or until woken by a commit of this process that wrote rows.
func (w *Worker) run(ctx context.Context) {
	defer w.Release()
	for {
		wait, err := w.Step(ctx)
		if err != nil {
			w.opts.Logger.Warn("event delivery", "endpoint", w.ep.Name, "error", err)
			if wait <= 0 {
				wait = time.Second
			}
		}
		if ctx.Err() != nil {
			return
		}
		if wait <= 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-w.opts.After(wait):
		}
	}
}
