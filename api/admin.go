package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/kvreg/kvreg/refcount"
)

// AdminSocket is the name of the operator socket in the data directory.
// `kvreg fsck|stats|ls|rm` reach a running server through it, since only
// one process may hold the database open for writing.
const AdminSocket = "kvreg.sock"

// NewAdmin returns the operator API served on the admin socket. Every
// route answers JSON: the report, or {"error": "..."}.
func NewAdmin(reg *refcount.Registry) http.Handler { return newAdmin(reg, func(int64) {}) }

// Admin is NewAdmin for the server's registry, whose rm and repair count
// the bytes they reclaim in the server's metrics.
func (s *Server) Admin() http.Handler {
	return newAdmin(s.reg, func(n int64) { s.metrics.reclaimed.Add(float64(n)) })
}

func newAdmin(reg *refcount.Registry, reclaimed func(int64)) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/fsck", func(w http.ResponseWriter, r *http.Request) {
		probs, err := reg.Check(r.URL.Query().Get("deep") == "1")
		if probs == nil {
			probs = []refcount.Problem{}
		}
		adminReply(w, probs, err)
	})
	mux.HandleFunc("POST /v1/repair", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		rep, err := reg.Repair(q.Get("deep") == "1", q.Get("remove-broken") == "1")
		if err == nil {
			reclaimed(rep.ReclaimedBytes)
		}
		adminReply(w, rep, err)
	})
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		top, _ := strconv.Atoi(r.URL.Query().Get("top"))
		rep, err := reg.Stats(top)
		adminReply(w, rep, err)
	})
	mux.HandleFunc("GET /v1/ls", func(w http.ResponseWriter, r *http.Request) {
		rep, err := reg.List(r.URL.Query().Get("repo"))
		adminReply(w, rep, err)
	})
	mux.HandleFunc("POST /v1/rm", func(w http.ResponseWriter, r *http.Request) {
		rep, err := reg.Remove(r.URL.Query().Get("target"))
		if err == nil {
			reclaimed(rep.ReclaimedBytes)
		}
		adminReply(w, rep, err)
	})
	return mux
}

func adminReply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		status := http.StatusInternalServerError
		if ae, ok := classify(err); ok {
			status = table[ae.kind].status
		} else if errors.Is(err, refcount.ErrNameUnknown) {
			status = http.StatusNotFound
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}
