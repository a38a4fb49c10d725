package webtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"relais/cluster/nodetest"
	webembed "relais/embed"
	"relais/server/node"
)

// startNode starts a node that serves the built web client.
func startNode(t *testing.T, opts ...nodetest.Option) *nodetest.Node {
	t.Helper()
	opts = append([]nodetest.Option{nodetest.WithOptions(func(o *node.Options) { o.Web = webembed.Web() })}, opts...)
	return nodetest.Start(t, opts...)
}

// repoRoot finds the repository root (where go.mod is).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root not found")
		}
		dir = parent
	}
}

// browser is one browser profile (its own cookies and storage) with one
// tab, whose console is watched.
type browser struct {
	t     *testing.T
	name  string
	ctx   context.Context
	shots string

	// allowNet tolerates network errors in the console while the test
	// stops the node on purpose.
	allowNet atomic.Bool
	mu       sync.Mutex
	done     bool
	n        int
}

var httpStatus = regexp.MustCompile(`status of (\d{3})`)

// newBrowser launches chromium with a fresh profile in the given language
// and window size.
func newBrowser(t *testing.T, name, lang string, w, h int) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed: run scripts/setup-test-tools (it installs Debian's chromium)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// A fake microphone and camera, granted without asking (calls).
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("lang", lang),
		chromedp.Flag("accept-lang", lang),
		chromedp.Env("LANGUAGE=" + strings.ReplaceAll(lang, "-", "_")),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{t: t, name: name, ctx: ctx, shots: filepath.Join(repoRoot(t), "test-artifacts", "screenshots", t.Name())}
	if err := os.MkdirAll(b.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.console(m)
		}
	}()
	// Headless Chromium does not make windows narrower than 500 px: phone
	// widths need the viewport emulated.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.EmulateViewport(int64(w), int64(h))); err != nil {
		cancel()
		acancel()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		b.done = true
		b.mu.Unlock()
		cancel()
		acancel()
	})
	return b
}

// console logs every message and fails the test on errors: exceptions,
// console.error, CSP violations, and network failures but the API's
// expected refusals (4xx) and those during a planned outage.
func (b *browser) console(m chromedp.ConsoleMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	line := fmt.Sprintf("[%s] console %s (%s): %s %s", b.name, m.Type, m.Source, m.Text, m.URL)
	bad := m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException
	csp := strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "CSP violation")
	if bad && !csp && m.Source == "network" {
		if b.allowNet.Load() {
			bad = false
		} else if s := httpStatus.FindStringSubmatch(m.Text); s != nil && s[1][0] == '4' && strings.Contains(m.URL, "/api/v1/") {
			bad = false
		}
	}
	if bad || csp {
		b.t.Errorf("%s", line)
	} else {
		b.t.Log(line)
	}
}

const waitFor = 15 * time.Second

func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitFor)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.shot("FAILED-" + sanitize(what))
		b.t.Fatalf("[%s] %s: %v", b.name, what, err)
	}
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

func (b *browser) nav(url string) { b.t.Helper(); b.run("navigate "+url, chromedp.Navigate(url)) }

func (b *browser) visible(sel string) {
	b.t.Helper()
	b.run("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// click clicks the element sel names. An element the page re-renders
// between finding and clicking it (a room list re-sorted by a message
// that just arrived) is looked up again, as a person would click the new one.
func (b *browser) click(sel string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitFor)
	defer cancel()
	for {
		err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "Could not find node") || ctx.Err() != nil {
			b.shot("FAILED-" + sanitize("click "+sel))
			b.t.Fatalf("[%s] click %s: %v", b.name, sel, err)
		}
	}
}

// typ types text into a field (kb.Enter sends).
func (b *browser) typ(sel, text string) {
	b.t.Helper()
	b.run("type into "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Focus(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// js evaluates an expression and returns its value.
func js[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitFor)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("[%s] eval %q: %v", b.name, expr, err)
	}
	return v
}

// until waits for a JavaScript condition.
func (b *browser) until(what, cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitFor)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		b.shot("FAILED-" + sanitize(what))
		b.t.Fatalf("[%s] waiting for %s (%s): %v", b.name, what, cond, err)
	}
}

// hasText waits until an element matching sel contains text.
func (b *browser) hasText(sel, text string) {
	b.t.Helper()
	b.until(fmt.Sprintf("%q in %s", text, sel), fmt.Sprintf(`[...document.querySelectorAll(%q)].some(e => e.textContent.includes(%q))`, sel, text))
}

// shot saves a screenshot of the viewport as <step>.png.
func (b *browser) shot(step string) {
	ctx, cancel := context.WithTimeout(b.ctx, waitFor)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("[%s] screenshot %s: %v", b.name, step, err)
		return
	}
	b.n++
	name := filepath.Join(b.shots, fmt.Sprintf("%02d-%s-%s.png", b.n, b.name, step))
	if err := os.WriteFile(name, png, 0o644); err != nil {
		b.t.Errorf("write screenshot: %v", err)
	}
}

// login signs in through the form.
func (b *browser) login(base, email, password string) {
	b.t.Helper()
	b.nav(base + "/login")
	b.typ("#login-email", email)
	b.typ("#login-password", password+kb.Enter)
	b.visible(".sidebar")
}
