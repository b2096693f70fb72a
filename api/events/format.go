package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kvreg/kvreg/refcount"
)

// Media types of the request bodies.
const (
	MediaTypeDistribution = "application/vnd.docker.distribution.events.v1+json"
	MediaTypeCloudEvents  = "application/cloudevents+json"
)

// SignatureHeader carries sha256=<hex HMAC-SHA256 of the body>.
const SignatureHeader = "X-Kvreg-Signature"

// Sign is the value of SignatureHeader for body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Source says which kvreg delivers: its address and its instance id.
type Source struct {
	Addr       string // the envelope's source.addr: where this kvreg listens
	InstanceID string // the envelope's source.instanceID: this process
	Name       string // a CloudEvent's source, the same for every replica ("kvreg" when empty)
}

// render is the body and content type of an event in a format.
// A nil body: the format has nothing to say of the event (it counts as
// delivered).
func render(format string, e refcount.Event, src Source) ([]byte, string, error) {
	switch format {
	case FormatCloudEvents:
		b, err := json.Marshal(cloudEvent(e, src))
		return b, MediaTypeCloudEvents, err
	default:
		evs := distributionEvents(e, src)
		if len(evs) == 0 {
			return nil, "", nil
		}
		b, err := json.Marshal(Envelope{Events: evs})
		return b, MediaTypeDistribution, err
	}
}

// Envelope is the reference registry's notification body.
type Envelope struct {
	Events []DistributionEvent `json:"events"`
}

// DistributionEvent is one event of an Envelope, with the fields the
// reference registry's receivers read.
type DistributionEvent struct {
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	Action    string `json:"action"` // push, pull, delete
	Target    Target `json:"target"`
	Request   struct {
		ID        string `json:"id,omitempty"`
		Addr      string `json:"addr,omitempty"`
		Host      string `json:"host,omitempty"`
		Method    string `json:"method,omitempty"`
		UserAgent string `json:"useragent,omitempty"`
	} `json:"request"`
	Actor struct {
		Name string `json:"name,omitempty"`
	} `json:"actor"`
	Source struct {
		Addr       string `json:"addr,omitempty"`
		InstanceID string `json:"instanceID,omitempty"`
	} `json:"source"`
}

// Target is what a DistributionEvent is about. ReclaimedBytes (a delete's
// freed bytes) is kvreg's own; receivers that do not know it skip it.
type Target struct {
	MediaType      string `json:"mediaType,omitempty"`
	Size           int64  `json:"size,omitempty"`
	Digest         string `json:"digest,omitempty"`
	Length         int64  `json:"length,omitempty"`
	Repository     string `json:"repository"`
	URL            string `json:"url,omitempty"`
	Tag            string `json:"tag,omitempty"`
	ReclaimedBytes int64  `json:"reclaimedBytes,omitempty"`
}

func timestamp(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

// distributionEvents renders one outbox event as the envelope's events.
// The envelope knows push, pull and delete: a push with several tags is
// one event per tag, as the reference registry sends one per tagged PUT; a
// tag moved is the push of that tag onto its new manifest; a repository
// deleted is one delete per manifest that went. Ids past the first get a
// suffix, so each is stable and distinct.
func distributionEvents(e refcount.Event, src Source) []DistributionEvent {
	base := DistributionEvent{ID: e.ID, Timestamp: timestamp(e.Time), Action: e.Action}
	base.Request.ID, base.Request.Addr, base.Request.Host = e.Origin.RequestID, e.Origin.Addr, e.Origin.Host
	base.Request.Method, base.Request.UserAgent = e.Origin.Method, e.Origin.UserAgent
	base.Actor.Name = e.Origin.Actor
	base.Source.Addr, base.Source.InstanceID = src.Addr, src.InstanceID
	t := Target{MediaType: e.MediaType, Size: e.Size, Length: e.Size, Digest: e.Digest, Repository: e.Repository}
	if e.Origin.Host != "" && e.Digest != "" {
		scheme := e.Origin.Scheme
		if scheme == "" {
			scheme = "http"
		}
		t.URL = fmt.Sprintf("%s://%s/v2/%s/manifests/%s", scheme, e.Origin.Host, e.Repository, e.Digest)
	}
	var targets []Target
	switch e.Action {
	case refcount.ActionPush:
		targets = append(targets, t)
		for i, tag := range e.Tags {
			if i == 0 {
				targets[0].Tag = tag
				continue
			}
			x := t
			x.Tag = tag
			targets = append(targets, x)
		}
	case refcount.ActionTag:
		// A tag moves only by a push, whose own event names the tag
		// already, as the reference registry sends it: nothing more.
	case refcount.ActionPull:
		t.Tag = e.Tag
		targets = append(targets, t)
	case refcount.ActionDelete:
		t.MediaType, t.Size, t.Length, t.URL = "", 0, 0, ""
		t.Tag = e.Tag
		if e.Tag == "" && e.Digest == "" && len(e.Manifests) > 0 {
			for _, d := range e.Manifests {
				x := t
				x.Digest = d
				targets = append(targets, x)
			}
		} else {
			targets = append(targets, t)
		}
		targets[0].ReclaimedBytes = e.Reclaimed
	}
	out := make([]DistributionEvent, len(targets))
	for i, x := range targets {
		out[i] = base
		out[i].Target = x
		if i > 0 {
			out[i].ID = fmt.Sprintf("%s-%d", e.ID, i)
		}
	}
	return out
}

// CloudEvent is a CloudEvents 1.0 event in structured mode.
type CloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject,omitempty"`
	Time            string    `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            EventData `json:"data"`
}

// EventData is a CloudEvent's data: the outbox event's fields.
type EventData struct {
	Repository     string          `json:"repository"`
	Digest         string          `json:"digest,omitempty"`
	MediaType      string          `json:"mediaType,omitempty"`
	Size           int64           `json:"size,omitempty"`
	Tag            string          `json:"tag,omitempty"`
	From           string          `json:"from,omitempty"`
	Tags           []string        `json:"tags,omitempty"`
	Manifests      []string        `json:"manifests,omitempty"`
	ReclaimedBytes int64           `json:"reclaimedBytes,omitempty"`
	Actor          string          `json:"actor,omitempty"`
	Request        refcount.Origin `json:"request"`
}

// CloudEvent types.
const (
	TypePushed            = "dev.kvreg.manifest.pushed"
	TypePulled            = "dev.kvreg.manifest.pulled"
	TypeTagMoved          = "dev.kvreg.tag.moved"
	TypeTagDeleted        = "dev.kvreg.tag.deleted"
	TypeManifestDeleted   = "dev.kvreg.manifest.deleted"
	TypeRepositoryDeleted = "dev.kvreg.repository.deleted"
)

func cloudEvent(e refcount.Event, src Source) CloudEvent {
	ce := CloudEvent{SpecVersion: "1.0", ID: e.ID, Source: "kvreg", Time: timestamp(e.Time), DataContentType: "application/json",
		Subject: e.Repository,
		Data: EventData{Repository: e.Repository, Digest: e.Digest, MediaType: e.MediaType, Size: e.Size, Tag: e.Tag, From: e.From,
			Tags: e.Tags, Manifests: e.Manifests, ReclaimedBytes: e.Reclaimed, Actor: e.Origin.Actor, Request: e.Origin}}
	// One source for every replica: (source, id) names the event, and a
	// retry by another replica is the same event.
	if src.Name != "" {
		ce.Source = src.Name
	}
	switch e.Action {
	case refcount.ActionPush:
		ce.Type = TypePushed
	case refcount.ActionPull:
		ce.Type = TypePulled
	case refcount.ActionTag:
		ce.Type = TypeTagMoved
	case refcount.ActionDelete:
		switch {
		case e.Tag != "":
			ce.Type = TypeTagDeleted
		case e.Digest != "":
			ce.Type = TypeManifestDeleted
		default:
			ce.Type = TypeRepositoryDeleted
		}
	}
	switch {
	case e.Tag != "":
		ce.Subject += ":" + e.Tag
	case e.Digest != "":
		ce.Subject += "@" + e.Digest
	}
	return ce
}
