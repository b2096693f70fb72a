package e2etls

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

var (
	kvregBin string
	ci       = os.Getenv("CI") == "true"
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	bin, err := testenv.Kvreg()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2etls:", err)
		return 1
	}
	kvregBin = bin
	code := m.Run()
	daemons.Stop()
	testenv.Cleanup()
	return code
}

// missing skips the test, or fails it in CI.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if ci {
		t.Fatalf("CI=true and docker is not usable: %s", msg)
	}
	t.Skipf("skipping (set CI=true to make this a failure): %s", msg)
}

// result is what a command printed.
type result struct {
	out    string // stdout, then stderr
	stdout string
	err    error
}

// runCmd runs a command with a time limit, an environment and stdin.
func runCmd(t testing.TB, timeout time.Duration, env []string, stdin string, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(testenv.CleanEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (time limit %v)", ctx.Err(), timeout)
	}
	t.Logf("$ %s %s  (%v)", filepath.Base(bin), strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return result{out: stdout.String() + stderr.String(), stdout: stdout.String(), err: err}
}
