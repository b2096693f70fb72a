package testenv

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Start returns a server that answers, on the port it chose or the one it
// was given (a restart keeps the address clients know); Stop ends it with
// a clean exit, Kill at once; one binary serves every start.
func TestStartStopRestartKill(t *testing.T) {
	bin, err := Kvreg()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := Kvreg(); again != bin {
		t.Fatalf("second Kvreg: %s, first %s", again, bin)
	}
	root := filepath.Join(t.TempDir(), "data")
	s, err := Start(bin, Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") || strings.HasSuffix(s.Addr, ":0") || s.URL != "http://"+s.Addr {
		t.Fatalf("address %q, URL %q", s.Addr, s.URL)
	}
	if st := get(t, s.URL+"/v2/"); st != http.StatusOK {
		t.Fatalf("GET /v2/: %d", st)
	}
	if err := s.Stop(30 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Stop returned before the process exited")
	}
	if !strings.Contains(s.Log(), "kvreg serving") {
		t.Errorf("log lacks the start line:\n%s", s.Log())
	}

	s2, err := Start(bin, Options{Root: root, Addr: s.Addr})
	if err != nil {
		t.Fatal(err)
	}
	if s2.Addr != s.Addr {
		t.Fatalf("restart on %s, asked for %s", s2.Addr, s.Addr)
	}
	if st := get(t, s2.URL+"/readyz"); st != http.StatusOK {
		t.Fatalf("GET /readyz after restart: %d", st)
	}
	s2.Kill()
	if err := s2.Wait(); err == nil {
		t.Fatal("a killed server exited 0")
	}
	if err := s2.Stop(time.Second); err != nil {
		t.Errorf("Stop of an exited server: %v", err)
	}
}

// A server that cannot start is an error that carries its log, not a hang.
func TestStartReportsAServerThatExits(t *testing.T) {
	bin, err := Kvreg()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "not-a-directory")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Start(bin, Options{Root: file})
	if err == nil {
		s.Kill()
		t.Fatal("kvreg serve over a file as its root started")
	}
	if !strings.Contains(err.Error(), "exited") {
		t.Errorf("error %v does not say the server exited", err)
	}
}
