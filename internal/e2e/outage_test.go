package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/pki"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/uplink"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// TestServerPostgresOutage runs `vigil server` on a PostgreSQL of its own
// while an agent's uplink streams alerts, stops PostgreSQL in the middle
// of the stream, and starts it again: meanwhile the server says it is
// degraded and the agent keeps spooling; afterwards every alert is stored
// exactly once and the server is ok again.
func TestServerPostgresOutage(t *testing.T) {
	dsn, stopPG, startPG := vigiltest.PrivatePostgres(t)
	bin := buildVigil(t)
	dir := t.TempDir()
	srv := exec.Command(bin, "server", "--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0",
		"--state-dir", filepath.Join(dir, "server"), "--store", dsn)
	var out, errb bytes.Buffer
	srv.Stdout, srv.Stderr = &out, &errb
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
		if t.Failed() {
			t.Logf("server stdout:\n%s\nstderr:\n%s", out.String(), tail(errb.Bytes(), 4096))
		}
	})
	var apiURL, agentAddr, fp string
	waitFor(t, 60*time.Second, "the server's addresses", func() bool {
		s := out.String()
		if m := reURL.FindStringSubmatch(s); m != nil {
			apiURL = m[1]
		}
		if m := regexp.MustCompile(`agents\s+(\S+)`).FindStringSubmatch(s); m != nil {
			agentAddr = m[1]
		}
		if m := reFP.FindStringSubmatch(s); m != nil {
			fp = m[1]
		}
		return apiURL != "" && agentAddr != "" && fp != ""
	})
	tok, err := exec.Command(bin, "server", "enroll-token", "-q", "--store", dsn).Output()
	if err != nil {
		t.Fatalf("vigil server enroll-token: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := uplink.New(uplink.Options{Server: agentAddr, StateDir: filepath.Join(dir, "agent"),
		EnrollToken: strings.TrimSpace(string(tok)), CAFingerprint: fp, Hostname: "outage-node", Version: "test",
		Logger: slog.New(slog.DiscardHandler), MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()
	defer func() { cancel(); <-runDone; c.Close() }()

	send := func(from, to int) {
		for i := from; i < to; i++ {
			a := &alert.Alert{Time: time.Now().UTC(), Type: "alert", Rule: fmt.Sprintf("outage rule %d", i), Priority: "Warning",
				Source: alert.SourceRules, Output: fmt.Sprintf("alert %d", i), Count: 1,
				Event: &event.Event{Time: time.Now().UTC(), Type: event.ProcessExec, Process: event.Process{PID: int32(1000 + i), Name: "sh"}}}
			if err := c.Send(wire.KindAlert, a); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	agentID := func() string {
		as, err := st.Agents(ctx)
		if err != nil || len(as) == 0 {
			return ""
		}
		return as[0].ID
	}
	seq := func() uint64 {
		as, err := st.Agents(ctx)
		if err != nil || len(as) == 0 {
			return 0
		}
		return as[0].Seq
	}
	const n = 3000
	send(0, n/2)
	waitFor(t, 60*time.Second, "the first half stored", func() bool { return seq() >= n/2 })

	health := healthClient(fp)
	stopPG()
	send(n/2, n)
	waitFor(t, 30*time.Second, "the server to say it is degraded", func() bool { return health(apiURL) == "degraded" })
	// An outage long enough for several failed retries; VIGIL_OUTAGE=1m
	// makes it the minute.
	outage := 5 * time.Second
	if d, err := time.ParseDuration(os.Getenv("VIGIL_OUTAGE")); err == nil {
		outage = d
	}
	time.Sleep(outage)
	t.Logf("PostgreSQL was down for %s", outage)
	startPG()
	waitFor(t, 60*time.Second, "the server to be ok again", func() bool { return health(apiURL) == "ok" })
	waitFor(t, 120*time.Second, "every alert stored", func() bool { return seq() >= n })

	seen := map[string]int{}
	var total int
	for before := ""; ; {
		as, err := st.Alerts(ctx, store.AlertFilter{AgentID: agentID(), Limit: 1000, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		if len(as) == 0 {
			break
		}
		for _, a := range as {
			seen[a.Rule] += a.Count
			total++
		}
		before = as[len(as)-1].ID
	}
	if total != n || len(seen) != n {
		t.Errorf("stored %d alert rows for %d rules, want %d each once", total, len(seen), n)
	}
	for r, k := range seen {
		if k != 1 {
			t.Errorf("%s stored %d times", r, k)
		}
	}
}

// healthClient returns a function reading the server's /healthz status.
func healthClient(fingerprint string) func(base string) string {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = pki.PinnedTLS(fingerprint)
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return func(base string) string {
		resp, err := hc.Get(base + "/healthz")
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		var h struct {
			Status string `json:"status"`
		}
		json.NewDecoder(resp.Body).Decode(&h)
		return h.Status
	}
}
