package api

import (
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/kvreg/kvreg/refcount"
	"github.com/opencontainers/go-digest"
)

// notePull records a manifest GET for retention's keep-pulled-within
// (refcount writes at most one row per manifest an hour, and nothing for a
// repository whose rule does not need it). A failure loses one pull's
// record, not the pull.
func (s *Server) notePull(repo string, d digest.Digest) {
	if err := s.reg.TouchCached(repo, d, s.reg.Clock()); err != nil {
		s.cfg.Logger.Warn("recording a pull for retention", "repo", repo, "digest", d, "err", err)
	}
}

// RetentionSweep applies the retention rules at now (refcount's
// RetentionSweep), counting the bytes it frees in the server's metrics.
func (s *Server) RetentionSweep(now time.Time) (*refcount.RetentionReport, error) {
	rep, err := s.reg.RetentionSweep(now)
	if rep != nil {
		s.metrics.reclaimed.Add(float64(rep.ReclaimedBytes))
	}
	return rep, err
}

// retentionPlan answers what retention would remove now and the bytes it
// would free, changing nothing.
func (a *admin) retentionPlan(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	rep, err := a.reg.RetentionPlan()
	adminReply(w, rep, err)
}
