package fim

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ScanOptions tune a scan.
type ScanOptions struct {
	// Workers is the number of goroutines that stat, read and hash; 0 is
	// twice GOMAXPROCS (one hashing while another waits for the disk).
	Workers int
	// BufSize is each worker's read buffer; 0 is 1 MiB.
	BufSize int
	// Growing are the baseline sizes of files whose rule has the growing
	// attribute: for such a file, now larger, the scan also hashes its
	// first Growing[path] bytes so the comparison can tell an appended
	// file from a rewritten one. May be nil.
	Growing map[string]int64
	// SizeHint is the number of entries expected (the baseline's), to size
	// the result at once; 0 lets it grow.
	SizeHint int
}

// ScanError is a path that could not be (fully) recorded.
type ScanError struct {
	Path string `json:"path"`
	Err  string `json:"error"`
}

// Result is a scan: entries sorted by path, and what could not be read.
type Result struct {
	Entries []Entry
	Errors  []ScanError
	Hashed  int64 // regular files hashed
	Bytes   int64 // bytes hashed

	prefixes map[string]prefixHashes // of growing files (ScanOptions.Growing)
}

// testHookReadDir, when set, runs after a directory was listed and before
// its entries are examined (tests delete files there).
var testHookReadDir func(dir string)

// testHookMapped, when set, runs after a file was memory-mapped and before
// it is hashed (tests truncate the file there).
var testHookMapped func()

type scanJob struct {
	path  string
	rule  int
	depth int
	dev   uint64
	root  bool
}

// queue is an unbounded LIFO of jobs with a count of jobs not yet done;
// pop reports false once nothing is queued or running.
type queue struct {
	mu      sync.Mutex
	cond    sync.Cond
	items   []scanJob
	pending int
}

func (q *queue) push(j scanJob) {
	q.mu.Lock()
	q.items = append(q.items, j)
	q.pending++
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *queue) pop() (scanJob, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && q.pending > 0 {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return scanJob{}, false
	}
	j := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return j, true
}

func (q *queue) done() {
	q.mu.Lock()
	q.pending--
	last := q.pending == 0
	q.mu.Unlock()
	if last {
		q.cond.Broadcast()
	}
}

type scanner struct {
	cfg   *Config
	opts  ScanOptions
	roots map[string]bool
	q     *queue

	mu      sync.Mutex
	entries []Entry // one list for all workers: no per-worker slack, no copy
}

// prefixHashes are the hashes of a growing file's first baseline-size
// bytes.
type prefixHashes struct{ sha256, sha512 []byte }

type workerOut struct {
	errs     []ScanError
	hashed   int64
	bytes    int64
	prefixes map[string]prefixHashes
}

// Scan walks the watched paths of cfg and records the attributes each
// rule selects. Symlinks are recorded, never followed. Paths that vanish
// during the scan and files that cannot be read are listed in
// Result.Errors (an unreadable file is still recorded with what could be
// read); the scan goes on. Scan returns an error only when ctx ends.
func Scan(ctx context.Context, cfg *Config, opts ScanOptions) (*Result, error) {
	if opts.Workers <= 0 {
		opts.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.BufSize <= 0 {
		opts.BufSize = 1 << 20
	}
	s := &scanner{cfg: cfg, opts: opts, roots: map[string]bool{}, q: &queue{}}
	if opts.SizeHint > 0 {
		s.entries = make([]Entry, 0, opts.SizeHint+opts.SizeHint/32+64)
	}
	s.q.cond.L = &s.q.mu
	for _, r := range cfg.Rules {
		s.roots[r.Path] = true
	}
	for i, r := range cfg.Rules {
		if _, ok := cfg.Match(r.Path); ok {
			s.q.push(scanJob{path: r.Path, rule: i, root: true})
		}
	}
	outs := make([]workerOut, opts.Workers)
	var wg sync.WaitGroup
	for w := range outs {
		wg.Add(1)
		go func(out *workerOut) {
			defer wg.Done()
			buf := make([]byte, opts.BufSize)
			for {
				j, ok := s.q.pop()
				if !ok {
					return
				}
				if ctx.Err() == nil {
					s.visit(j, buf, out)
				}
				s.q.done()
			}
		}(&outs[w])
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := &Result{Entries: s.entries, prefixes: map[string]prefixHashes{}}
	for _, o := range outs {
		res.Errors = append(res.Errors, o.errs...)
		res.Hashed += o.hashed
		res.Bytes += o.bytes
		for p, h := range o.prefixes {
			res.prefixes[p] = h
		}
	}
	sort.Slice(res.Entries, func(i, j int) bool { return res.Entries[i].Path < res.Entries[j].Path })
	sort.Slice(res.Errors, func(i, j int) bool { return res.Errors[i].Path < res.Errors[j].Path })
	return res, nil
}

func childPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

func (s *scanner) visit(j scanJob, buf []byte, out *workerOut) {
	rule := &s.cfg.Rules[j.rule]
	var st unix.Stat_t
	if err := unix.Lstat(j.path, &st); err != nil {
		if j.root && errors.Is(err, unix.ENOENT) {
			return // a watched path that does not exist here
		}
		msg := err.Error()
		if errors.Is(err, unix.ENOENT) {
			msg = "vanished during the scan"
		}
		out.errs = append(out.errs, ScanError{Path: j.path, Err: msg})
		return
	}
	if j.root {
		j.dev = st.Dev
	}
	e := Entry{Path: j.path, Rule: rule.Name, Attrs: rule.Attrs}
	e.fillStat(&st)
	var errs []string
	if st.Mode&unix.S_IFMT == unix.S_IFLNK && e.Attrs&AttrLink != 0 {
		if t, err := os.Readlink(j.path); err != nil {
			errs = append(errs, "readlink: "+err.Error())
		} else {
			e.Link = t
		}
	}
	if err := e.readXattrs(j.path, buf); err != nil {
		errs = append(errs, err.Error())
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG && e.Attrs&AttrHashes != 0 {
		var prefixLen int64
		if pl, ok := s.opts.Growing[j.path]; ok && e.Attrs&AttrGrowing != 0 && pl < st.Size {
			prefixLen = pl
		}
		n, pre, err := e.hash(j.path, &st, buf, prefixLen)
		if pre != nil {
			if out.prefixes == nil {
				out.prefixes = map[string]prefixHashes{}
			}
			out.prefixes[j.path] = *pre
		}
		if err != nil {
			errs = append(errs, err.Error())
		} else {
			out.hashed++
			out.bytes += n
		}
	}
	if len(errs) > 0 {
		e.Err = strings.Join(errs, "; ")
		for _, m := range errs {
			out.errs = append(out.errs, ScanError{Path: j.path, Err: m})
		}
	}
	s.mu.Lock()
	s.entries = append(s.entries, e)
	s.mu.Unlock()

	if st.Mode&unix.S_IFMT != unix.S_IFDIR || (rule.Depth >= 0 && j.depth >= rule.Depth) {
		return
	}
	if s.cfg.OneFilesystem && st.Dev != j.dev {
		return
	}
	f, err := os.Open(j.path)
	if err != nil {
		out.errs = append(out.errs, ScanError{Path: j.path, Err: "listing: " + err.Error()})
		return
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		out.errs = append(out.errs, ScanError{Path: j.path, Err: "listing: " + err.Error()})
	}
	if testHookReadDir != nil {
		testHookReadDir(j.path)
	}
	for _, name := range names {
		cp := childPath(j.path, name)
		if s.roots[cp] || s.cfg.excluded(cp) {
			continue
		}
		s.q.push(scanJob{path: cp, rule: j.rule, depth: j.depth + 1, dev: j.dev})
	}
}

// hash reads a regular file and sets the hashes its attributes select,
// refreshing the stat attributes from the open file. It returns the bytes
// read and, when prefixLen > 0, the hashes of the first prefixLen bytes.
func (e *Entry) hash(p string, lst *unix.Stat_t, buf []byte, prefixLen int64) (int64, *prefixHashes, error) {
	var pre *prefixHashes
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	fd, err := unix.Open(p, flags|unix.O_NOATIME, 0)
	if err == unix.EPERM {
		fd, err = unix.Open(p, flags, 0)
	}
	if err != nil {
		if err == unix.ENOENT {
			return 0, nil, errors.New("vanished during the scan")
		}
		return 0, nil, fmt.Errorf("opening: %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, nil, fmt.Errorf("fstat: %w", err)
	}
	if st.Ino != lst.Ino || st.Dev != lst.Dev || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, nil, errors.New("replaced during the scan")
	}
	e.fillStat(&st)
	var hs []hash.Hash
	var h256, h512 hash.Hash
	if e.Attrs&AttrSHA256 != 0 {
		h256 = sha256.New()
		hs = append(hs, h256)
	}
	if e.Attrs&AttrSHA512 != 0 {
		h512 = sha512.New()
		hs = append(hs, h512)
	}
	var total int64
	feed := func(chunk []byte) {
		if prefixLen > 0 && total < prefixLen && total+int64(len(chunk)) >= prefixLen {
			cut := prefixLen - total
			for _, h := range hs {
				h.Write(chunk[:cut])
			}
			pre = &prefixHashes{}
			if h256 != nil {
				pre.sha256 = h256.Sum(nil)
			}
			if h512 != nil {
				pre.sha512 = h512.Sum(nil)
			}
			total += cut
			chunk = chunk[cut:]
		}
		for _, h := range hs {
			h.Write(chunk)
		}
		total += int64(len(chunk))
	}
	mapped := false
	if st.Size >= mmapMin {
		var err error
		mapped, err = hashMapped(fd, st.Size, len(buf), feed)
		if err != nil {
			return total, nil, err
		}
	}
	for !mapped {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		// EAGAIN (a /proc file such as kmsg, opened non-blocking) is an
		// error like any other: never wait on a file.
		if err != nil {
			return total, nil, fmt.Errorf("reading: %w", err)
		}
		if n == 0 {
			break
		}
		feed(buf[:n])
	}
	if h256 != nil {
		e.SHA256 = h256.Sum(nil)
	}
	if h512 != nil {
		e.SHA512 = h512.Sum(nil)
	}
	return total, pre, nil
}

// mmapMin is the size from which files are hashed from a memory mapping
// rather than read(2) into a buffer: no copy out of the page cache.
const mmapMin = 256 << 10

// hashMapped feeds the first size bytes of fd, memory-mapped a window of
// mmapWindow bytes at a time (so a large file does not inflate the RSS), in
// chunks. It returns mapped=false, and feeds nothing, when the file cannot
// be mapped (the caller reads it instead). A file truncated while it is
// being hashed makes the access fault (SIGBUS); SetPanicOnFault turns that
// into a panic recovered here as an error, not a crash.
func hashMapped(fd int, size int64, chunk int, feed func([]byte)) (mapped bool, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			mapped, err = true, fmt.Errorf("reading: the file shrank while it was hashed (%v)", r)
		}
	}()
	for off := int64(0); off < size; off += mmapWindow {
		n := min(mmapWindow, size-off)
		data, err := unix.Mmap(fd, off, int(n), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			if off == 0 {
				return false, nil
			}
			return true, fmt.Errorf("reading: mmap: %w", err)
		}
		if testHookMapped != nil {
			testHookMapped()
		}
		unix.Madvise(data, unix.MADV_SEQUENTIAL|unix.MADV_WILLNEED)
		func() {
			defer unix.Munmap(data)
			for o := 0; o < len(data); o += chunk {
				feed(data[o:min(o+chunk, len(data))])
			}
		}()
	}
	return true, nil
}

// mmapWindow is how much of a file is mapped at once (a multiple of the
// page size).
const mmapWindow = 8 << 20
