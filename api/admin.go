package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/api/authstore"
	"github.com/kvreg/kvreg/refcount"
)

// AdminSocket is the name of the operator socket in the data directory.
// `kvreg fsck|stats|ls|rm|token` reach a running server through it, since only
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

// admin answers the operator socket's routes (newAdminRouter).
type admin struct {
	reg       *refcount.Registry
	reclaimed func(int64)      // bytes rm and repair freed
	newKey    authstore.NewKey // makes a token signing key for rotate-key
}

func newAdmin(reg *refcount.Registry, reclaimed func(int64)) http.Handler {
	return newAdminRouter(&admin{reg: reg, reclaimed: reclaimed, newKey: authstore.NewSigningKey})
}

// fsck answers the findings as one list, or with pending=1 split into
// damage and pending work (refcount.CheckReport).
func (a *admin) fsck(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	grace, _ := time.ParseDuration(r.URL.Query().Get("orphan-grace"))
	deep := r.URL.Query().Get("deep") == "1"
	if r.URL.Query().Get("pending") == "1" {
		rep, err := a.reg.Fsck(deep, grace)
		adminReply(w, rep, err)
		return
	}
	probs, err := a.reg.CheckGrace(deep, grace)
	if probs == nil {
		probs = []refcount.Problem{}
	}
	adminReply(w, probs, err)
}

func (a *admin) repair(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	q := r.URL.Query()
	grace, _ := time.ParseDuration(q.Get("orphan-grace"))
	rep, err := a.reg.RepairGrace(q.Get("deep") == "1", q.Get("remove-broken") == "1", grace)
	if err == nil {
		a.reclaimed(rep.ReclaimedBytes)
	}
	adminReply(w, rep, err)
}

func (a *admin) stats(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	top, _ := strconv.Atoi(r.URL.Query().Get("top"))
	rep, err := a.reg.Stats(top)
	adminReply(w, rep, err)
}

func (a *admin) ls(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	rep, err := a.reg.List(r.URL.Query().Get("repo"))
	adminReply(w, rep, err)
}

// rm deletes a target, or with dry-run=1 answers what the delete would
// remove and reclaim, changing nothing.
func (a *admin) rm(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	target := r.URL.Query().Get("target")
	if r.URL.Query().Get("dry-run") == "1" {
		rep, err := a.reg.RemovePlan(target)
		adminReply(w, rep, err)
		return
	}
	rep, err := a.reg.Remove(target)
	if err == nil {
		a.reclaimed(rep.ReclaimedBytes + rep.SweptBytes)
	}
	adminReply(w, rep, err)
}

// tokenCreate makes a robot account; the answer holds its secret, which
// the socket's caller shows once.
func (a *admin) tokenCreate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	q := r.URL.Query()
	spec, err := authstore.ParseRobotSpec(q.Get("name"), q.Get("repos"), q.Get("actions"), q.Get("expires"))
	if err != nil {
		adminReply(w, nil, err)
		return
	}
	rep, err := authstore.CreateRobot(a.reg.DB(), spec, a.reg.Clock())
	adminReply(w, rep, err)
}

func (a *admin) tokenList(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	rep, err := authstore.Robots(a.reg.DB())
	adminReply(w, rep, err)
}

func (a *admin) tokenRevoke(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	rep, err := authstore.RevokeRobot(a.reg.DB(), r.URL.Query().Get("name"), a.reg.Clock())
	adminReply(w, rep, err)
}

func (a *admin) tokenRotateKey(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	rep, err := authstore.RotateKey(a.reg.DB(), a.newKey, a.reg.Clock())
	adminReply(w, rep, err)
}

func adminReply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		status := http.StatusInternalServerError
		if ae, ok := classify(err); ok {
			status = table[ae.kind].status
		} else if errors.Is(err, refcount.ErrNameUnknown) || errors.Is(err, authstore.ErrRobotUnknown) {
			status = http.StatusNotFound
		} else if errors.Is(err, auth.ErrRobot) {
			status = http.StatusBadRequest
		} else if errors.Is(err, authstore.ErrRobotExists) {
			status = http.StatusConflict
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}
