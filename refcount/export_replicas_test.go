package refcount

import "github.com/opencontainers/go-digest"

// SetRecordHook has every commit call fn between the promotion of its
// blob and the record of it, holding the digest's lock, so that a test can
// hold a commit there while another registry works on the same digest.
func (r *Registry) SetRecordHook(fn func(d digest.Digest)) { r.recordHook = fn }
