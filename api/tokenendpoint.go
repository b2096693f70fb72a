package api

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/api/auth/token"
)

// The token endpoint (/token, the realm of the Bearer challenge) speaks
// the Docker registry token spec: GET with optional Basic credentials,
// repeated scope, service, offline_token and account; and its OAuth2 form,
// POST with grant_type=password (username, password, access_type=offline)
// or grant_type=refresh_token. A token grants the scope asked for,
// narrowed to what the caller may do: the access rules for users and
// anonymous callers, a robot's own grant (plus what anonymous callers may
// do, which logging in never takes away).

// maxTokenForm bounds the body of a POST to /token.
const maxTokenForm = 64 << 10

// tokenResponse is the JSON answer: token and access_token are the same,
// for clients of the original spec and of its OAuth2 form.
type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// subject is who asks for a token.
type subject struct {
	name  string
	kind  string       // "user", "robot" or "anonymous": the metrics' caller label
	robot *auth.Access // a robot's grant as a rule
}

// tokenRefusal is a refusal at /token: its metric reason and the answer.
type tokenRefusal struct {
	reason string
	err    *Error
	cause  error // logged
}

func (e *tokenRefusal) Error() string { return e.reason + ": " + e.err.message }

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	ri := info(r)
	ri.route = "token"
	err := s.tokenRequest(w, r)
	if err == nil {
		return
	}
	var tr *tokenRefusal
	if errors.As(err, &tr) {
		s.tokenRefused(r, tr.reason, tr.cause)
		writeError(w, r, tr.err)
		return
	}
	if ae, ok := classify(err); ok {
		writeError(w, r, ae)
		return
	}
	s.cfg.Logger.Error("request failed", "id", ri.id, "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, r, apiErr(kInternal, "internal error (request %s)", ri.id))
}

func badTokenRequest(reason, format string, args ...any) *tokenRefusal {
	return &tokenRefusal{reason: reason, err: apiErr(kBadRequest, format, args...)}
}

// credentialsRefused is a 401 with a Basic challenge: the token endpoint
// takes Basic credentials.
func credentialsRefused(reason string, cause error, format string, args ...any) *tokenRefusal {
	return &tokenRefusal{reason: reason, err: unauthorized(format, args...), cause: cause}
}

func (s *Server) tokenRequest(w http.ResponseWriter, r *http.Request) error {
	var (
		params       map[string][]string
		offline      bool
		sub          subject
		refreshGrant bool
	)
	sub.kind = "anonymous"
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		params = q
		offline = q.Get("offline_token") == "true"
		if r.Header.Get("Authorization") != "" {
			user, pass, ok := r.BasicAuth()
			if !ok {
				return credentialsRefused("credentials", nil, "the token endpoint takes HTTP Basic credentials")
			}
			var err error
			if sub, err = s.login(r, user, pass); err != nil {
				return err
			}
			if acc := q.Get("account"); acc != "" && acc != sub.name {
				return credentialsRefused("account", nil, "account %q is not the user of the credentials", acc)
			}
		}
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
		if err := r.ParseForm(); err != nil {
			return badTokenRequest("form", "reading the form: %v", err)
		}
		params = r.PostForm
		switch gt := r.PostForm.Get("grant_type"); gt {
		case "password":
			var err error
			if sub, err = s.login(r, r.PostForm.Get("username"), r.PostForm.Get("password")); err != nil {
				return err
			}
			offline = r.PostForm.Get("access_type") == "offline"
		case "refresh_token":
			var err error
			if sub, err = s.refreshSubject(r.PostForm.Get("refresh_token")); err != nil {
				return err
			}
			refreshGrant = true
		default:
			return badTokenRequest("grant_type", "grant_type %q: password or refresh_token", gt)
		}
	}
	ts := s.tokens
	if svc := first(params["service"]); svc != "" && svc != ts.cfg.Service {
		return badTokenRequest("service", "service %q is not this registry's (%q)", svc, ts.cfg.Service)
	}
	asked, err := token.ParseScopes(params["scope"], validName)
	if err != nil {
		return badTokenRequest("scope", "%v", err)
	}
	access := s.grant(sub, asked)
	raw, cl, err := ts.cfg.Issuer.Issue(sub.name, access, ts.cfg.TTL)
	if err != nil {
		return err
	}
	ts.metrics.issued.WithLabelValues("access", sub.kind).Inc()
	resp := tokenResponse{
		Token: raw, AccessToken: raw,
		ExpiresIn: int64(cl.Expires.Sub(cl.IssuedAt) / time.Second),
		IssuedAt:  cl.IssuedAt.UTC().Format(time.RFC3339),
	}
	if r.Method == http.MethodPost {
		scopes := make([]string, len(access))
		for i, a := range access {
			scopes[i] = a.String()
		}
		resp.Scope = strings.Join(scopes, " ")
	}
	// Refresh tokens for users only: a robot always has its secret, and a
	// refresh token could not be checked against its revocation.
	if offline && !refreshGrant && sub.kind == "user" {
		rt, _, err := ts.cfg.Issuer.IssueRefresh(sub.name, s.cfg.Users.Credential(sub.name), ts.cfg.RefreshTTL)
		if err != nil {
			return err
		}
		ts.metrics.issued.WithLabelValues("refresh", sub.kind).Inc()
		resp.RefreshToken = rt
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	s.cfg.Logger.LogAttrs(r.Context(), slog.LevelDebug, "token issued",
		slog.String("id", info(r).id), slog.String("sub", sub.name), slog.String("caller", sub.kind),
		slog.Int("grants", len(access)), slog.Bool("refresh", resp.RefreshToken != ""))
	info(r).caller = principal{Caller: auth.Caller{User: sub.name}}
	return writeJSON(w, r, http.StatusOK, "application/json", resp)
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// login checks the credentials r sends, as checkLogin, unless its client
// has failed too often (loginGuard); a wrong password or robot secret
// counts as a failure.
func (s *Server) login(r *http.Request, user, pass string) (sub subject, err error) {
	aerr := s.guardedLogin(r, user, func() bool {
		sub, err = s.checkLogin(user, pass)
		var tr *tokenRefusal
		return errors.As(err, &tr) && (tr.reason == "credentials" || tr.reason == "robot_secret")
	})
	if aerr != nil {
		return subject{}, &tokenRefusal{reason: "throttled", err: aerr}
	}
	return sub, err
}

// checkLogin checks credentials: a robot's when the password has the robot
// secret prefix and the robot exists, else an htpasswd user's.
func (s *Server) checkLogin(user, pass string) (subject, error) {
	if rc := s.tokens.cfg.Robots; rc != nil && strings.HasPrefix(pass, auth.SecretPrefix) {
		rb, err := rc.CheckRobot(user, pass)
		switch {
		case err == nil:
			rules := []auth.Rule{{Repos: rb.Repos, Users: []string{user}, Actions: rb.Actions}}
			acc, err := auth.NewAccess(rules, nil, nil)
			if err != nil {
				return subject{}, credentialsRefused("robot_grant", err, "robot %q has an unusable grant", user)
			}
			return subject{name: user, kind: "robot", robot: acc}, nil
		case errors.Is(err, auth.ErrBadSecret):
			return subject{}, credentialsRefused("robot_secret", err, "authentication failed: wrong user name or password")
		case errors.Is(err, auth.ErrRobotExpired):
			return subject{}, credentialsRefused("robot_expired", err, "robot %q has expired", user)
		case errors.Is(err, auth.ErrRobotRevoked):
			return subject{}, credentialsRefused("robot_revoked", err, "robot %q is revoked", user)
		case !errors.Is(err, auth.ErrRobotUnknown):
			return subject{}, err
		}
	}
	if !s.cfg.Users.Check(user, pass) {
		return subject{}, credentialsRefused("credentials", nil, "authentication failed: wrong user name or password")
	}
	return subject{name: user, kind: "user"}, nil
}

// refreshSubject checks a refresh token; its user must still exist, with
// the password the token was issued against: a password changed (or set
// again) in the htpasswd file ends the refresh tokens issued before.
func (s *Server) refreshSubject(raw string) (subject, error) {
	cl, err := s.tokens.cfg.Verifier.VerifyRefresh(raw)
	if err != nil {
		return subject{}, credentialsRefused(token.Reason(err), err, "refresh token refused: %s", token.Reason(err))
	}
	if !s.cfg.Users.Has(cl.Subject) {
		return subject{}, credentialsRefused("unknown_subject", nil, "refresh token of a user that no longer exists")
	}
	if cl.Credential != s.cfg.Users.Credential(cl.Subject) {
		return subject{}, credentialsRefused("credential_changed", nil, "refresh token issued before the user's password was last set: sign in again")
	}
	return subject{name: cl.Subject, kind: "user"}, nil
}

// grant narrows the scope asked for to what sub may do, action by action.
// Resources with nothing left are dropped; the catalog is for users only.
func (s *Server) grant(sub subject, asked []token.Access) []token.Access {
	out := []token.Access{}
	for _, a := range asked {
		if a.Type == token.TypeRegistry {
			if sub.kind == "user" {
				out = append(out, a)
			}
			continue
		}
		acts := a.Actions
		if slices.Contains(acts, token.ActionAll) {
			acts = []string{token.ActionDelete, token.ActionPull, token.ActionPush}
		}
		var ok []string
		for _, act := range acts {
			if s.subjectMay(sub, a.Name, auth.Action(act)) {
				ok = append(ok, act)
			}
		}
		if len(ok) > 0 {
			out = append(out, token.Access{Type: a.Type, Name: a.Name, Actions: ok})
		}
	}
	return out
}

func (s *Server) subjectMay(sub subject, repo string, act auth.Action) bool {
	rules := s.cfg.Access
	switch sub.kind {
	case "user":
		return rules != nil && rules.Allowed(auth.Caller{User: sub.name}, repo, act)
	case "robot":
		if sub.robot.Allowed(auth.Caller{User: sub.name}, repo, act) {
			return true
		}
	}
	return rules != nil && rules.Allowed(auth.Caller{}, repo, act)
}
