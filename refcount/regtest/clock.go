package regtest

import (
	"sync"
	"time"
)

// Start is where every test clock begins: a fixed instant, so that lease
// expiries and logs read the same in every run.
var Start = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// Clock is a clock that moves only when a test moves it. It is safe for
// concurrent use: requests read it while the test advances it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock standing at Start.
func NewClock() *Clock { return &Clock{now: Start} }

// Now is the registry's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}
