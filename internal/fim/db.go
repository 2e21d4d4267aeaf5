package fim

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"
)

// The baseline file is
//
//	magic (10 bytes) | HMAC-SHA256(key, magic || payload) (32 bytes) | payload
//
// where payload is a zstd stream of gob values: a dbHeader, then
// dbHeader.Count entries sorted by path. gob keeps paths and xattr values
// as bytes (file names need not be UTF-8, which JSON would mangle) and
// zstd makes the file small and fast to write; the MAC is checked before
// a single byte of the payload is decoded.
const dbMagic = "VIGILFIM\x00\x01"

// ErrTampered is returned when a baseline's MAC does not verify: the file
// was changed by someone without the key (or the key is not the one it
// was written with).
var ErrTampered = errors.New("baseline MAC does not verify: the baseline was tampered with or the key is wrong")

// Baseline is a stored scan.
type Baseline struct {
	Created time.Time
	Host    string
	Config  string // where the configuration came from
	Entries []Entry
}

type dbHeader struct {
	Version int
	Created time.Time
	Host    string
	Config  string
	Count   int
}

// Index maps paths to entries.
func (b *Baseline) Index() map[string]*Entry {
	m := make(map[string]*Entry, len(b.Entries))
	for i := range b.Entries {
		m[b.Entries[i].Path] = &b.Entries[i]
	}
	return m
}

// GrowingSizes are the sizes of the baseline's growing files, for
// ScanOptions.Growing.
func (b *Baseline) GrowingSizes() map[string]int64 {
	m := map[string]int64{}
	for i := range b.Entries {
		if e := &b.Entries[i]; e.Attrs&AttrGrowing != 0 && e.Attrs&AttrHashes != 0 && e.Type == "file" {
			m[e.Path] = e.Size
		}
	}
	return m
}

// EncodeBaseline writes b, MACed with key, to w.
func EncodeBaseline(w io.Writer, key []byte, b *Baseline) error {
	var payload bytes.Buffer
	zw, err := zstd.NewWriter(&payload, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return err
	}
	enc := gob.NewEncoder(zw)
	if err := enc.Encode(dbHeader{Version: 1, Created: b.Created, Host: b.Host, Config: b.Config, Count: len(b.Entries)}); err != nil {
		return fmt.Errorf("encoding baseline: %w", err)
	}
	for i := range b.Entries {
		if err := enc.Encode(&b.Entries[i]); err != nil {
			return fmt.Errorf("encoding baseline entry %s: %w", b.Entries[i].Path, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compressing baseline: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(dbMagic))
	mac.Write(payload.Bytes())
	if _, err := w.Write(append([]byte(dbMagic), mac.Sum(nil)...)); err != nil {
		return err
	}
	_, err = w.Write(payload.Bytes())
	return err
}

// maxEntries bounds the entries a baseline may claim.
const maxEntries = 1 << 26

// DecodeBaseline verifies data's MAC with key (ErrTampered when it does
// not verify) and only then decodes it.
func DecodeBaseline(data, key []byte) (*Baseline, error) {
	if len(data) < len(dbMagic)+sha256.Size || string(data[:len(dbMagic)]) != dbMagic {
		return nil, fmt.Errorf("not a vigil fim baseline (bad header): %w", ErrTampered)
	}
	sum := data[len(dbMagic) : len(dbMagic)+sha256.Size]
	payload := data[len(dbMagic)+sha256.Size:]
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(dbMagic))
	mac.Write(payload)
	if !hmac.Equal(sum, mac.Sum(nil)) {
		return nil, ErrTampered
	}
	return decodePayload(payload)
}

func decodePayload(payload []byte) (*Baseline, error) {
	zr, err := zstd.NewReader(bytes.NewReader(payload), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		return nil, fmt.Errorf("decoding baseline: %w", err)
	}
	defer zr.Close()
	dec := gob.NewDecoder(zr)
	var h dbHeader
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("decoding baseline header: %w", err)
	}
	if h.Version != 1 {
		return nil, fmt.Errorf("baseline version %d is not supported", h.Version)
	}
	if h.Count < 0 || h.Count > maxEntries {
		return nil, fmt.Errorf("baseline claims %d entries", h.Count)
	}
	b := &Baseline{Created: h.Created, Host: h.Host, Config: h.Config, Entries: make([]Entry, 0, min(h.Count, 1<<16))}
	for i := 0; i < h.Count; i++ {
		var e Entry
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("decoding baseline entry %d of %d: %w", i+1, h.Count, err)
		}
		if i > 0 && e.Path <= b.Entries[i-1].Path {
			return nil, fmt.Errorf("baseline entry %d (%q) out of order", i+1, e.Path)
		}
		b.Entries = append(b.Entries, e)
	}
	return b, nil
}

// WriteBaseline writes b to file atomically (a temporary file in the same
// directory, synced, then renamed over file), mode 0600.
func WriteBaseline(file string, key []byte, b *Baseline) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing baseline: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(file)+".*")
	if err != nil {
		return fmt.Errorf("writing baseline: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := EncodeBaseline(f, key, b); err != nil {
		f.Close()
		return fmt.Errorf("writing baseline %s: %w", file, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing baseline %s: %w", file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing baseline %s: %w", file, err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("writing baseline: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// ReadBaseline reads and verifies a baseline file.
func ReadBaseline(file string, key []byte) (*Baseline, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading baseline: %w", err)
	}
	b, err := DecodeBaseline(data, key)
	if err != nil {
		return nil, fmt.Errorf("baseline %s: %w", file, err)
	}
	return b, nil
}

// KeySize is the MAC key length in bytes.
const KeySize = 32

// LoadKey reads a MAC key file: KeySize bytes as hex. The file must not be
// readable or writable by group or others.
func LoadKey(file string) ([]byte, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("fim key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("fim key %s has mode %04o: it must be readable by its owner only (chmod 600)", file, fi.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("fim key: %w", err)
	}
	key, err := hex.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("fim key %s: want %d bytes as hex", file, KeySize)
	}
	return key, nil
}

// CreateKey returns the key in file, creating the file (mode 0600, its
// directory 0700) with a fresh random key if it does not exist.
func CreateKey(file string) (key []byte, created bool, err error) {
	if _, err := os.Stat(file); err == nil {
		key, err := LoadKey(file)
		return key, false, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, false, fmt.Errorf("fim key: %w", err)
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("fim key: %w", err)
	}
	if _, err := f.Write([]byte(hex.EncodeToString(key) + "\n")); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("fim key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("fim key: %w", err)
	}
	return key, true, nil
}
