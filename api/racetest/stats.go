package racetest

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Stats counts the answers of a race by operation and status, and keeps
// every 5xx answer and transport error. Clients on any goroutine share one.
type Stats struct {
	mu     sync.Mutex
	counts map[string]map[int]int
	sent   int
	bad    []string
}

// Add counts one answer of op (status 0: the request failed); what
// describes it for the failures.
func (s *Stats) Add(op string, status int, what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = map[string]map[int]int{}
	}
	if s.counts[op] == nil {
		s.counts[op] = map[int]int{}
	}
	s.counts[op][status]++
	s.sent++
	if status >= 500 || status == 0 {
		s.bad = append(s.bad, what)
	}
}

// Failures are the 5xx answers and transport errors, in order.
func (s *Stats) Failures() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bad...)
}

// Report is "N requests, M 5xx or transport errors" and a line per
// operation with its statuses and counts, sorted.
func (s *Stats) Report() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ops []string
	for op := range s.counts {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests, %d 5xx or transport errors", s.sent, len(s.bad))
	for _, op := range ops {
		var sts []int
		for st := range s.counts[op] {
			sts = append(sts, st)
		}
		sort.Ints(sts)
		fmt.Fprintf(&b, "\n  %-22s", op)
		for _, st := range sts {
			fmt.Fprintf(&b, " %d×%d", st, s.counts[op][st])
		}
	}
	return b.String()
}
