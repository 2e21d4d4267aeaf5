package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// browser is a headless Debian Chromium driven through chromedp.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
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
		// The server's certificate is signed by its own CA, made at first
		// start; the API client of this test pins that CA instead.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(1400, 1000),
		chromedp.Env("HOME="+t.TempDir()),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return &browser{t: t, ctx: ctx, base: base}
}

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
	if body, err := chromedp.Run(sctx, chromedp.Evaluate[string]("document.body.innerText")); err == nil {
		msg += fmt.Sprintf("\npage text:\n%.3000s", body)
	}
	b.t.Fatal(msg)
}

// open loads a console path, retrying a load Chromium aborts because a
// network interface came or went (containers starting), and waits for sel.
func (b *browser) open(path, sel string) {
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
	b.do(chromedp.WaitVisible(chromedp.CSS(sel)))
}

func (b *browser) login(user, password string) {
	b.t.Helper()
	b.open("/", "#login-user")
	b.do(chromedp.SendKeys(chromedp.CSS("#login-user"), user),
		chromedp.SendKeys(chromedp.CSS("#login-pass"), password),
		chromedp.Click(chromedp.CSS("#login-submit")))
	b.waitText("#whoami", user+" (")
}

// click clicks sel and, when then is not empty, waits for it to be visible.
func (b *browser) click(sel, then string) {
	b.t.Helper()
	steps := []chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.CSS(sel))}
	if then != "" {
		steps = append(steps, chromedp.WaitVisible(chromedp.CSS(then)))
	}
	b.do(steps...)
}

// waitText waits until the element matching sel contains want.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	w, _ := json.Marshal(want)
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%s); return !!e && e.textContent.includes(%s); })()`, q, w)
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		b.fail("waiting for %s to contain %q: %v", sel, want, err)
	}
}
