package export

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Sign is the webhook signature of body sent at Unix time ts:
// "sha256=" + hex(HMAC-SHA256(secret, "<ts>." + body)). The timestamp is
// signed with the body so that a receiver can refuse replays.
func Sign(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(strconv.AppendInt(nil, ts, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhook signature does not match")
	ErrStale        = errors.New("webhook timestamp outside the replay window")
)

// Verify checks a webhook request the way a receiver should: the
// X-Vigil-Timestamp header (ts) is within window of now, and the
// X-Vigil-Signature header (sig) matches, compared in constant time.
func Verify(secret, sig, ts string, body []byte, now time.Time, window time.Duration) error {
	t, err := strconv.ParseInt(strings.TrimSpace(ts), 10, 64)
	if err != nil {
		return fmt.Errorf("webhook timestamp %q: %w", ts, err)
	}
	if d := now.Sub(time.Unix(t, 0)); d > window || d < -window {
		return ErrStale
	}
	want := Sign(secret, t, body)
	if !hmac.Equal([]byte(want), []byte(strings.TrimSpace(sig))) {
		return ErrBadSignature
	}
	return nil
}
