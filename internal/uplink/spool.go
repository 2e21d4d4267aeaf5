package uplink

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vigil-cwpp/vigil/internal/wire"
)

// SpoolOptions configure a Spool. Zero fields take DefaultSpoolOptions'.
type SpoolOptions struct {
	// MaxBytes bounds the records kept on disk (their encoded size; the
	// file itself can be up to about twice that, bbolt reuses freed pages
	// but never shrinks). When a commit would go over it, the oldest
	// records are deleted, acked or not, and counted in Dropped.
	MaxBytes int64
	// MaxRecord refuses a single record larger than this (it could never
	// be sent: the server bounds a message).
	MaxRecord int
	// MaxQueue bounds the bytes handed to Send but not yet committed;
	// past it the oldest queued records are dropped and counted, so Send
	// never waits for the disk.
	MaxQueue int
	// Linger is how long the committer waits after the first record of a
	// burst before committing, so that a burst costs one fsync; CommitMax
	// commits at once when that many records are queued.
	Linger    time.Duration
	CommitMax int
	// NoSync skips fsync (tests and benchmarks only: a crash loses
	// committed records).
	NoSync bool
	Logger *slog.Logger
	Now    func() time.Time
}

// DefaultSpoolOptions: 256 MiB on disk, 3 MiB per record, 32 MiB queued,
// a commit per 10 ms burst or per 2000 records.
func DefaultSpoolOptions() SpoolOptions {
	return SpoolOptions{MaxBytes: 256 << 20, MaxRecord: 3 << 20, MaxQueue: 32 << 20,
		Linger: 10 * time.Millisecond, CommitMax: 2000, Now: time.Now}
}

// ErrTooLarge is a record over SpoolOptions.MaxRecord.
var ErrTooLarge = errors.New("record too large for the spool")

// ErrClosed is a Send or Flush after Close.
var ErrClosed = errors.New("spool closed")

var (
	bucketRecords = []byte("records")
	bucketMeta    = []byte("meta")
	keyNext       = []byte("next")    // the sequence number the next record gets
	keyAcked      = []byte("acked")   // every record up to it is stored by the server
	keyDropped    = []byte("dropped") // records lost to a full spool, ever
	keyBytes      = []byte("bytes")   // encoded size of the records kept
	keyCount      = []byte("count")   // records kept
)

// Spool is a bounded on-disk queue of records with sequence numbers that
// increase by one from 1 and survive restarts. Send queues in memory and a
// committer writes bursts in one bbolt transaction each; Pending reads what
// is committed, in order; Ack deletes what the server has stored. It is
// safe for concurrent use.
type Spool struct {
	o  SpoolOptions
	db *bolt.DB
	// wmu serialises the writers (commit, Ack) and their update of meta.
	wmu sync.Mutex

	mu       sync.Mutex
	queue    []queued
	qbytes   int
	closed   bool
	wake     chan struct{} // the committer has work
	gen      uint64        // records handed to Send ever (this process)
	done     uint64        // of which committed or dropped
	doneC    *sync.Cond
	meta     meta          // as on disk
	qdropped uint64        // queue overflows not yet on disk
	warned   time.Time     // the last queue overflow warning
	notify   chan struct{} // records were committed
	quit     chan struct{} // closed by Close
	stopped  chan struct{}
}

type queued struct {
	kind string
	t    time.Time
	data []byte
}

type meta struct {
	next, acked, dropped, bytes, count uint64
}

// SpoolStats is the spool's state.
type SpoolStats struct {
	// First is the oldest record kept (Next when none is), Next the
	// sequence number of the next record committed.
	First, Next uint64
	Acked       uint64
	Records     int   // kept on disk
	Bytes       int64 // their encoded size
	Queued      int   // in memory, not yet committed
	Dropped     uint64
}

// OpenSpool opens or creates the spool at path.
func OpenSpool(path string, o SpoolOptions) (*Spool, error) {
	d := DefaultSpoolOptions()
	if o.MaxBytes <= 0 {
		o.MaxBytes = d.MaxBytes
	}
	if o.MaxRecord <= 0 {
		o.MaxRecord = d.MaxRecord
	}
	if int64(o.MaxRecord) > o.MaxBytes {
		o.MaxRecord = int(o.MaxBytes)
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = d.MaxQueue
	}
	if o.Linger < 0 {
		o.Linger = 0
	}
	if o.CommitMax <= 0 {
		o.CommitMax = d.CommitMax
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true,
		FreelistType: bolt.FreelistMapType, NoSync: o.NoSync})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("opening the spool %s: locked by another process (another vigil agent with this state directory?): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the spool %s: %w", path, err)
	}
	s := &Spool{o: o, db: db, wake: make(chan struct{}, 1), notify: make(chan struct{}, 1), quit: make(chan struct{}), stopped: make(chan struct{})}
	s.doneC = sync.NewCond(&s.mu)
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketRecords); err != nil {
			return err
		}
		mb, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		s.meta = readMeta(mb)
		if s.meta.next == 0 {
			s.meta.next = 1
			return writeMeta(mb, s.meta)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening the spool %s: %w", path, err)
	}
	go s.commitLoop()
	return s, nil
}

func readMeta(b *bolt.Bucket) meta {
	get := func(k []byte) uint64 {
		if v := b.Get(k); len(v) == 8 {
			return binary.BigEndian.Uint64(v)
		}
		return 0
	}
	return meta{next: get(keyNext), acked: get(keyAcked), dropped: get(keyDropped), bytes: get(keyBytes), count: get(keyCount)}
}

func writeMeta(b *bolt.Bucket, m meta) error {
	for _, kv := range []struct {
		k []byte
		v uint64
	}{{keyNext, m.next}, {keyAcked, m.acked}, {keyDropped, m.dropped}, {keyBytes, m.bytes}, {keyCount, m.count}} {
		if err := b.Put(kv.k, binary.BigEndian.AppendUint64(nil, kv.v)); err != nil {
			return err
		}
	}
	return nil
}

// Send marshals v to JSON and queues it under kind (a json.RawMessage or
// []byte is copied as it is: it must be valid JSON). It never waits for the
// disk or the network: when more than MaxQueue bytes wait for a commit the
// oldest queued records are dropped and counted. Only a value that cannot
// be marshalled, a record over MaxRecord or a closed spool is an error.
func (s *Spool) Send(kind string, v any) error {
	var data []byte
	switch v := v.(type) {
	case json.RawMessage:
		data = slices.Clone(v)
	case []byte:
		data = slices.Clone(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("spooling a %s: %w", kind, err)
		}
		data = b
	}
	return s.append(kind, data)
}

// append queues data, which must be valid JSON and is not retained by the
// caller.
func (s *Spool) append(kind string, data []byte) error {
	if kind == "" || len(kind) > 255 {
		return fmt.Errorf("spooling: record kind %.32q: empty or over 255 bytes", kind)
	}
	if len(data)+len(kind)+16 > s.o.MaxRecord {
		return fmt.Errorf("spooling a %s of %d bytes: %w (max %d)", kind, len(data), ErrTooLarge, s.o.MaxRecord)
	}
	q := queued{kind: kind, t: s.o.Now(), data: data}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.queue = append(s.queue, q)
	s.qbytes += len(data)
	s.gen++
	var lost int
	for s.qbytes > s.o.MaxQueue && len(s.queue) > 1 {
		s.qbytes -= len(s.queue[0].data)
		s.queue[0] = queued{}
		s.queue = s.queue[1:]
		s.qdropped++
		s.done++
		lost++
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	warn := lost > 0 && q.t.Sub(s.warned) >= time.Second
	if warn {
		s.warned = q.t
	}
	dropped := s.meta.dropped + s.qdropped
	s.mu.Unlock()
	if warn { // at most once a second
		s.o.Logger.Warn("uplink spool: the disk does not keep up, dropping the oldest queued records", "dropped_total", dropped)
	}
	return nil
}

// commitLoop writes queued records, a burst per transaction.
func (s *Spool) commitLoop() {
	defer close(s.stopped)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		_, open := <-s.wake
		if open && s.o.Linger > 0 {
			s.mu.Lock()
			n := len(s.queue)
			s.mu.Unlock()
			if n < s.o.CommitMax {
				timer.Reset(s.o.Linger)
				select {
				case <-timer.C:
				case <-s.quit:
					timer.Stop()
				}
			}
		}
		for {
			s.mu.Lock()
			batch := s.queue
			s.queue = nil
			s.qbytes = 0
			s.mu.Unlock()
			if len(batch) > 0 {
				s.commit(batch)
			}
			if len(batch) < s.o.CommitMax {
				break
			}
		}
		if !open {
			return
		}
	}
}

// encode is a record's value: kind length, kind, time (Unix ns), data.
func encode(q queued) []byte {
	b := make([]byte, 0, 1+len(q.kind)+8+len(q.data))
	b = append(b, byte(len(q.kind)))
	b = append(b, q.kind...)
	b = binary.BigEndian.AppendUint64(b, uint64(q.t.UnixNano()))
	return append(b, q.data...)
}

func decode(seq uint64, v []byte) (wire.Record, error) {
	if len(v) < 1 || len(v) < 1+int(v[0])+8 {
		return wire.Record{}, fmt.Errorf("spool record %d: truncated (%d bytes)", seq, len(v))
	}
	n := int(v[0])
	r := wire.Record{Seq: seq, Kind: string(v[1 : 1+n])}
	r.Time = time.Unix(0, int64(binary.BigEndian.Uint64(v[1+n:]))).UTC()
	r.Data = append(json.RawMessage(nil), v[1+n+8:]...)
	return r, nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// commit writes batch in one transaction, dropping the oldest records if
// the spool would go over MaxBytes. A failed commit loses the batch: it is
// logged and counted as dropped (the agent must not stop for its spool).
func (s *Spool) commit(batch []queued) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var m meta
	var full, qd uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		rb, mb := tx.Bucket(bucketRecords), tx.Bucket(bucketMeta)
		m = readMeta(mb)
		for _, q := range batch {
			v := encode(q)
			if err := rb.Put(seqKey(m.next), v); err != nil {
				return err
			}
			m.next++
			m.bytes += uint64(len(v))
			m.count++
		}
		if m.bytes > uint64(s.o.MaxBytes) {
			c := rb.Cursor()
			for k, v := c.First(); k != nil && m.bytes > uint64(s.o.MaxBytes); k, v = c.First() {
				m.bytes -= uint64(len(v))
				m.count--
				full++
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		// Queue overflows are counted in memory until a commit.
		s.mu.Lock()
		qd = s.qdropped
		s.mu.Unlock()
		m.dropped += qd + full
		return writeMeta(mb, m)
	})
	s.mu.Lock()
	if err != nil {
		s.qdropped += uint64(len(batch))
	} else {
		s.meta = m
		s.qdropped -= qd
	}
	s.done += uint64(len(batch))
	s.doneC.Broadcast()
	s.mu.Unlock()
	if err != nil {
		s.o.Logger.Error("uplink spool: a commit failed, records lost", "records", len(batch), "err", err)
		return
	}
	if full > 0 {
		s.o.Logger.Warn("uplink spool full: dropped the oldest records", "dropped", full, "max_bytes", s.o.MaxBytes)
	}
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Flush waits until every record handed to Send before it is committed
// (or dropped).
func (s *Spool) Flush(ctx context.Context) error {
	s.mu.Lock()
	want := s.gen
	if s.closed && s.done < want {
		s.mu.Unlock()
		return ErrClosed
	}
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.doneC.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.done < want {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.doneC.Wait()
	}
	return nil
}

// Committed is signalled (without blocking, coalesced) after each commit.
func (s *Spool) Committed() <-chan struct{} { return s.notify }

// Ack deletes every record up to seq: the server has stored them.
func (s *Spool) Ack(seq uint64) error {
	s.mu.Lock()
	if seq <= s.meta.acked {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var m meta
	err := s.db.Update(func(tx *bolt.Tx) error {
		rb, mb := tx.Bucket(bucketRecords), tx.Bucket(bucketMeta)
		m = readMeta(mb)
		if seq <= m.acked {
			return nil
		}

		c := rb.Cursor()
		for k, v := c.First(); k != nil && binary.BigEndian.Uint64(k) <= seq; k, v = c.First() {
			m.bytes -= uint64(len(v))
			m.count--
			if err := c.Delete(); err != nil {
				return err
			}
		}
		m.acked = seq
		return writeMeta(mb, m)
	})
	if err != nil {
		return fmt.Errorf("spool ack %d: %w", seq, err)
	}
	s.mu.Lock()
	s.meta = m
	s.mu.Unlock()
	return nil
}

// SkipTo moves the sequence past seq when it has not got there: the
// server holds records up to seq that this spool never wrote (it was
// deleted or restored from an older copy). The records kept are
// renumbered from seq+1, in order, so the server does not take them for
// ones it has. It returns how many were renumbered.
func (s *Spool) SkipTo(seq uint64) (int, error) {
	s.mu.Lock()
	if seq < s.meta.next {
		s.mu.Unlock()
		return 0, nil
	}
	s.mu.Unlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var m meta
	moved := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		rb, mb := tx.Bucket(bucketRecords), tx.Bucket(bucketMeta)
		m = readMeta(mb)
		if seq < m.next {
			return nil
		}
		var vals [][]byte
		c := rb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.First() {
			vals = append(vals, slices.Clone(v))
			if err := c.Delete(); err != nil {
				return err
			}
		}
		for i, v := range vals {
			if err := rb.Put(seqKey(seq+1+uint64(i)), v); err != nil {
				return err
			}
		}
		moved = len(vals)
		m.next, m.acked = seq+1+uint64(len(vals)), seq
		return writeMeta(mb, m)
	})
	if err != nil {
		return 0, fmt.Errorf("spool: moving the sequence to %d: %w", seq, err)
	}
	s.mu.Lock()
	s.meta = m
	s.mu.Unlock()
	return moved, nil
}

// Pending returns committed records from seq from on, in order: at most
// max records and, past the first, at most maxBytes of data.
func (s *Spool) Pending(from uint64, max, maxBytes int) ([]wire.Record, error) {
	var out []wire.Record
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		size := 0
		for k, v := c.Seek(seqKey(from)); k != nil && len(out) < max; k, v = c.Next() {
			if len(out) > 0 && size+len(v) > maxBytes {
				break
			}
			r, err := decode(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return err
			}
			size += len(v)
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the spool: %w", err)
	}
	return out, nil
}

// Stats returns the spool's counters.
func (s *Spool) Stats() SpoolStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SpoolStats{Next: s.meta.next, Acked: s.meta.acked, Records: int(s.meta.count), Bytes: int64(s.meta.bytes),
		Queued: len(s.queue), Dropped: s.meta.dropped + s.qdropped}
	st.First = s.meta.next - s.meta.count
	return st
}

// Close commits what is queued and closes the file.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.quit)
	close(s.wake)
	s.mu.Unlock()
	<-s.stopped
	// Queue overflows not followed by a commit.
	s.mu.Lock()
	qd := s.qdropped
	s.mu.Unlock()
	if qd > 0 {
		_ = s.db.Update(func(tx *bolt.Tx) error {
			mb := tx.Bucket(bucketMeta)
			m := readMeta(mb)
			m.dropped += qd
			return writeMeta(mb, m)
		})
	}
	return s.db.Close()
}
