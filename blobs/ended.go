package blobs

import "sync"

// endedCap bounds the uploads an endedUploads remembers.
const endedCap = 4096

// endedUploads are the uploads this process saw end (committed, cancelled,
// found gone), the last endedCap of them: a deferred upload's token
// (driver.Deferrer) says only that the upload was started, and once its
// record is gone a request that sends the token again would find it
// started and empty. Remembered, it is unknown instead, as an upload of
// any other driver is; another process that did not see it end, or this
// one after endedCap more ended, still takes it for a new, empty upload
// (what nothing is lost by: its client sent a URL of the upload after
// the upload was over).
type endedUploads struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	ring []string
	next int
}

func (e *endedUploads) add(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ids == nil {
		e.ids = make(map[string]struct{})
		e.ring = make([]string, endedCap)
	}
	if _, ok := e.ids[id]; ok {
		return
	}
	if old := e.ring[e.next]; old != "" {
		delete(e.ids, old)
	}
	e.ring[e.next] = id
	e.ids[id] = struct{}{}
	e.next = (e.next + 1) % endedCap
}

func (e *endedUploads) has(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.ids[id]
	return ok
}
