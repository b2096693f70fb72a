package browser

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

var (
	// kvregBin is the binary TestMain builds.
	kvregBin string
	// ci: in CI a missing browser fails the test instead of skipping it.
	ci = os.Getenv("CI") == "true"
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	start := time.Now()
	bin, err := testenv.Kvreg()
	if err != nil {
		fmt.Fprintln(os.Stderr, "browser:", err)
		return 1
	}
	kvregBin = bin
	fmt.Fprintf(os.Stderr, "browser: built kvreg in %v\n", time.Since(start).Round(time.Millisecond))
	code := m.Run()
	testenv.Cleanup()
	return code
}

// findBrowser returns the path of a Chromium, or skips the test (fails it
// with CI=true).
func findBrowser(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		if p, err := testenv.FindTool(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH (install: apt-get install -y chromium)"
	if ci {
		t.Fatalf("CI=true and the browser is not usable: %s", msg)
	}
	t.Skipf("skipping (set CI=true to make this a failure): %s", msg)
	return ""
}
