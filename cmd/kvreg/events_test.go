package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api/events"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/kvreg/kvreg/refcount"
)

// The events section: endpoints with their secrets read and defaults
// filled; a bad one stops kvreg serve with a message naming it.
func TestConfigEvents(t *testing.T) {
	secret := writeFile(t, "hook.secret", "  k3y\n")
	file := writeFile(t, "kvreg.yaml", `
events:
  - name: deployer
    url: http://127.0.0.1:9000/hook
    format: cloudevents
    secret-file: `+secret+`
    actions: [push, delete, pull]
    repos: ["prod/*"]
    timeout: 2s
  - name: chat
    url: https://chat.example/hook
`)
	cfg, err := resolve(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.events) != 2 {
		t.Fatalf("endpoints %+v", cfg.events)
	}
	d, c := cfg.events[0], cfg.events[1]
	if d.Name != "deployer" || d.Format != events.FormatCloudEvents || string(d.Secret) != "k3y" || d.Timeout != 2*time.Second ||
		strings.Join(d.Actions, ",") != "push,delete,pull" || d.Repos[0] != "prod/*" {
		t.Errorf("deployer %+v", d)
	}
	if c.Format != events.FormatDistribution || c.Timeout != events.DefaultTimeout || strings.Join(c.Actions, ",") != "push,tag,delete" || c.Secret != nil {
		t.Errorf("chat (defaults) %+v", c)
	}
	if eps := cfg.eventEndpoints(); len(eps) != 2 || eps[0].Name != "deployer" || eps[0].Actions[2] != refcount.ActionPull {
		t.Errorf("refcount endpoints %+v", eps)
	}
	for bad, want := range map[string]string{
		"- {name: a, url: ftp://x/}":                                 "not an http(s) URL",
		"- {name: a, url: http://x/, format: xml}":                   "unknown format",
		"- {name: a, url: http://x/, actions: [push, bump]}":         "unknown action",
		"- {name: a, url: http://x/}\n  - {name: a, url: http://y/}": "two endpoints named a",
		"- {name: a, url: http://x/, secret-file: /nonexistent}":     "nonexistent",
		"- {name: a, url: http://x/, timeout: soon}":                 "timeout",
		"- {url: http://x/}":                                         "without a name",
	} {
		_, err := resolve(t, "--config", writeFile(t, "bad.yaml", "events:\n  "+bad+"\n"))
		if !errors.Is(err, errConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", bad, err, want)
		}
	}
}

// newHookReceiver is an events endpoint on loopback that answers 503, so
// that kvreg keeps what it delivers, until Refuse(0).
func newHookReceiver(t *testing.T) *testenv.Receiver {
	h, err := testenv.NewReceiver()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Down)
	h.Refuse(http.StatusServiceUnavailable)
	return h
}

// firstEventID is the id of the first event of a delivery in the
// distribution format.
func firstEventID(t *testing.T, d testenv.Delivery) string {
	t.Helper()
	var env events.Envelope
	if err := json.Unmarshal(d.Body, &env); err != nil || len(env.Events) == 0 {
		t.Fatalf("a delivery with no event: %v\n%s", err, d.Body)
	}
	return env.Events[0].ID
}

// eventsLs runs kvreg events ls --json.
func eventsLs(t *testing.T, bin, root string) *refcount.OutboxReport {
	t.Helper()
	out, errOut, code := run(t, bin, "events", "ls", "--root", root, "--json")
	if code != 0 {
		t.Fatalf("kvreg events ls: exit %d\n%s%s", code, out, errOut)
	}
	var rep refcount.OutboxReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("kvreg events ls: %v\n%s", err, out)
	}
	return &rep
}

// A push while the receiver is down stays in the outbox, which kvreg
// events ls shows online and, once the server stopped, offline; the
// server started again delivers it, with the id it had, once the
// receiver is up.
func TestEventsSurviveRestart(t *testing.T) {
	bin := buildKvreg(t)
	root := t.TempDir()
	hook := newHookReceiver(t)
	conf := writeFile(t, "kvreg.yaml", "events:\n  - {name: hook, url: "+hook.URL()+"/hook, actions: [push]}\n")
	srv := startServer(t, bin, root, "--config", conf)
	if err := push("http://"+srv.Addr, "app", "v1", []byte("layer one"), []byte("base")); err != nil {
		t.Fatal(err)
	}
	rep := eventsLs(t, bin, root)
	if len(rep.Endpoints) != 1 || rep.Endpoints[0].Name != "hook" || rep.Endpoints[0].Pending != 1 {
		t.Fatalf("online ls: %+v", rep)
	}
	e := rep.Endpoints[0].Entries[0]
	if e.Event.Action != refcount.ActionPush || e.Event.Repository != "app" || e.Event.ID == "" {
		t.Fatalf("row %+v", e)
	}
	stopServer(t, srv)
	off := eventsLs(t, bin, root)
	if len(off.Endpoints) != 1 || off.Endpoints[0].Entries[0].Event.ID != e.Event.ID {
		t.Fatalf("offline ls: %+v", off)
	}
	out, _, _ := run(t, bin, "events", "ls", "--root", root)
	if !strings.Contains(out, e.Event.ID) || !strings.Contains(out, "push") {
		t.Errorf("events ls table:\n%s", out)
	}
	hook.Refuse(0)
	startServer(t, bin, root, "--config", conf)
	got, err := hook.Wait(30*time.Second, testenv.AtLeast(1))
	if err != nil {
		t.Fatalf("the event was not delivered after the restart: %v", err)
	}
	if id := firstEventID(t, got[0]); id != e.Event.ID {
		t.Fatalf("delivered %s, want %s", id, e.Event.ID)
	}
}

// kvreg killed (SIGKILL) after the push committed, while its event's POST
// is in flight: after the restart the receiver gets the event again, with
// the same id, at once (a lone kvreg takes its own claim back without
// waiting for it to expire).
func TestEventsKill9MidDelivery(t *testing.T) {
	bin := buildKvreg(t)
	root := t.TempDir()
	arrived, release := make(chan string, 10), make(chan struct{})
	first := true
	var mu sync.Mutex
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env events.Envelope
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil || len(env.Events) == 0 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		hold := first
		first = false
		mu.Unlock()
		arrived <- env.Events[0].ID
		if hold {
			<-release // the sender dies meanwhile
		}
	}))
	t.Cleanup(hook.Close)
	t.Cleanup(func() { close(release) })
	conf := writeFile(t, "kvreg.yaml", "events:\n  - {name: hook, url: "+hook.URL+"/hook, actions: [push], timeout: 1m}\n")
	srv := startServer(t, bin, root, "--config", conf)
	if err := push("http://"+srv.Addr, "app", "v1", []byte("layer one"), []byte("base")); err != nil {
		t.Fatal(err)
	}
	var id string
	select {
	case id = <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery")
	}
	srv.Kill()
	startServer(t, bin, root, "--config", conf)
	select {
	case again := <-arrived:
		if again != id {
			t.Fatalf("after the restart: %s, want %s", again, id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the event was not delivered again after kill -9")
	}
	until := time.Now().Add(20 * time.Second)
	for {
		rep := eventsLs(t, bin, root)
		if len(rep.Endpoints) == 0 || rep.Endpoints[0].Pending == 0 {
			break
		}
		if time.Now().After(until) {
			t.Fatalf("the delivered row is still there: %+v", rep)
		}
	}
}

// The events of an endpoint taken out of the configuration: serve says
// they are stranded, kvreg events drop removes them (offline), and ls then
// shows none.
func TestEventsDropStranded(t *testing.T) {
	bin := buildKvreg(t)
	root := t.TempDir()
	hook := newHookReceiver(t)
	conf := writeFile(t, "kvreg.yaml", "events:\n  - {name: old, url: "+hook.URL()+"/hook, actions: [push]}\n")
	srv := startServer(t, bin, root, "--config", conf)
	for _, tag := range []string{"v1", "v2"} {
		if err := push("http://"+srv.Addr, "app", tag, []byte("layer "+tag), []byte("base")); err != nil {
			t.Fatal(err)
		}
	}
	stopServer(t, srv)
	srv = startServer(t, bin, root)
	if !strings.Contains(srv.Log(), "events wait for an endpoint the configuration does not name") {
		t.Errorf("serve without the endpoint does not warn of its events:\n%s", srv.Log())
	}
	stopServer(t, srv)
	out, errOut, code := run(t, bin, "events", "drop", "--root", root, "old")
	if code != 0 || !strings.Contains(out, "dropped 2 event(s) of old") {
		t.Fatalf("events drop: exit %d\n%s%s", code, out, errOut)
	}
	if rep := eventsLs(t, bin, root); len(rep.Endpoints) != 0 {
		t.Fatalf("ls after the drop: %+v", rep)
	}
}
