package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/vigil-cwpp/vigil/internal/console"
	"github.com/vigil-cwpp/vigil/internal/pki"
	"github.com/vigil-cwpp/vigil/internal/server"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// env is a real server (SQLite store, REST API, the console) over HTTPS
// with a pki-made certificate.
type env struct {
	st       store.Store
	srv      *server.Server
	ca       *pki.CA
	base     string // https://127.0.0.1:PORT
	password string // the bootstrapped admin's
}

func startServer(t *testing.T, agents server.Agents) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "vigil.db"))
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	ca, err := pki.LoadOrCreate(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatalf("pki.LoadOrCreate: %v", err)
	}
	tc, err := ca.ServerTLS([]string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatalf("ServerTLS: %v", err)
	}
	srv, err := server.New(server.Options{Store: st, Agents: agents, Console: console.Handler(), TLS: tc,
		// Cheap password hashing: the test is about the console.
		Argon2: server.Argon2Params{Time: 1, Memory: 8 << 10, Threads: 1}})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	pw, created, err := srv.Bootstrap(ctx, "admin")
	if err != nil || !created {
		t.Fatalf("Bootstrap: created %v, %v", created, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		st.Close()
	})
	return &env{st: st, srv: srv, ca: ca, base: "https://" + ln.Addr().String(), password: pw}
}

// noAgents is an Agents with a fixed set of connected agents that refuses
// every command.
type noAgents []string

func (a noAgents) Command(context.Context, string, wire.Command) (wire.CommandResult, error) {
	return wire.CommandResult{}, errors.New("test: no agent channel")
}
func (a noAgents) Connected() []string { return a }

// recordingAgents is one connected agent, agent-1, that accepts every
// command and remembers it.
type recordingAgents struct {
	mu   sync.Mutex
	sent []sentCommand
}

type sentCommand struct {
	agent string
	c     wire.Command
}

func (a *recordingAgents) Command(_ context.Context, id string, c wire.Command) (wire.CommandResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sent = append(a.sent, sentCommand{id, c})
	return wire.CommandResult{ID: c.ID, OK: true}, nil
}

func (a *recordingAgents) Connected() []string { return []string{"agent-1"} }

func (a *recordingAgents) commands() []sentCommand {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]sentCommand(nil), a.sent...)
}

// browser is a headless Chromium tab driven over the DevTools protocol.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu       sync.Mutex
	jsErrors []string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := vigiltest.RequireCommand(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox, // needed as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("ignore-certificate-errors", true), // the server's certificate is signed by the test's own CA
		chromedp.WindowSize(1400, 1000),
		chromedp.Env("HOME="+t.TempDir()),
	)
	b := &browser{t: t, base: base}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}), chromedp.WithListener(b.listen))
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	// Every page the test went through ran without an uncaught exception
	// or a console.error (runs before the browser is closed).
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.jsErrors {
			t.Errorf("JavaScript error in the console: %s", e)
		}
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		vigiltest.Unavailable(t, "cannot start chromium: %v", err)
	}
	b.ctx = ctx
	return b
}

// listen records uncaught exceptions and console.error calls.
func (b *browser) listen(ev any) {
	var msg string
	switch e := ev.(type) {
	case *cdpruntime.EventExceptionThrown:
		if d := e.ExceptionDetails; d != nil {
			msg = fmt.Sprintf("%s at %s:%d:%d", d.Text, d.URL, d.LineNumber+1, d.ColumnNumber+1)
			if d.Exception != nil && d.Exception.Description != "" {
				msg += ": " + d.Exception.Description
			}
		}
	case *cdpruntime.EventConsoleAPICalled:
		if e.Type != cdpruntime.ConsoleAPICalledTypeError {
			return
		}
		var parts []string
		for _, a := range e.Args {
			parts = append(parts, string(a.Value)+a.Description)
		}
		msg = "console.error: " + strings.Join(parts, " ")
	default:
		return
	}
	b.mu.Lock()
	b.jsErrors = append(b.jsErrors, msg)
	b.mu.Unlock()
}

// do runs steps and fails the test on an error, saving a screenshot of
// the page for the post-mortem.
func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.fail("%v", err)
	}
}

func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	msg := fmt.Sprintf(format, args...)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 10*time.Second)
	defer cancel()
	if png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100)); err == nil {
		p := filepath.Join(os.TempDir(), strings.ReplaceAll(b.t.Name(), "/", "_")+"-failure.png")
		if os.WriteFile(p, png, 0o644) == nil {
			msg += "\n(screenshot: " + p + ")"
		}
	}
	if body, err := chromedp.Run(sctx, chromedp.Evaluate[string]("document.body.innerText")); err == nil {
		msg += fmt.Sprintf("\npage text:\n%.3000s", body)
	}
	b.t.Fatal(msg)
}

// text returns the text content of the first element matching the CSS
// selector, waiting for it to be there.
func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.fail("text of %s: %v", sel, err)
	}
	return s
}

// waitText waits until the element matching sel contains want.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%s); return !!e && e.textContent.includes(%s); })()`, jsString(sel), jsString(want))
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		got := ""
		if s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(e => e ? e.textContent : "(no such element)")(document.querySelector(%s))`, jsString(sel)))); err == nil {
			got = s
		}
		b.fail("waiting for %s to contain %q: %v; it has %q", sel, want, err, got)
	}
}

func evalJS[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail("evaluating %s: %v", expr, err)
	}
	return v
}

func jsString(s string) string {
	j, _ := json.Marshal(s)
	return string(j)
}

// open loads a console path and waits for sel to be visible.
func (b *browser) open(path, sel string) {
	b.t.Helper()
	b.navigate(path)
	b.do(chromedp.WaitVisible(chromedp.CSS(sel)))
}

// navigate loads a console path. Chromium aborts a load with
// ERR_NETWORK_CHANGED when a network interface comes or goes (Docker
// containers starting on the same machine); such a load is tried again.
func (b *browser) navigate(path string) {
	b.t.Helper()
	var err error
	for range 5 {
		if err = chromedp.Do(b.ctx, chromedp.Navigate(b.base+path)); err == nil || !strings.Contains(err.Error(), "ERR_NETWORK_CHANGED") {
			break
		}
	}
	if err != nil {
		b.fail("loading %s: %v", path, err)
	}
}

// login logs in through the login page.
func (b *browser) login(user, password string) {
	b.t.Helper()
	b.navigate("/")
	b.do(
		chromedp.WaitVisible(chromedp.CSS("#login-user")),
		chromedp.SendKeys(chromedp.CSS("#login-user"), user),
		chromedp.SendKeys(chromedp.CSS("#login-pass"), password),
		chromedp.Click(chromedp.CSS("#login-submit")),
	)
	b.waitText("#whoami", user+" (")
}

// screenshot writes a full-page PNG to docs/screenshots/name.png when
// VIGIL_SCREENSHOTS=1.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if os.Getenv("VIGIL_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fail("screenshot %s: %v", name, err)
	}
	p := filepath.Join("..", "..", "docs", "screenshots", name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatalf("writing %s: %v", p, err)
	}
	b.t.Logf("wrote %s (%d bytes)", p, len(png))
}
