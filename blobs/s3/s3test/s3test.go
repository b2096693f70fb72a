// Package s3test starts a real S3 server for the tests of a package:
// versitygw serving a temporary directory on 127.0.0.1, one server per test
// binary (Main or Run, from TestMain), one fresh bucket per test (Bucket).
// It owns that server's directory, port, credentials and lifetime and
// nothing else; only tests import it. VERSITYGW names the binary when it is
// not versitygw in PATH or in the Go bin directory.
package s3test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// InstallHint says how to get the server.
const InstallHint = "versitygw is not installed: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 (or set VERSITYGW to its path)"

// The root credentials of the server; it listens on loopback only.
const (
	AccessKey = "kvregtest"
	SecretKey = "kvregtest-secret"
	Region    = "us-east-1"
)

var (
	mu      sync.Mutex
	srv     *server
	missing string // why no server runs, when none does
)

type server struct {
	dir      string // the posix root: each sub-directory is a bucket
	endpoint string
	cmd      *exec.Cmd
	done     chan struct{}
	logPath  string
	bin      string
	port     int
}

// Main starts a server, runs the tests and stops the server. Without
// versitygw the tests that ask for a bucket are skipped, or with CI=true in
// the environment the run fails.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main for a TestMain with more to do after the tests: it returns
// the exit code instead of exiting.
func Run(m *testing.M) int { return Around(m.Run) }

// Around is Run for a TestMain that starts other servers the same way:
// run is m.Run, or another such function's Run around it.
func Around(run func() int) int {
	bin, err := binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "s3test: %v (CI=true: a missing S3 server fails the tests)\n", err)
			return 1
		}
		missing = err.Error()
		return run()
	}
	s, err := start(bin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "s3test: %v\n", err)
		return 1
	}
	mu.Lock()
	srv = s
	mu.Unlock()
	defer s.stop()
	return run()
}

func binary() (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("VERSITYGW=%s: %w; %s", p, err, InstallHint)
		}
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		dirs := []string{}
		if len(lines) > 0 && lines[0] != "" {
			dirs = append(dirs, lines[0])
		}
		if len(lines) > 1 {
			for _, gp := range filepath.SplitList(lines[1]) {
				dirs = append(dirs, filepath.Join(gp, "bin"))
			}
		}
		for _, d := range dirs {
			p := filepath.Join(d, "versitygw")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return "", errors.New(InstallHint)
}

func start(bin string) (*server, error) {
	dir, err := os.MkdirTemp("", "kvreg-s3test-")
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "buckets")
	if err := os.Mkdir(root, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &server{dir: root, endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), logPath: filepath.Join(dir, "versitygw.log"), bin: bin, port: port}
	if err := s.run(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// run starts versitygw on s's port and directory and waits until it
// accepts connections.
func (s *server) run() error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.done = make(chan struct{})
	s.cmd = exec.Command(s.bin, "--port", fmt.Sprintf("127.0.0.1:%d", s.port), "--keep-alive", "--quiet", "posix", s.dir)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey, "VGW_REGION="+Region)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return err
	}
	done := s.done
	go func() { s.cmd.Wait(); close(done) }()
	// Ready when it accepts connections.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			out, _ := os.ReadFile(s.logPath)
			return fmt.Errorf("versitygw exited: %s", out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("versitygw did not answer on %s within 30s", s.endpoint)
		}
	}
}

// kill ends versitygw at once (SIGKILL), keeping its directory.
func (s *server) kill() {
	s.cmd.Process.Kill()
	<-s.done
}

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	os.RemoveAll(filepath.Dir(s.dir))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Server is where a test reaches the S3 server.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	Region    string
	AccessKey string
	SecretKey string
	// Dir is the server's directory: Dir/BUCKET holds a bucket's objects,
	// for tests that look under the S3 API.
	Dir string
}

// Bucket makes a new, empty bucket for the test and returns its name with
// the server. Without a server it skips the test (it fails under CI=true,
// which Run reports before any test runs).
func Bucket(t testing.TB) (Server, string) {
	t.Helper()
	mu.Lock()
	s := srv
	mu.Unlock()
	if s == nil {
		if missing == "" {
			t.Fatal("s3test: no server: call s3test.Main from TestMain")
		}
		t.Skip(missing)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "kvreg-" + hex.EncodeToString(b[:])
	// A sub-directory of the server's root is a bucket.
	if err := os.Mkdir(filepath.Join(s.dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Join(s.dir, name)) })
	return Server{Endpoint: s.endpoint, Region: Region, AccessKey: AccessKey, SecretKey: SecretKey, Dir: s.dir}, name
}

func current(t testing.TB) *server {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if srv == nil {
		if missing != "" {
			t.Skip(missing)
		}
		t.Fatal("s3test: no server: call s3test.Main from TestMain")
	}
	return srv
}

// Stop kills the test binary's server (SIGKILL: connections are cut, no
// request is finished) until Start; its buckets stay.
func Stop(t testing.TB) {
	t.Helper()
	current(t).kill()
}

// Start starts the server again after Stop, on the same port and
// directory, and returns once it accepts connections.
func Start(t testing.TB) {
	t.Helper()
	if err := current(t).run(); err != nil {
		t.Fatal(err)
	}
}
