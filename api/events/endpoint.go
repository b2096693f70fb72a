package events

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/kvreg/kvreg/refcount"
)

// ErrConfig is a bad endpoint configuration.
var ErrConfig = errors.New("events: bad endpoint")

// Formats of an endpoint's requests.
const (
	FormatDistribution = "distribution" // the reference registry's notification envelope
	FormatCloudEvents  = "cloudevents"  // CloudEvents 1.0, structured mode
)

// Endpoint is one receiver of events.
type Endpoint struct {
	Name    string
	URL     string
	Format  string
	Secret  []byte   // HMAC-SHA256 key of X-Kvreg-Signature; empty: unsigned
	Actions []string // refcount.ActionPush, ActionTag, ActionDelete, ActionPull
	Repos   []string // repository globs; empty: every repository
	Timeout time.Duration
}

// DefaultTimeout is an endpoint's request timeout when it sets none.
const DefaultTimeout = 5 * time.Second

// Validate checks an endpoint and fills its defaults: the format
// (distribution), the actions (push, tag, delete), the timeout.
func (e *Endpoint) Validate() error {
	if e.Name == "" {
		return fmt.Errorf("%w: an endpoint without a name", ErrConfig)
	}
	for _, c := range e.Name {
		if c == 0 {
			return fmt.Errorf("%w: endpoint name %q", ErrConfig, e.Name)
		}
	}
	u, err := url.Parse(e.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: endpoint %s: url %q is not an http(s) URL", ErrConfig, e.Name, e.URL)
	}
	switch e.Format {
	case "":
		e.Format = FormatDistribution
	case FormatDistribution, FormatCloudEvents:
	default:
		return fmt.Errorf("%w: endpoint %s: unknown format %q (distribution, cloudevents)", ErrConfig, e.Name, e.Format)
	}
	if len(e.Actions) == 0 {
		e.Actions = []string{refcount.ActionPush, refcount.ActionTag, refcount.ActionDelete}
	}
	for _, a := range e.Actions {
		switch a {
		case refcount.ActionPush, refcount.ActionTag, refcount.ActionDelete, refcount.ActionPull:
		default:
			return fmt.Errorf("%w: endpoint %s: unknown action %q (push, tag, delete, pull)", ErrConfig, e.Name, a)
		}
	}
	for _, g := range e.Repos {
		if g == "" {
			return fmt.Errorf("%w: endpoint %s: empty repository glob", ErrConfig, e.Name)
		}
	}
	if e.Timeout < 0 {
		return fmt.Errorf("%w: endpoint %s: negative timeout", ErrConfig, e.Name)
	}
	if e.Timeout == 0 {
		e.Timeout = DefaultTimeout
	}
	return nil
}

// Refcount is what refcount needs of the endpoint to write its rows.
func (e Endpoint) Refcount() refcount.Endpoint {
	return refcount.Endpoint{Name: e.Name, Repos: e.Repos, Actions: e.Actions}
}

// Refcount turns validated endpoints into refcount's, refusing two of one
// name (their rows would mix).
func Refcount(eps []Endpoint) ([]refcount.Endpoint, error) {
	seen := map[string]bool{}
	var out []refcount.Endpoint
	for _, e := range eps {
		if seen[e.Name] {
			return nil, fmt.Errorf("%w: two endpoints named %s", ErrConfig, e.Name)
		}
		seen[e.Name] = true
		out = append(out, e.Refcount())
	}
	return out, nil
}
