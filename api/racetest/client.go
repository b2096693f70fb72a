package racetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options shape a client's connections.
type Options struct {
	IdleConnsPerHost int
	Timeout          time.Duration
	// ReplicaHeader names the header that says which replica answered;
	// "" when one registry answers everything.
	ReplicaHeader string
}

// Client is one client with its own connections, talking to Base. Its
// methods may run on any goroutine: they report with t.Errorf, never
// t.Fatal.
type Client struct {
	T     testing.TB
	Base  string // scheme and host: paths are sent under it
	Stats *Stats

	replicaHeader string
	hc            *http.Client
}

// New is a client of base that counts its answers in stats. It follows
// no redirect: a redirect is an answer to check.
func New(t testing.TB, base string, stats *Stats, o Options) *Client {
	tr := &http.Transport{MaxIdleConnsPerHost: o.IdleConnsPerHost}
	t.Cleanup(tr.CloseIdleConnections)
	return &Client{T: t, Base: base, Stats: stats, replicaHeader: o.ReplicaHeader, hc: &http.Client{
		Transport:     tr,
		Timeout:       o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Response is an answer read whole.
type Response struct {
	Status  int // 0: the request failed
	Header  http.Header
	Body    []byte
	Replica string // who answered, when the client has a ReplicaHeader
}

// Code is the first error code of a spec error body.
func (r Response) Code() string {
	var v struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	json.Unmarshal(r.Body, &v)
	if len(v.Errors) == 0 {
		return ""
	}
	return v.Errors[0].Code
}

// via names the replica that answered, for messages.
func (r Response) via() string {
	if r.Replica == "" {
		return ""
	}
	return fmt.Sprintf(" via %q", r.Replica)
}

// Do sends one request (p is a path, or a Location) and counts its answer
// under op. A transport error or a 5xx is reported; a failed request
// answers status 0.
func (c *Client) Do(op, method, p string, h http.Header, body []byte) Response {
	u := p
	if !strings.HasPrefix(u, "http") {
		u = c.Base + p
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		c.T.Errorf("%s %s: %v", method, p, err)
		return Response{}
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.Stats.Add(op, 0, fmt.Sprintf("%s %s: %v", method, p, err))
		c.T.Errorf("%s %s: %v", method, p, err)
		return Response{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.T.Errorf("%s %s: reading the body: %v", method, p, err)
	}
	rs := Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if c.replicaHeader != "" {
		rs.Replica = resp.Header.Get(c.replicaHeader)
	}
	c.Stats.Add(op, resp.StatusCode, fmt.Sprintf("%s %s%s: %d %s", method, p, rs.via(), resp.StatusCode, b))
	if resp.StatusCode >= 500 {
		c.T.Errorf("%s %s%s: %d %s", method, p, rs.via(), resp.StatusCode, b)
	}
	return rs
}

// Expect reports a status outside want (a 5xx or a failure was reported
// by Do) and says whether it was in.
func (c *Client) Expect(what string, rs Response, want ...int) bool {
	for _, w := range want {
		if rs.Status == w {
			return true
		}
	}
	if rs.Status != 0 && rs.Status < 500 {
		c.T.Errorf("%s%s: %d %s, want one of %v", what, rs.via(), rs.Status, rs.Body, want)
	}
	return false
}

// Together runs fns at once (as near as goroutines allow) and waits.
func Together(fns ...func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn()
		}()
	}
	close(start)
	wg.Wait()
}
