package local

import "sync"

// dirSyncer shares directory fsyncs between concurrent commits: a caller
// waits for one fsync that started after it asked, and one fsync serves
// every caller that asked before it started.
type dirSyncer struct {
	mu      sync.Mutex
	cond    *sync.Cond
	started uint64
	done    uint64
	running bool
	err     error
}

func newDirSyncer() *dirSyncer {
	s := &dirSyncer{}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *dirSyncer) sync(dir string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	target := s.started + 1
	for s.done < target {
		if s.running {
			s.cond.Wait()
			continue
		}
		s.running = true
		s.started++
		n := s.started
		s.mu.Unlock()
		err := syncDir(dir)
		s.mu.Lock()
		s.running, s.done, s.err = false, n, err
		s.cond.Broadcast()
	}
	return s.err
}
