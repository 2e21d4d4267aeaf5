package console_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-cwpp/vigil/internal/server"
	"github.com/vigil-cwpp/vigil/internal/store"
)

// TestBrowserLoginAndDashboard logs in through the login page and checks
// the dashboard shows the seeded numbers; a wrong password stays on the
// login page with an error.
func TestBrowserLoginAndDashboard(t *testing.T) {
	e := startServer(t, noAgents{"agent-1"})
	seed(t, e.st)
	b := newBrowser(t, e.base)

	// Not logged in: any page sends to the login page.
	b.open("/alerts", "#login-form")
	if loc := evalJS[string](b, "location.pathname + location.search"); loc != "/login?next=%2Falerts" {
		t.Errorf("unauthenticated /alerts went to %q, want the login page with next=/alerts", loc)
	}
	b.do(chromedp.SendKeys(chromedp.CSS("#login-user"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#login-pass"), "wrong password"),
		chromedp.Click(chromedp.CSS("#login-submit")))
	b.waitText("#login-error", "Wrong user name or password")

	b.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#login-pass').value = ''`),
		chromedp.SendKeys(chromedp.CSS("#login-pass"), e.password),
		chromedp.Click(chromedp.CSS("#login-submit")))
	b.waitText("#whoami", "admin (admin)")
	// next= brought us back to the alerts page.
	b.waitText("#alerts-body", "Terminal shell in container")
	// The list refreshes by itself: an alert stored now shows up.
	late := lateAlert(t)
	if _, err := e.st.Apply(context.Background(), &store.Batch{Alerts: []store.Alert{late}}); err != nil {
		t.Fatal(err)
	}
	b.waitText("#alerts-body", late.Rule)
	if _, err := e.st.Alert(context.Background(), late.ID); err != nil {
		t.Fatal(err)
	}
	b.do(chromedp.Click(chromedp.CSS(`[data-testid="nav-dashboard"]`)))
	b.waitText(`[data-testid="dash-total"]`, "4")
	checks := map[string]string{
		`[data-testid="dash-total"] .tile-value`:               "4",
		`[data-testid="dash-agents"] .tile-value`:              "1 / 1",
		`[data-testid="dash-sev-critical"] .tile-value`:        "2",
		`[data-testid="dash-sev-warning"] .tile-value`:         "1",
		`[data-testid="dash-sev-notice"] .tile-value`:          "1",
		`[data-testid="by-priority-critical"] td:nth-child(2)`: "2",
	}
	for sel, want := range checks {
		if got := strings.TrimSpace(b.text(sel)); got != want {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}
	if got := b.text(`[data-testid="top-rules"]`); !strings.Contains(got, "Terminal shell in container") || !strings.Contains(got, "Late arrival") {
		t.Errorf("top rules %q", got)
	}
	if got := b.text(`[data-testid="top-techniques"]`); !strings.Contains(got, "T1059.004") || !strings.Contains(got, "T1543") {
		t.Errorf("top techniques %q, want T1059.004 and T1543", got)
	}
	// The chart has bars for the two priorities seen.
	if n := evalJS[int](b, `document.querySelectorAll('[data-testid="alerts-chart"] rect.sevfill-critical').length`); n < 1 {
		t.Errorf("chart has %d critical bars, want at least 1", n)
	}
	if got := b.text(`[data-testid="kev-exposure"] tbody tr`); !strings.Contains(got, "nginx:1.25") {
		t.Errorf("KEV exposure %q does not name the nginx image", got)
	}
	if got := b.text(`[data-testid="dash-kev"] .tile-value`); got != "1" {
		t.Errorf("images with KEV = %q, want 1", got)
	}
	b.screenshot("dashboard")

	b.open("/agents", `[data-testid="agents-table"]`)
	if got := b.text(`[data-testid="agent-agent-1"]`); !strings.Contains(got, "node-1") || !strings.Contains(got, "connected") || strings.Contains(got, "disconnected") {
		t.Errorf("agent row %q, want node-1 connected", got)
	}
	b.open("/compliance", `[data-testid="compliance-table"]`)
	if got := b.text(`[data-testid="compliance-5.4"]`); !strings.Contains(got, "privileged containers") || !strings.Contains(got, "fail") {
		t.Errorf("compliance row %q", got)
	}
	if got := b.text(`[data-testid="compliance-summary"]`); got != "fail 1 · manual 1" {
		t.Errorf("compliance summary %q", got)
	}

	// A new tab shares the session cookie but not sessionStorage: it
	// picks the session up from /api/v1/me instead of asking to log in.
	tab, closeTab := chromedp.NewContext(b.ctx)
	tb := &browser{t: t, ctx: tab, base: b.base}
	tb.open("/incidents", `[data-testid="incidents-table"]`)
	if got := tb.text("#whoami"); got != "admin (admin)" {
		t.Errorf("new tab whoami %q", got)
	}
	closeTab()

	// Log out: back to the login page, and the API refuses the old session.
	b.do(chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	b.open("/incidents", "#login-form")
}

// TestBrowserAlertPage opens an alert from the list and checks its process
// tree (ancestors → parent → process with pid, exe, command line and user),
// workload, MITRE tags and raw event.
func TestBrowserAlertPage(t *testing.T) {
	e := startServer(t, noAgents{})
	s := seed(t, e.st)
	b := newBrowser(t, e.base)
	b.login("admin", e.password)

	// Paging, two alerts a page: the three seeded are two pages.
	b.open("/alerts?limit=2", `[data-testid="alerts-table"]`)
	rows := func() []string {
		return evalJS[[]string](b, `[...document.querySelectorAll('[data-testid="alerts-table"] tbody tr')].map(tr => tr.dataset.testid)`)
	}
	page1 := rows()
	if len(page1) != 2 || page1[0] != "alert-row-"+s.xss.ID || page1[1] != "alert-row-"+s.etc.ID {
		t.Errorf("first page %v, want the two newest (xss, etc)", page1)
	}
	b.do(chromedp.Click(chromedp.CSS("#page-older")))
	b.waitText("#alerts-body", "Terminal shell in container")
	if got := rows(); len(got) != 1 || got[0] != "alert-row-"+s.shell.ID {
		t.Errorf("second page %v, want the oldest alone", got)
	}
	if evalJS[bool](b, `!document.querySelector('#page-newer').disabled && !!document.querySelector('#page-older').disabled`) != true {
		t.Error("on the last page Newer should be enabled and Older disabled")
	}
	b.do(chromedp.Click(chromedp.CSS("#page-newer")))
	b.waitText("#alerts-body", "Write below etc")

	b.open("/alerts", `[data-testid="alerts-table"]`)
	b.waitText("#alerts-body", "Write below etc")
	b.screenshot("alerts")
	// Filter: at least critical leaves the two critical alerts.
	b.do(chromedp.SetValue(chromedp.CSS("#f-severity"), "critical"), chromedp.Click(chromedp.CSS("#f-apply")))
	b.waitText("#alerts-status", "2 shown")
	if got := b.text("#alerts-body"); strings.Contains(got, "Write below etc") {
		t.Errorf("severity filter critical still lists the warning: %q", got)
	}
	b.do(chromedp.Click(chromedp.CSS(`[data-testid="alert-row-` + s.shell.ID + `"] a`)))
	b.waitText(`[data-testid="alert-rule"]`, "Terminal shell in container")

	// The process tree, oldest first.
	roles := evalJS[[]string](b, `[...document.querySelectorAll('[data-testid="process-tree"] > li')].map(li => li.dataset.testid)`)
	if strings.Join(roles, ",") != "ptree-ancestor,ptree-ancestor,ptree-parent,ptree-process" {
		t.Errorf("process tree rows %v, want two ancestors, the parent, the process", roles)
	}
	tree := evalJS[[]string](b, `[...document.querySelectorAll('[data-testid="process-tree"] > li')].map(li => li.textContent)`)
	wantTree := []string{"pid 4001/usr/sbin/nginxnginx -g daemon off;", "pid 4100/usr/sbin/nginxnginx: worker process", "pid 4200/usr/bin/bashbash -iuser www-data", "pid 4242(42 in container)/usr/bin/dashsh -c iduser www-data"}
	for i, w := range wantTree {
		if i >= len(tree) || !strings.Contains(tree[i], w) {
			t.Errorf("process tree row %d = %q, want it to contain %q", i, at(tree, i), w)
		}
	}
	for sel, want := range map[string]string{
		`[data-testid="wl-container-name"]`: "web-1",
		`[data-testid="wl-container-id"]`:   s.shell.ContainerID,
		`[data-testid="wl-image"]`:          "nginx:1.25",
		`[data-testid="wl-host"]`:           "node-1",
		`[data-testid="wl-class"]`:          "web",
		`[data-testid="alert-techniques"]`:  "T1059.004",
		`[data-testid="alert-tactics"]`:     "TA0002 Execution",
	} {
		if got := b.text(sel); got != want {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}
	raw := b.text(`[data-testid="raw-event"]`)
	for _, w := range []string{`"cmd_line": "sh -c id"`, `"container_name": "web-1"`, `"rule": "Terminal shell in container"`} {
		if !strings.Contains(raw, w) {
			t.Errorf("raw event lacks %s:\n%.800s", w, raw)
		}
	}
	b.screenshot("alert")
	// No agent channel here: Kill is offered but the server refuses it,
	// and the page says so.
	b.do(chromedp.Click(chromedp.CSS("#respond-kill")), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")))
	if got := b.text("#confirm-text"); !strings.Contains(got, "4242") {
		t.Errorf("confirmation %q does not name pid 4242", got)
	}
	b.do(chromedp.Click(chromedp.CSS("#confirm-yes")))
	b.waitText("#response-result", "is not connected")
	if cls := evalJS[string](b, `document.querySelector('#response-result').className`); cls != "error" {
		t.Errorf("a refused kill shows as %q, want the error style; text %q", cls, b.text("#response-result"))
	}

	// The incident list, and its priority filter.
	b.open("/incidents", `[data-testid="incident-row-`+s.incident+`"]`)
	if got := b.text(`[data-testid="incident-row-` + s.incident + `"]`); !strings.Contains(got, "T1059.004") || !strings.Contains(got, "web-1") {
		t.Errorf("incident row %q", got)
	}
	b.do(chromedp.SetValue(chromedp.CSS("#i-severity"), "emergency"), chromedp.Click(chromedp.CSS("#i-apply")))
	b.waitText("#incidents-body", "No incidents match.")

	// The incident page shows the technique chain and the alert.
	b.open("/incidents/"+s.incident, `[data-testid="technique-chain"]`)
	if got := b.text(`[data-testid="technique-chain"]`); got != "T1059.004" {
		t.Errorf("technique chain %q", got)
	}
	b.waitText(`[data-testid="incident-alerts"]`, "Terminal shell in container")
	b.screenshot("incident")
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(missing)"
}

// TestBrowserAlertOutputIsText: an alert whose rule, output, executable and
// command line are HTML shows them as text, in the list and on its page;
// no element is made from them and no script runs.
func TestBrowserAlertOutputIsText(t *testing.T) {
	e := startServer(t, noAgents{})
	s := seed(t, e.st)
	b := newBrowser(t, e.base)
	b.login("admin", e.password)

	b.open("/alerts", `[data-testid="alert-row-`+s.xss.ID+`"]`)
	if got := b.text(`[data-testid="alert-row-` + s.xss.ID + `"] .output`); got != xssOutput {
		t.Errorf("output cell %q, want the literal %q", got, xssOutput)
	}
	b.open("/alerts/"+s.xss.ID, `[data-testid="alert-output"]`)
	if got := b.text(`[data-testid="alert-output"]`); got != xssOutput {
		t.Errorf("alert output %q, want the literal %q", got, xssOutput)
	}
	if got := b.text(`[data-testid="alert-rule"]`); got != "Suspicious <b>markup</b> rule" {
		t.Errorf("rule %q", got)
	}
	if got := b.text(`[data-testid="ptree-process"] .pexe`); !strings.Contains(got, `<img src=x onerror=`) {
		t.Errorf("executable %q, want the literal markup", got)
	}
	for _, q := range []string{`img`, `main script`, `main b`, `[onerror]`} {
		if n := evalJS[int](b, `document.querySelectorAll(`+jsString(q)+`).length`); n != 0 {
			t.Errorf("%d %s elements in the page: markup from the alert was parsed", n, q)
		}
	}
	if title := evalJS[string](b, "document.title"); title != "Vigil" {
		t.Errorf("document.title %q: a script from the alert ran", title)
	}
}

// TestBrowserInventoryAndProfiles checks the inventory lists the image with
// its KEV count, the image page lists the findings KEV first with the SBOM
// link, and the profiles page shows what was learned and the mode.
func TestBrowserInventoryAndProfiles(t *testing.T) {
	agents := &recordingAgents{}
	e := startServer(t, agents)
	s := seed(t, e.st)
	b := newBrowser(t, e.base)
	b.login("admin", e.password)

	b.open("/inventory", `[data-testid="images-table"]`)
	row := b.text(`[data-testid="image-` + s.digest + `"]`)
	if !strings.Contains(row, "nginx:1.25") || !strings.Contains(row, "sha256:111111111111") {
		t.Errorf("image row %q", row)
	}
	kev := evalJS[string](b, `document.querySelector('[data-testid="image-`+s.digest+`"] td:nth-child(3)').textContent`)
	if kev != "1" {
		t.Errorf("KEV column %q, want 1", kev)
	}
	order := evalJS[[]string](b, `[...document.querySelectorAll('[data-testid="images-table"] tbody tr td:first-child')].map(td => td.textContent)`)
	if strings.Join(order, ",") != "nginx:1.25,postgres:16,alpine:3.20" {
		t.Errorf("images in the order %v, want KEV first, then by critical: nginx, postgres, alpine", order)
	}
	b.screenshot("inventory")
	b.do(chromedp.Click(chromedp.CSS(`[data-testid="inv-tab-container"]`)))
	b.waitText(`[data-testid="inventory-table"]`, "web-1")

	b.open("/images/"+s.digest, `[data-testid="findings-table"]`)
	ids := evalJS[[]string](b, `[...document.querySelectorAll('[data-testid="findings-table"] tbody tr td:nth-child(2)')].map(td => td.textContent)`)
	if len(ids) != 2 || ids[0] != "CVE-2023-44487" {
		t.Errorf("findings %v, want 2 with the KEV one (CVE-2023-44487) first", ids)
	}
	b.screenshot("image")
	href := evalJS[string](b, `document.querySelector('[data-testid="sbom-download"]').getAttribute('href')`)
	if want := "/api/v1/images/" + strings.ReplaceAll(s.digest, ":", "%3A") + "/sbom"; href != want {
		t.Errorf("SBOM link %q, want %q", href, want)
	}
	sbom, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`fetch(document.querySelector('[data-testid="sbom-download"]').href).then(r => r.ok ? r.text() : 'HTTP ' + r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fetching the SBOM link: %v", err)
	}
	if !strings.Contains(sbom, "CycloneDX") {
		t.Errorf("the SBOM link gives %.200q", sbom)
	}

	b.open("/profiles", `[data-testid="profile-web"]`)
	for sel, want := range map[string]string{
		`[data-testid="profile-web-executables"]`: "/usr/sbin/nginx",
		`[data-testid="profile-web-pairs"]`:       "/docker-entrypoint.sh → /usr/sbin/nginx",
		`[data-testid="profile-web-listen"]`:      "tcp/80",
		`[data-testid="profile-web-outbound"]`:    "10.0.0.0/8:5432",
		`[data-testid="profile-web-writes"]`:      "/var/cache/nginx/**",
	} {
		if got := b.text(sel); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to contain %q", sel, got, want)
		}
	}
	if mode := evalJS[string](b, `document.querySelector('[data-testid="mode-web"]').value`); mode != "monitor" {
		t.Errorf("mode switch shows %q, want monitor", mode)
	}
	b.screenshot("profiles")

	// The switch: protect, confirmed, becomes a set_mode command to the
	// profile's agent.
	b.do(chromedp.SetValue(chromedp.CSS(`[data-testid="mode-web"]`), "protect"), // fires change
		chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")))
	if got := b.text("#confirm-text"); !strings.Contains(got, "protect") || !strings.Contains(got, "blocked") {
		t.Errorf("confirmation %q", got)
	}
	b.do(chromedp.Click(chromedp.CSS("#confirm-yes")))
	b.waitText(`[data-testid="profile-web"]`, "mode: protect")
	cmds := agents.commands()
	if len(cmds) != 1 || cmds[0].agent != "agent-1" || cmds[0].c.Kind != "set_mode" || cmds[0].c.Class != "web" || cmds[0].c.Mode != "protect" || cmds[0].c.Actor != "admin" {
		t.Errorf("commands sent: %+v, want one set_mode web protect to agent-1 by admin", cmds)
	}
	b.open("/profiles", `[data-testid="profile-web"]`)
	if mode := evalJS[string](b, `document.querySelector('[data-testid="mode-web"]').value`); mode != "protect" {
		t.Errorf("after the switch and a reload the mode shows %q, want protect", mode)
	}
}

// TestBrowserAdmin creates an enrollment token and an API token on the
// admin page and finds both in the audit log.
func TestBrowserAdmin(t *testing.T) {
	e := startServer(t, noAgents{})
	b := newBrowser(t, e.base)
	b.login("admin", e.password)
	b.open("/admin", `[data-testid="enroll-create"]`)
	b.do(chromedp.Click(chromedp.CSS(`[data-testid="enroll-create"]`)))
	b.waitText("#enroll-out", "Enrollment token")
	if tok := b.text(`[data-testid="enroll-token"]`); len(tok) < 16 {
		t.Errorf("enrollment token %q", tok)
	}
	b.do(chromedp.SendKeys(chromedp.CSS("#token-name"), "ci-pipeline"),
		chromedp.SetValue(chromedp.CSS("#token-role"), "analyst"),
		chromedp.Click(chromedp.CSS(`[data-testid="token-create"]`)))
	b.waitText(`[data-testid="tokens-table"]`, "ci-pipeline")
	if tok := b.text(`[data-testid="api-token"]`); len(tok) < 16 {
		t.Errorf("API token %q", tok)
	}
	if got := b.text(`[data-testid="tokens-table"] tbody tr`); !strings.Contains(got, "analyst") {
		t.Errorf("token row %q, want role analyst", got)
	}
	b.open("/audit", `[data-testid="audit-table"]`)
	for _, want := range []string{"create-enroll-token", "create-token"} {
		b.waitText(`[data-testid="audit-table"]`, want)
	}
}

// TestBrowserReadOnlyAndExpiredSession: a read-only user sees no admin
// pages and cannot press the respond buttons or the mode switch; a session
// ended behind the page's back sends the next navigation to the login page.
func TestBrowserReadOnlyAndExpiredSession(t *testing.T) {
	e := startServer(t, noAgents{"agent-1"})
	s := seed(t, e.st)
	hash, err := server.HashPassword("viewer password 1", server.Argon2Params{Time: 1, Memory: 8 << 10, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateUser(context.Background(), store.User{Name: "viewer", PasswordHash: hash, Role: store.RoleReadOnly, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, e.base)
	b.login("viewer", "viewer password 1")
	if got := b.text("#whoami"); got != "viewer (read-only)" {
		t.Errorf("whoami %q", got)
	}
	nav := evalJS[[]string](b, `[...document.querySelectorAll('#nav a')].map(a => a.textContent)`)
	if strings.Contains(strings.Join(nav, ","), "Admin") || strings.Contains(strings.Join(nav, ","), "Audit") {
		t.Errorf("read-only menu %v has admin pages", nav)
	}
	b.open("/alerts/"+s.shell.ID, "#respond-buttons")
	if n := evalJS[int](b, `[...document.querySelectorAll('#respond-buttons button')].filter(b => !b.disabled).length`); n != 0 {
		t.Errorf("%d respond buttons enabled for a read-only user", n)
	}
	b.open("/profiles", `[data-testid="mode-web"]`)
	if !evalJS[bool](b, `document.querySelector('[data-testid="mode-web"]').disabled`) {
		t.Error("mode switch enabled for a read-only user")
	}

	// The session ends on the server (as when it expires); the page does
	// not know until its next call.
	status, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`fetch('/api/v1/logout', {method: 'POST', headers: {'X-Vigil-CSRF': JSON.parse(sessionStorage.getItem('vigil.session')).csrf}}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || status != 200 {
		t.Fatalf("logout behind the page's back: status %d, %v", status, err)
	}
	b.do(chromedp.Click(chromedp.CSS(`[data-testid="nav-incidents"]`)), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	if loc := evalJS[string](b, "location.pathname + location.search"); loc != "/login?next=%2Fincidents" {
		t.Errorf("after the session ended the page went to %q", loc)
	}
	if topbar := evalJS[bool](b, `document.querySelector('#topbar').hidden`); !topbar {
		t.Error("the top bar still shows after the session ended")
	}
}

// TestBrowserEveryPage loads every page of the console on the seeded store
// and checks each renders its heading and no error (the browser's
// JavaScript error guard runs on all of them).
func TestBrowserEveryPage(t *testing.T) {
	e := startServer(t, noAgents{"agent-1"})
	s := seed(t, e.st)
	b := newBrowser(t, e.base)
	b.login("admin", e.password)
	pages := []struct{ path, heading string }{
		{"/", "Dashboard"}, {"/?since=720h", "Dashboard"},
		{"/alerts", "Alerts"}, {"/alerts?since=all&workload=web-1&rule=Terminal", "Alerts"},
		{"/alerts/" + s.etc.ID, "Write below etc"},
		{"/incidents", "Incidents"}, {"/incidents/" + s.incident, "Terminal shell in container on web-1"},
		{"/inventory?kind=host", "Inventory"}, {"/inventory?kind=container", "Inventory"}, {"/inventory?kind=image", "Inventory"},
		{"/inventory?kind=k8s_workload", "Inventory"}, {"/inventory?kind=function", "Inventory"},
		{"/images/" + s.digest, "nginx:1.25"},
		{"/profiles", "Profiles"}, {"/responses", "Responses"}, {"/agents", "Agents"}, {"/compliance", "Compliance"},
		{"/audit", "Audit log"}, {"/admin", "Admin"},
		{"/no/such/page", "Not found"},
	}
	for _, p := range pages {
		b.open(p.path, "main h1")
		b.waitText("main h1", p.heading)
		if n := evalJS[int](b, `document.querySelectorAll('[data-testid="error"]').length`); n != 0 {
			t.Errorf("%s shows an error: %s", p.path, b.text(`[data-testid="error"]`))
		}
	}
}

// TestBrowserCatchesJSErrors checks the guard every browser test relies on:
// an uncaught exception and a console.error in the page are recorded.
func TestBrowserCatchesJSErrors(t *testing.T) {
	e := startServer(t, noAgents{})
	b := newBrowser(t, e.base)
	b.open("/login", "#login-form")
	b.do(chromedp.Evaluate[chromedp.Void](`setTimeout(() => { throw new Error('deliberate test exception') }, 0); console.error('deliberate console error')`))
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		got := strings.Join(b.jsErrors, "\n")
		if strings.Contains(got, "deliberate test exception") && strings.Contains(got, "deliberate console error") {
			b.jsErrors = nil // expected: keep the guard from failing this test
			b.mu.Unlock()
			break
		}
		b.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("the JavaScript error guard recorded %q, want the thrown exception and the console.error", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
