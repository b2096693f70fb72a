package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"
)

var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// Kvreg builds cmd/kvreg once per test binary and returns the path of the
// binary; later calls return the same path. Cleanup removes it.
func Kvreg() (string, error) {
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "kvreg-test-bin-")
		if build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "kvreg")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, goTool(), "build", "-o", build.bin, "github.com/kvreg/kvreg/cmd/kvreg").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build kvreg: %v\n%s", err, out)
		}
	})
	return build.bin, build.err
}

// Cleanup removes the binary Kvreg built; TestMain calls it after m.Run.
func Cleanup() {
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
}

// goTool is the go command: go test puts GOROOT/bin first on PATH.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// Options says how to start kvreg serve.
type Options struct {
	Root string   // --root
	Addr string   // --addr; "" picks a free loopback port
	Args []string // more flags of kvreg serve
	// CA, when set, makes the server HTTPS (its certificate signed by CA,
	// given through Args or a config file): the readiness probe and URL
	// use https.
	CA *x509.CertPool
	// Log also receives the process's output (stdout and stderr).
	Log io.Writer
	// Ready bounds the wait for /readyz; 20 s when zero.
	Ready time.Duration
}

// Server is a kvreg serve process.
type Server struct {
	Root string
	Addr string // 127.0.0.1:port
	URL  string // scheme://Addr

	cmd     *exec.Cmd
	out     *output
	done    chan struct{}
	waitErr error // valid once done is closed
}

// addrLine is the serve log's line that names the address, text or JSON.
var addrLine = regexp.MustCompile(`"?addr"?[=:]"?(127\.0\.0\.1:\d+)`)

// Start runs `bin serve` on a loopback port with the data directory
// o.Root, and returns once /readyz answers 200. The process dies with the
// test binary.
func Start(bin string, o Options) (*Server, error) {
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	args := append([]string{"serve", "--addr", addr, "--root", o.Root}, o.Args...)
	s := &Server{Root: o.Root, cmd: exec.Command(bin, args...), out: &output{tee: o.Log}, done: make(chan struct{})}
	scheme, client := "http", &http.Client{Timeout: 2 * time.Second}
	if o.CA != nil {
		scheme = "https"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: o.CA}}
	}
	if o.Addr != "" {
		s.Addr, s.URL = o.Addr, scheme+"://"+o.Addr
	}
	s.cmd.Env = CleanEnv()
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
	limit := o.Ready
	if limit == 0 {
		limit = 20 * time.Second
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return nil, fmt.Errorf("kvreg serve exited (%v):\n%s", s.waitErr, Tail(s.Log(), 4000))
		default:
		}
		if s.Addr == "" {
			if m := addrLine.FindStringSubmatch(s.Log()); m != nil {
				s.Addr, s.URL = m[1], scheme+"://"+m[1]
			}
		}
		if s.Addr != "" {
			if resp, err := client.Get(s.URL + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return s, nil
				}
			}
		}
		time.Sleep(20 * time.Millisecond) // polling a process that is starting
	}
	s.Kill()
	return nil, fmt.Errorf("kvreg serve did not answer /readyz within %v:\n%s", limit, Tail(s.Log(), 4000))
}

// Log is what the process has written so far.
func (s *Server) Log() string { return s.out.String() }

// Pid is the process's id, for tests that read /proc/<pid>.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Signal sends sig to the process.
func (s *Server) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// Wait waits for the process to exit and returns how it did (nil: exit 0).
func (s *Server) Wait() error {
	<-s.done
	return s.waitErr
}

// Stop sends SIGTERM and waits up to limit for the process to exit; past
// it the process is killed and Stop says so. It returns the exit error of
// a process that did not exit 0, and nil for one that had exited already.
func (s *Server) Stop(limit time.Duration) error {
	select {
	case <-s.done:
		return nil
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return s.waitErr
	case <-time.After(limit):
		s.Kill()
		return fmt.Errorf("kvreg serve did not stop within %v of SIGTERM", limit)
	}
}

// Kill ends the process at once (SIGKILL) and waits for it.
func (s *Server) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Kill()
	<-s.done
}

// output keeps a process's output for Log, and copies it to tee.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
	tee io.Writer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	if o.tee != nil {
		o.tee.Write(p)
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
