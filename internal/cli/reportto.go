package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/vigil-cwpp/vigil/internal/pki"
)

// reportFlags send a scan to a server (`vigil scan --report-to`).
type reportFlags struct {
	url           string
	token         string
	caFile        string
	caFingerprint string
}

// client is an HTTPS client trusting the server as the flags say: a pinned
// CA fingerprint, a CA file, or the system roots.
func (rf *reportFlags) client() (*http.Client, error) {
	var conf *tls.Config
	switch {
	case rf.caFingerprint != "":
		conf = pki.PinnedTLS(rf.caFingerprint)
	case rf.caFile != "":
		b, err := os.ReadFile(rf.caFile)
		if err != nil {
			return nil, fmt.Errorf("--report-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--report-ca %s: no PEM certificate in it", rf.caFile)
		}
		conf = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = conf
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute}, nil
}

// uploadScan posts a scan (the JSON report and, when there is one, its
// CycloneDX SBOM) to the server's /api/v1/scans and returns the stored
// scan's ID.
func uploadScan(ctx context.Context, c *http.Client, base, token string, reportJSON, sbomJSON []byte) (string, error) {
	body := map[string]json.RawMessage{"report": reportJSON}
	if len(sbomJSON) > 0 {
		body["sbom"] = sbomJSON
	}
	b, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	rb, err := postJSON(ctx, c, base, "/api/v1/scans", token, b)
	if err != nil {
		return "", err
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(rb, &out); err != nil {
		return "", fmt.Errorf("reporting to %s: the answer is not JSON: %w", base, err)
	}
	return out.ID, nil
}

// postJSON posts body to the server at base + path with the API token and
// returns the answer's body; a non-2xx answer is an error carrying the
// server's message.
func postJSON(ctx context.Context, c *http.Client, base, path, token string, body []byte) ([]byte, error) {
	u := strings.TrimRight(base, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("--report-to %s: %w", base, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reporting to %s: %w", base, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(rb, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("reporting to %s: %s: %s", u, resp.Status, e.Error)
		}
		return nil, fmt.Errorf("reporting to %s: %s", u, resp.Status)
	}
	return rb, nil
}
