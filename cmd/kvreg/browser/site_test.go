package browser

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api/auth/authtest"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

// access: alice may do everything; bob may pull public/* only, as may
// anonymous callers.
const access = `  - repos: ["*"]
    users: [alice]
    actions: [pull, push, delete]
  - repos: ["public/*"]
    users: [bob]
    actions: [pull]
  - repos: ["public/*"]
    anonymous: true
    actions: [pull]
`

// startSite runs kvreg serve with users alice and bob (password: name +
// "-pw") and the rules above.
func startSite(t *testing.T) *testenv.Server {
	t.Helper()
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	conf := filepath.Join(dir, "kvreg.yaml")
	if err := os.WriteFile(htpasswd, []byte(authtest.Htpasswd(t, "alice", "bob")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("htpasswd: %s\naccess:\n%s", htpasswd, access)), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := testenv.Start(kvregBin, testenv.Options{Root: filepath.Join(dir, "data"), Args: []string{"--config", conf}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(10 * time.Second); err != nil {
			t.Errorf("stop kvreg: %v", err)
		}
		if t.Failed() {
			t.Logf("kvreg log:\n%s", testenv.Tail(srv.Log(), 6000))
		}
	})
	return srv
}

// browser is one headless Chromium; each user gets a tab of their own
// (a separate browser context: cookies are not shared).
type browser struct {
	t        *testing.T
	ctx      context.Context
	shots    string // where screenshots go
	shotsOut []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := findBrowser(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // as root, as CI runs
		chromedp.DisableGPU,
		chromedp.Headless,
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	shots := filepath.Join(os.TempDir(), "kvreg-ui-screenshots")
	if a := os.Getenv("KVREG_ARTIFACTS"); a != "" {
		shots = filepath.Join(a, "ui")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, ctx: actx, shots: shots}
	t.Cleanup(func() {
		if len(b.shotsOut) > 0 {
			t.Logf("screenshots in %s: %s", shots, strings.Join(b.shotsOut, ", "))
		}
	})
	return b
}

// tab is a browser tab signed in as user (Basic credentials on every
// request, as the browser sends them once its prompt was answered), or
// anonymous when user is "".
type tab struct {
	b   *browser
	ctx context.Context
}

func (b *browser) tab(user string) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	// The first action starts the browser (or the tab), with no timeout of
	// its own: the browser lives as long as that call's context.
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("start the browser: %v", err)
	}
	if user != "" {
		cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + user + "-pw"))
		if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders,
			network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Basic " + cred}}); err != nil {
			b.t.Fatalf("set %s's credentials: %v", user, err)
		}
	}
	return &tab{b: b, ctx: ctx}
}

// get runs one action that answers a value, failing the test with what
// was being done and where.
func get[T any](tb *tab, what string, a chromedp.Action[T]) T {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		loc, _ := chromedp.Run(tb.ctx, chromedp.Location())
		tb.b.t.Fatalf("%s (at %s): %v", what, loc, err)
	}
	return v
}

// run runs actions in order.
func (tb *tab) run(what string, acts ...chromedp.Action[chromedp.Void]) {
	tb.b.t.Helper()
	get(tb, what, chromedp.Steps(acts...))
}

// shot saves a full-page PNG of the page shown as NAME.png.
func (tb *tab) shot(name string) {
	tb.b.t.Helper()
	buf := get(tb, "screenshot "+name, chromedp.FullScreenshot(100))
	file := filepath.Join(tb.b.shots, name+".png")
	if err := os.WriteFile(file, buf, 0o644); err != nil {
		tb.b.t.Fatal(err)
	}
	tb.b.shotsOut = append(tb.b.shotsOut, name+".png")
}

// attr reads an attribute of the first element sel matches.
func (tb *tab) attr(sel, name string) string {
	tb.b.t.Helper()
	res := get(tb, "read "+sel+" @"+name, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if !res.Exists {
		tb.b.t.Fatalf("%s has no attribute %s", sel, name)
	}
	return res.Value
}

// count is how many elements sel matches now (0 allowed).
func (tb *tab) count(sel string) int {
	tb.b.t.Helper()
	return get(tb, "count "+sel, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
}

// text is the text of the first element sel matches.
func (tb *tab) text(sel string) string {
	tb.b.t.Helper()
	return get(tb, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// visit opens a URL and waits for an element of the page.
func (tb *tab) visit(u, sel string) {
	tb.b.t.Helper()
	tb.run("open "+u, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// follow clicks what sel matches and waits for an element of the next page.
func (tb *tab) follow(sel, next string) {
	tb.b.t.Helper()
	tb.run("click "+sel, chromedp.Click(chromedp.CSS(sel)), chromedp.WaitVisible(chromedp.CSS(next)))
}
