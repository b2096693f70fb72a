package refcount

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount/policy"
)

// Event actions, as Endpoint.Actions names them.
const (
	ActionPush   = "push"   // a manifest PUT
	ActionTag    = "tag"    // a tag moved from one manifest to another
	ActionDelete = "delete" // a tag, a manifest or a repository deleted
	ActionPull   = "pull"   // a manifest GET (off unless listed)
)

// Endpoint is a receiver of events: which repositories and actions it
// wants. Its rows in the outbox are keyed by Name, in commit order.
type Endpoint struct {
	Name    string
	Repos   []string // repository globs (* spans slashes, ? one character); empty: every repository
	Actions []string // ActionPush, ActionTag, ActionDelete, ActionPull
}

// wants reports whether the endpoint takes an event.
func (e Endpoint) wants(action, repo string) bool {
	found := false
	for _, a := range e.Actions {
		if a == action {
			found = true
			break
		}
	}
	if !found {
		return false
	}
	if len(e.Repos) == 0 {
		return true
	}
	for _, g := range e.Repos {
		if policy.Match(g, repo) {
			return true
		}
	}
	return false
}

// Origin says who made a change and through which request, for its
// events. The zero Origin is a change kvreg made itself, or an operator's.
type Origin struct {
	Actor     string `json:"actor,omitempty"`     // the user; empty: anonymous or kvreg
	Addr      string `json:"addr,omitempty"`      // the client's address
	Host      string `json:"host,omitempty"`      // the Host the request named
	Scheme    string `json:"scheme,omitempty"`    // http or https, as the client reached kvreg
	Method    string `json:"method,omitempty"`    // the HTTP method
	UserAgent string `json:"userAgent,omitempty"` // the client's User-Agent
	RequestID string `json:"requestID,omitempty"` // the request's id in kvreg's log
}

// Event is what the outbox keeps of one change for its delivery. Its ID
// is made when the change commits and stays across every retry and every
// endpoint.
type Event struct {
	ID         string   `json:"id"`
	Action     string   `json:"action"`
	Time       int64    `json:"time"` // Unix ns, the transaction's clock
	Repository string   `json:"repository"`
	Digest     string   `json:"digest,omitempty"`
	MediaType  string   `json:"mediaType,omitempty"`
	Size       int64    `json:"size,omitempty"`
	Tag        string   `json:"tag,omitempty"`  // the tag moved, deleted or pulled by
	From       string   `json:"from,omitempty"` // tag: the digest it left
	Tags       []string `json:"tags,omitempty"` // push: the tags it set; delete: the tags that went
	// Manifests are the digests a delete removed.
	Manifests []string `json:"manifests,omitempty"`
	// Reclaimed is the bytes of blobs a delete freed.
	Reclaimed int64  `json:"reclaimedBytes,omitempty"`
	Origin    Origin `json:"origin"`
}

// event gathers one event in the change; the transaction writes it to the
// outbox before it commits (writeOutboxTx).
func (c *change) event(e Event) {
	if !c.noEvents {
		c.events = append(c.events, e)
	}
}

// tagMoved notes, during a push, a tag that left old for d; pushed turns
// the notes into events after the push's own.
func (c *change) tagMoved(repo, tag, old, d string) {
	if c.noEvents {
		return
	}
	c.moves = append(c.moves, Event{Action: ActionTag, Repository: repo, Tag: tag, From: old, Digest: d})
}

// pushed gathers a manifest PUT's event, then those of the tags it moved.
func (c *change) pushed(repo, d string, m kv.Manifest, tags []string) {
	if c.noEvents {
		return
	}
	c.event(Event{Action: ActionPush, Repository: repo, Digest: d, MediaType: m.MediaType, Size: m.Size, Tags: append([]string(nil), tags...)})
	for _, mv := range c.moves {
		mv.MediaType, mv.Size = m.MediaType, m.Size
		c.event(mv)
	}
	c.moves = nil
}

// withOrigin runs fn with the change's origin set, for its events.
func withOrigin(o Origin, fn func(tx *kv.Tx, c *change) error) func(tx *kv.Tx, c *change) error {
	return func(tx *kv.Tx, c *change) error {
		c.origin = o
		return fn(tx, c)
	}
}

// withDeleteEvent runs a delete's transaction and gathers its event: what
// went (from the change's removal list, past what was there before) and
// the bytes freed. tag or d names the target (neither: the repository).
func withDeleteEvent(repo, tag, d string, fn func(tx *kv.Tx, c *change) error) func(tx *kv.Tx, c *change) error {
	return func(tx *kv.Tx, c *change) error {
		if c.noEvents {
			return fn(tx, c)
		}
		if tag != "" {
			td, ok, err := tx.Tag(repo, tag)
			if err != nil {
				return err
			}
			if ok {
				d = td
			}
		}
		mark, before := c.removed, c.Reclaimed
		if err := fn(tx, c); err != nil {
			return err
		}
		own := c.removed.since(mark)
		e := Event{Action: ActionDelete, Repository: repo, Tag: tag, Digest: d, Reclaimed: c.Reclaimed - before}
		for _, t := range own.tags {
			e.Tags = append(e.Tags, strings.TrimPrefix(t, repo+":"))
		}
		for _, m := range own.manifests {
			e.Manifests = append(e.Manifests, m.Digest)
		}
		c.event(e)
		return nil
	}
}

// eventsWanted reports whether any endpoint takes action on repo, so that
// a read (a pull) writes nothing when none does.
func (r *Registry) eventsWanted(action, repo string) bool {
	for _, e := range r.opts.Events {
		if e.wants(action, repo) {
			return true
		}
	}
	return false
}

// writeOutboxTx writes the change's events to the outbox, one row per
// endpoint that wants each, in the order they were gathered, inside the
// transaction that made the change: an event exists if and only if its
// change committed.
func (r *Registry) writeOutboxTx(tx *kv.Tx, c *change) error {
	for _, e := range c.events {
		var eps []string
		for _, ep := range r.opts.Events {
			if ep.wants(e.Action, e.Repository) {
				eps = append(eps, ep.Name)
			}
		}
		if len(eps) == 0 {
			continue
		}
		e.ID, e.Time, e.Origin = newEventID(), c.now, c.origin
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		for _, ep := range eps {
			seq, err := tx.NextOutboxSeq(ep)
			if err != nil {
				return err
			}
			if err := tx.PutOutbox(ep, kv.OutboxRow{Seq: seq, Event: b}, true); err != nil {
				return err
			}
			c.outboxRows++
		}
	}
	return nil
}

// newEventID is a random id; a transaction that runs again makes new ones,
// and only the committed run's are ever seen.
func newEventID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
