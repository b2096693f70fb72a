package api_test

import (
	"log/slog"
	"math/rand"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
)

// Pushes, pulls and deletes through the API write their events with who
// made them: the user, the client's address, the Host, the method and the
// request's id; a HEAD writes none.
func TestEventsCarryTheRequest(t *testing.T) {
	reg := regtest.Open(t, regtest.Options{Events: []refcount.Endpoint{{Name: "hook",
		Actions: []string{refcount.ActionPush, refcount.ActionTag, refcount.ActionDelete, refcount.ActionPull}}}})
	cfg := authConfig(t, api.Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}, teamRules)
	r := serve(t, reg, api.New(reg.Registry, cfg))
	rng := rand.New(rand.NewSource(17))
	img := randomOCIImage(rng, nil, 100)
	r.as("alice").pushImage("team/app", "v1", img)
	expectStatus(t, "GET", r.as("bob").get("/v2/team/app/manifests/v1", hdr("Accept", allManifestTypes)), http.StatusOK)
	expectStatus(t, "HEAD", r.as("bob").head("/v2/team/app/manifests/v1", hdr("Accept", allManifestTypes)), http.StatusOK)
	expectStatus(t, "DELETE", r.as("alice").del("/v2/team/app/manifests/"+img.Digest), http.StatusAccepted)

	rep, err := reg.Outbox(0)
	if err != nil || len(rep.Endpoints) != 1 {
		t.Fatalf("outbox %+v %v", rep, err)
	}
	var got []string
	host := strings.TrimPrefix(r.srv.URL, "http://")
	for _, e := range rep.Endpoints[0].Entries {
		ev := e.Event
		got = append(got, ev.Action+" "+ev.Origin.Actor+" "+ev.Origin.Method)
		if ev.Origin.Addr != "127.0.0.1" || ev.Origin.Host != host || ev.Origin.Scheme != "http" || ev.Origin.RequestID == "" ||
			!strings.HasPrefix(ev.Origin.UserAgent, "Go-http-client") || ev.Digest != img.Digest || ev.Repository != "team/app" {
			t.Errorf("event %+v", ev)
		}
	}
	if strings.Join(got, ",") != "push alice PUT,pull bob GET,delete alice DELETE" {
		t.Fatalf("events %q", got)
	}
	if pull := rep.Endpoints[0].Entries[1].Event; pull.Tag != "v1" || pull.MediaType != img.MediaType {
		t.Errorf("pull event %+v", pull)
	}
}
