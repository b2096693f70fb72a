// Package pgtest starts a real PostgreSQL for the tests of a package, from
// the operating system's PostgreSQL binaries (Debian's postgresql package:
// /usr/lib/postgresql/<version>/bin, the newest version found). One server
// per test binary (Main, from TestMain), one fresh database per test
// (NewDatabase), and a proxy that cuts the answer to a COMMIT
// (NewCommitCut). It owns that server's directory, port and lifetime and
// nothing else; it is imported by tests only. PGTEST_BIN names another
// directory of binaries; PGTEST_CONF adds lines to the server's
// postgresql.conf (e.g. log_min_error_statement = error), and PGTEST_LOG
// names a file to copy the server's log to when the test binary ends, so
// that what PostgreSQL logged (the statements that failed, say) outlives
// the server's directory.
//
// The server runs with fsync=off and synchronous_commit=off: the tests that
// use it check kvreg's transactions, not PostgreSQL's durability.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// InstallHint says how to get the binaries.
const InstallHint = "PostgreSQL is not installed: apt-get install postgresql (the tests run initdb and pg_ctl from /usr/lib/postgresql/<version>/bin)"

var (
	mu      sync.Mutex
	srv     *server
	missing string // why no server runs, when none does
)

type server struct {
	bin, dir, data, sock string
	port                 int
	cred                 *syscall.Credential // the postgres user's, when run as root
}

// Main starts a server, runs the tests and stops the server. Without
// PostgreSQL the tests that ask for a database are skipped, or with
// CI=true in the environment the run fails.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main for a TestMain with more to do after the tests: it returns
// the exit code instead of exiting.
func Run(m *testing.M) int { return run(m) }

func run(m *testing.M) int {
	bin, err := binDir()
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "pgtest: %v (CI=true: a missing PostgreSQL fails the tests)\n", err)
			return 1
		}
		missing = err.Error()
		return m.Run()
	}
	s, err := start(bin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 1
	}
	mu.Lock()
	srv = s
	mu.Unlock()
	defer s.destroy()
	return m.Run()
}

// binDir finds the newest /usr/lib/postgresql/<version>/bin with initdb.
func binDir() (string, error) {
	if d := os.Getenv("PGTEST_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("PGTEST_BIN=%s: %w; %s", d, err, InstallHint)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(dirs) == 0 {
		return "", errors.New(InstallHint)
	}
	version := func(p string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return n
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	return filepath.Dir(dirs[0]), nil
}

func start(bin string) (*server, error) {
	dir, err := os.MkdirTemp("", "kvreg-pgtest-")
	if err != nil {
		return nil, err
	}
	s := &server{bin: bin, dir: dir, data: filepath.Join(dir, "data"), sock: filepath.Join(dir, "sock")}
	if err := os.Mkdir(s.sock, 0o755); err != nil {
		return nil, err
	}
	if os.Getuid() == 0 {
		// initdb refuses root: run the server as the postgres user, which
		// must own the directory and traverse the path to it.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and no postgres user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, p := range []string{dir, s.sock} {
			if err := os.Chown(p, uid, gid); err != nil {
				os.RemoveAll(dir)
				return nil, err
			}
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if out, err := s.cmd("initdb", "-D", s.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.port = port
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"+
		"fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 300\nshared_buffers = 32MB\n%s\n", port, s.sock, os.Getenv("PGTEST_CONF"))
	f, err := os.OpenFile(filepath.Join(s.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.watchdog()
	return s, nil
}

// watchdog stops the server and removes its directory once this process
// is gone, however it ended (a panic or a kill skips Main's cleanup).
func (s *server) watchdog() {
	script := fmt.Sprintf(`while [ -d /proc/%d ]; do sleep 1; done; %s -D %s stop -m immediate >/dev/null 2>&1; rm -rf %s`,
		os.Getpid(), filepath.Join(s.bin, "pg_ctl"), s.data, s.dir)
	c := exec.Command("/bin/sh", "-c", script)
	c.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setsid: true}
	if c.Start() == nil {
		go c.Wait() //nolint:errcheck // reaped if it ends first
	}
}

func (s *server) cmd(name string, args ...string) *exec.Cmd {
	c := exec.Command(filepath.Join(s.bin, name), args...)
	c.Dir = s.dir
	if s.cred != nil {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return c
}

// Start starts the server (again) on its port and data.
func (s *server) Start() error {
	if out, err := s.cmd("pg_ctl", "-D", s.data, "-l", filepath.Join(s.dir, "log"), "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return nil
}

// Stop stops the server, cutting its connections (-m fast: with
// synchronous_commit=off an immediate stop would lose the last commits,
// which a test of kvreg must not mistake for kvreg's loss).
func (s *server) Stop() error {
	if out, err := s.cmd("pg_ctl", "-D", s.data, "-w", "stop", "-m", "fast").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

func (s *server) destroy() {
	s.cmd("pg_ctl", "-D", s.data, "-w", "stop", "-m", "immediate").Run() //nolint:errcheck // best effort at exit
	if dst := os.Getenv("PGTEST_LOG"); dst != "" {
		if log, err := os.ReadFile(filepath.Join(s.dir, "log")); err == nil {
			os.WriteFile(dst, log, 0o644) //nolint:errcheck // best effort at exit
		}
	}
	os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func current(t testing.TB) *server {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if srv == nil {
		if missing != "" {
			t.Skip(missing)
		}
		t.Fatal("pgtest: no server; call pgtest.Main(m) from TestMain")
	}
	return srv
}

func (s *server) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// NewDatabase creates an empty database for t, dropped when t ends, and
// returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	s := current(t)
	var b [6]byte
	rand.Read(b[:]) //nolint:errcheck // never fails
	name := "t_" + hex.EncodeToString(b[:])
	if err := s.admin(fmt.Sprintf("CREATE DATABASE %s", name)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if err := s.admin(fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.url(name)
}

func (s *server) admin(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}

// Stop stops the test binary's server (connections are cut) until Start.
func Stop(t testing.TB) {
	t.Helper()
	if err := current(t).Stop(); err != nil {
		t.Fatal(err)
	}
}

// Start starts the server again after Stop, on the same port and data.
func Start(t testing.TB) {
	t.Helper()
	if err := current(t).Start(); err != nil {
		t.Fatal(err)
	}
}

// Restart stops and starts the server.
func Restart(t testing.TB) {
	t.Helper()
	Stop(t)
	Start(t)
}

// Bin is the directory of the PostgreSQL binaries in use ("" without a
// server).
func Bin() string {
	mu.Lock()
	defer mu.Unlock()
	if srv == nil {
		return ""
	}
	return srv.bin
}
