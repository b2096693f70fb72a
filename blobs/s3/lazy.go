package s3

import (
	"sync"
	"sync/atomic"
)

// lazy is a value the driver learns from the bucket once per process (the
// bucket's URL, whether it honours conditional writes, the key of upload
// tokens): by the first call of get whose fn succeeds. A failure (the
// server unreachable) is not kept: the next call tries again. Once
// learnt, the value is read with no lock.
type lazy[T any] struct {
	mu sync.Mutex
	v  atomic.Pointer[T]
}

func (l *lazy[T]) get(fn func() (T, error)) (T, error) {
	if p := l.v.Load(); p != nil {
		return *p, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.v.Load(); p != nil {
		return *p, nil
	}
	v, err := fn()
	if err != nil {
		var zero T
		return zero, err
	}
	l.v.Store(&v)
	return v, nil
}
