package fim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Options are what init, check and update work with.
type Options struct {
	Config   *Config
	Database string // "" → Config.Database
	Key      string // "" → Config.Key
	Scan     ScanOptions
	// AuditLog is the update audit log; "" → AuditLogPath(database).
	AuditLog string
	// Now is the clock; nil → time.Now.
	Now func() time.Time
}

func (o *Options) db() string {
	if o.Database != "" {
		return o.Database
	}
	return o.Config.Database
}

func (o *Options) key() string {
	if o.Key != "" {
		return o.Key
	}
	return o.Config.Key
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// AuditLogPath is the audit log next to a database: <database>.audit.log.
func AuditLogPath(database string) string { return database + ".audit.log" }

// ErrBaselineExists is returned by Init when the baseline already exists.
var ErrBaselineExists = errors.New("baseline already exists (use vigil fim update to replace it)")

// Init scans and writes the first baseline, creating the key if it does
// not exist. It refuses to replace an existing baseline unless force.
func Init(ctx context.Context, o Options, force bool) (*Result, error) {
	db := o.db()
	if _, err := os.Stat(db); err == nil && !force {
		return nil, fmt.Errorf("%s: %w", db, ErrBaselineExists)
	}
	key, _, err := CreateKey(o.key())
	if err != nil {
		return nil, err
	}
	res, err := Scan(ctx, o.Config, o.Scan)
	if err != nil {
		return nil, err
	}
	if err := o.write(db, key, res); err != nil {
		return nil, err
	}
	return res, o.audit("init", res, nil)
}

func (o *Options) write(db string, key []byte, res *Result) error {
	host, _ := os.Hostname()
	return WriteBaseline(db, key, &Baseline{Created: o.now().UTC(), Host: host, Config: o.Config.Source, Entries: res.Entries})
}

// Check compares a scan with the baseline. A baseline whose MAC does not
// verify returns an error wrapping ErrTampered and is not used.
func Check(ctx context.Context, o Options) (*Report, error) {
	_, rep, err := o.check(ctx)
	return rep, err
}

func (o *Options) check(ctx context.Context) (*Result, *Report, error) {
	key, err := LoadKey(o.key())
	if err != nil {
		return nil, nil, err
	}
	old, err := ReadBaseline(o.db(), key)
	if err != nil {
		return nil, nil, err
	}
	so := o.Scan
	so.Growing = old.GrowingSizes()
	so.SizeHint = len(old.Entries)
	res, err := Scan(ctx, o.Config, so)
	if err != nil {
		return nil, nil, err
	}
	return res, Compare(old, res), nil
}

// Update compares a scan with the baseline, then makes the scan the new
// baseline and appends a line to the audit log saying who did it, when,
// and how many changes it accepted. A tampered baseline is refused
// (ErrTampered): start again with Init and force.
func Update(ctx context.Context, o Options) (*Report, error) {
	res, rep, err := o.check(ctx)
	if err != nil {
		return nil, err
	}
	key, err := LoadKey(o.key())
	if err != nil {
		return nil, err
	}
	if err := o.write(o.db(), key, res); err != nil {
		return nil, err
	}
	return rep, o.audit("update", res, rep)
}

// AuditRecord is one line (JSON) of the audit log.
type AuditRecord struct {
	Time       time.Time `json:"time"`
	Action     string    `json:"action"` // init, update
	User       string    `json:"user"`
	UID        int       `json:"uid"`
	LoginUID   *int      `json:"login_uid,omitempty"` // the audit login uid: who logged in, through sudo or su
	SudoUser   string    `json:"sudo_user,omitempty"`
	Host       string    `json:"host"`
	Database   string    `json:"database"`
	SHA256     string    `json:"sha256"` // of the baseline file written
	Entries    int       `json:"entries"`
	Added      int       `json:"added"`
	Removed    int       `json:"removed"`
	Changed    int       `json:"changed"`
	Unreadable int       `json:"unreadable"`
}

func (o *Options) audit(action string, res *Result, rep *Report) error {
	rec := AuditRecord{Time: o.now().UTC(), Action: action, UID: os.Getuid(), SudoUser: os.Getenv("SUDO_USER"),
		Database: o.db(), Entries: len(res.Entries), Unreadable: len(res.Errors)}
	if u, err := user.LookupId(strconv.Itoa(rec.UID)); err == nil {
		rec.User = u.Username
	}
	if b, err := os.ReadFile("/proc/self/loginuid"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 0 && uint32(n) != ^uint32(0) {
			rec.LoginUID = &n
		}
	}
	rec.Host, _ = os.Hostname()
	if rep != nil {
		rec.Added, rec.Removed, rec.Changed = rep.Summary.Added, rep.Summary.Removed, rep.Summary.Changed
	} else {
		rec.Added = len(res.Entries)
	}
	if f, err := os.Open(o.db()); err == nil {
		h := sha256.New()
		io.Copy(h, f)
		f.Close()
		rec.SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	file := o.AuditLog
	if file == "" {
		file = AuditLogPath(o.db())
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("audit log %s: %w", file, err)
	}
	return f.Close()
}
