package export

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// ocsfFileSink appends OCSF JSON lines to a file, rotating it when it
// would pass MaxSize: path → path.1 → … → path.MaxFiles (the oldest goes).
type ocsfFileSink struct {
	cfg  SinkConfig
	mu   sync.Mutex
	f    *os.File
	size int64
}

func newOCSFFile(c SinkConfig) (*ocsfFileSink, error) {
	s := &ocsfFileSink{cfg: c}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *ocsfFileSink) open() error {
	if err := os.MkdirAll(filepath.Dir(s.cfg.Path), 0o750); err != nil {
		return fmt.Errorf("creating directory of %s: %w", s.cfg.Path, err)
	}
	f, err := os.OpenFile(s.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("opening OCSF file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("opening OCSF file: %w", err)
	}
	s.f, s.size = f, st.Size()
	return nil
}

func (s *ocsfFileSink) rotate() error {
	if err := s.f.Close(); err != nil {
		return err
	}
	s.f = nil
	for i := s.cfg.MaxFiles - 1; i >= 1; i-- {
		from := s.cfg.Path + "." + strconv.Itoa(i)
		if _, err := os.Stat(from); err == nil {
			if err := os.Rename(from, s.cfg.Path+"."+strconv.Itoa(i+1)); err != nil {
				return err
			}
		}
	}
	if err := os.Rename(s.cfg.Path, s.cfg.Path+".1"); err != nil {
		return err
	}
	return s.open()
}

func (s *ocsfFileSink) send(ctx context.Context, items []*Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	var buf []byte
	for _, it := range items {
		line, err := appendJSON(nil, OCSF(it))
		if err != nil {
			return permanentError(len(items), fmt.Errorf("encoding: %w", err))
		}
		line = append(line, '\n')
		if pending := s.size + int64(len(buf)); pending > 0 && pending+int64(len(line)) > s.cfg.MaxSize {
			if err := s.write(buf); err != nil {
				return err
			}
			buf = buf[:0]
			if err := s.rotate(); err != nil {
				return fmt.Errorf("rotating %s: %w", s.cfg.Path, err)
			}
		}
		buf = append(buf, line...)
	}
	return s.write(buf)
}

// write appends buf. A batch that fails half-way is written again whole
// on retry: a line may then appear twice, never half.
func (s *ocsfFileSink) write(buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := s.f.Write(buf)
	s.size += int64(n)
	if err != nil {
		s.f.Close()
		s.f = nil
		return fmt.Errorf("writing %s: %w", s.cfg.Path, err)
	}
	return nil
}

func (s *ocsfFileSink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// ocsfHTTPSink POSTs OCSF events as NDJSON or one JSON array.
type ocsfHTTPSink struct{ *httpPoster }

func newOCSFHTTP(c SinkConfig) (*ocsfHTTPSink, error) {
	p, err := newHTTPPoster(c)
	if err != nil {
		return nil, err
	}
	return &ocsfHTTPSink{p}, nil
}

func (s *ocsfHTTPSink) send(ctx context.Context, items []*Item) error {
	var body []byte
	ct := "application/x-ndjson"
	if s.cfg.Format == "array" {
		ct = "application/json"
		body = append(body, '[')
	}
	for i, it := range items {
		b, err := appendJSON(nil, OCSF(it))
		if err != nil {
			return permanentError(len(items), fmt.Errorf("encoding: %w", err))
		}
		if s.cfg.Format == "array" {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, b...)
		} else {
			body = append(body, b...)
			body = append(body, '\n')
		}
	}
	if s.cfg.Format == "array" {
		body = append(body, ']')
	}
	_, err := s.post(ctx, s.cfg.URL, ct, body, nil)
	return classify(len(items), err)
}
