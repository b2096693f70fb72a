package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// The sentinel errors; every error of the client wraps at most one of
// them, with the URL and status that led to it.
var (
	// ErrNotFound: the upstream has no such repository, manifest or blob
	// (404, or a NAME_UNKNOWN, MANIFEST_UNKNOWN or BLOB_UNKNOWN code).
	ErrNotFound = errors.New("upstream: not found")
	// ErrUnavailable: the upstream (or its token realm) could not answer:
	// connection refused or reset, a timeout, 429 or 5xx. A cache serves
	// what it has.
	ErrUnavailable = errors.New("upstream: unavailable")
	// ErrDenied: 401 or 403 once the credentials the client has were
	// tried.
	ErrDenied = errors.New("upstream: access denied")
	// ErrDigestMismatch: the bytes do not hash to the digest asked for or
	// announced, or their length is not the announced one.
	ErrDigestMismatch = errors.New("upstream: digest mismatch")
	// ErrTooLarge: a manifest or token answer over its size limit.
	ErrTooLarge = errors.New("upstream: too large")
	// ErrInvalid: a repository name, reference or digest the client
	// refuses to put in a URL, or an upstream answer it cannot use.
	ErrInvalid = errors.New("upstream: invalid")
)

// errTimedOut is the cause of a request the client's timeout ended.
var errTimedOut = fmt.Errorf("%w: timed out", ErrUnavailable)

// StatusError is an HTTP answer the client did not want. It wraps the
// sentinel its status (or error code) falls under, if any.
type StatusError struct {
	Method string
	URL    string // without user info or query, which may carry secrets
	Status int
	Codes  []string // the error codes of the registry's JSON body
	kind   error
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if len(e.Codes) > 0 {
		s += " (" + strings.Join(e.Codes, ", ") + ")"
	}
	if e.kind != nil {
		s = e.kind.Error() + ": " + s
	}
	return s
}

func (e *StatusError) Unwrap() error { return e.kind }

// maxErrorBody bounds what is read of an error answer to find its codes.
const maxErrorBody = 64 << 10

// statusError reads the codes of resp's body (and closes it) and
// classifies its status.
func statusError(resp *http.Response) *StatusError {
	e := &StatusError{Method: resp.Request.Method, URL: safeURL(resp.Request.URL), Status: resp.StatusCode}
	if resp.Body != nil {
		var body struct {
			Errors []struct {
				Code string `json:"code"`
			} `json:"errors"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		if json.Unmarshal(b, &body) == nil {
			for _, x := range body.Errors {
				e.Codes = append(e.Codes, x.Code)
			}
		}
	}
	e.kind = classifyStatus(resp.StatusCode, e.Codes)
	return e
}

func classifyStatus(status int, codes []string) error {
	for _, c := range codes {
		switch c {
		case "NAME_UNKNOWN", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN":
			return ErrNotFound
		case "TOOMANYREQUESTS":
			return ErrUnavailable
		}
	}
	switch {
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ErrDenied
	case status == http.StatusTooManyRequests || status >= 500:
		return ErrUnavailable
	}
	return nil
}

// transportError is a request that got no answer. The caller's own
// cancellation is its own, not the upstream's; anything else (refused,
// reset, the client's timeouts (errTimedOut), TLS failures) means the
// upstream cannot be reached.
func transportError(ctx context.Context, method string, u *url.URL, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, ErrUnavailable) {
		return fmt.Errorf("upstream: %s %s: %w", method, safeURL(u), cause)
	}
	// *url.Error repeats the full URL; keep only its cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%w: %s %s: %v", ErrUnavailable, method, safeURL(u), err)
}

// safeURL is u for messages: no user info, no query (a redirect target's
// query may carry a signature).
func safeURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	c.RawQuery, c.ForceQuery = "", false
	c.Fragment, c.RawFragment = "", ""
	return c.String()
}

// outcome is the counters' name for how an operation ended.
func outcome(err error) Outcome {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrNotFound):
		return OutcomeNotFound
	case errors.Is(err, ErrUnavailable):
		return OutcomeUnavailable
	case errors.Is(err, ErrDenied):
		return OutcomeDenied
	}
	return OutcomeError
}
