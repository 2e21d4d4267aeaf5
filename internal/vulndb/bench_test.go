package vulndb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The store benchmarks compare SQLite (the store Vigil uses, with three
// advisory encodings) with bbolt on the real data: build time of all
// sources, file size, latency of 1,000 (ecosystem, name) lookups, and peak
// RSS during the build. The bbolt variant exists only here. Figures and
// the command are in docs/decisions/0003-vulndb-store.md.

// storeInput is the shared data, parsed once.
type storeInput struct {
	sources []benchSource
	kev     []KEV
	nvd     []nvdRecord
	pairs   [][2]string // 1,000 (ecosystem, normalised name) pairs to look up
}

type benchSource struct {
	name string
	advs []*Advisory
}

var (
	benchOnce sync.Once
	benchIn   *storeInput
)

func loadStoreInput(b *testing.B) *storeInput {
	d := sharedData(b)
	benchOnce.Do(func() {
		in := &storeInput{}
		for _, z := range [][2]string{{"osv:Go", "osv/Go/all.zip"}, {"osv:PyPI", "osv/PyPI/all.zip"}, {"osv:Debian:12", "debian-derived/all.zip"}} {
			_, advs := zipRecords(b, filepath.Join(d, z[1]))
			in.sources = append(in.sources, benchSource{z[0], advs})
		}
		files, _ := filepath.Glob(filepath.Join(d, "alpine-secdb", "v3.*", "*.json"))
		for _, f := range files {
			data, _ := os.ReadFile(f)
			s, err := parseSecdb(data, &SourceReport{})
			if err != nil {
				b.Fatal(err)
			}
			in.sources = append(in.sources, benchSource{s.Source(), s.Advs})
		}
		data, _ := os.ReadFile(filepath.Join(d, "kev", "known_exploited_vulnerabilities.json"))
		cat, err := parseKEV(data, &SourceReport{})
		if err != nil {
			b.Fatal(err)
		}
		in.kev = cat.Entries
		data, _ = os.ReadFile(filepath.Join(d, "nvd", "nvdcve-2.0-subset.json"))
		page, err := parseNVD(data, &SourceReport{})
		if err != nil {
			b.Fatal(err)
		}
		in.nvd = page.Records

		set := map[[2]string]bool{}
		for _, s := range in.sources {
			for _, a := range s.advs {
				for _, af := range a.Affected {
					set[[2]string{af.Package.Ecosystem, NormalizeName(af.Package.Ecosystem, af.Package.Name)}] = true
				}
			}
		}
		var all [][2]string
		for p := range set {
			all = append(all, p)
		}
		sort.Slice(all, func(i, j int) bool { return all[i][0]+"\x00"+all[i][1] < all[j][0]+"\x00"+all[j][1] })
		for i := range 1000 {
			in.pairs = append(in.pairs, all[i*len(all)/1000])
		}
		benchIn = in
	})
	if benchIn == nil {
		b.Fatal("loading the shared data failed earlier")
	}
	return benchIn
}

// benchStore is one store variant.
type benchStore struct {
	name  string
	build func(ctx context.Context, path string, in *storeInput) error
	open  func(path string) (lookupFunc, func(), error)
}

type lookupFunc func(ctx context.Context, eco, name string) ([]*Advisory, error)

func benchStores() []benchStore {
	var out []benchStore
	for _, c := range []codec{codecFlateDict1, codecFlate, codecJSON} {
		out = append(out, benchStore{
			name:  "sqlite-" + string(c),
			build: func(ctx context.Context, path string, in *storeInput) error { return buildSQLite(ctx, path, c, in) },
			open: func(path string) (lookupFunc, func(), error) {
				db, err := Open(path)
				if err != nil {
					return nil, nil, err
				}
				return db.lookup, func() { db.Close() }, nil
			},
		})
	}
	for _, c := range []codec{codecFlateDict1, codecJSON} {
		out = append(out, benchStore{
			name:  "bbolt-" + string(c),
			build: func(ctx context.Context, path string, in *storeInput) error { return buildBolt(ctx, path, c, in) },
			open:  func(path string) (lookupFunc, func(), error) { return openBolt(path, c) },
		})
	}
	return out
}

// buildSQLite writes in with the production builder.
func buildSQLite(ctx context.Context, path string, c codec, in *storeInput) error {
	b, _, err := newBuilder(ctx, path, c, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer b.abort()
	im := &importer{b: b, log: slog.New(slog.DiscardHandler), prog: &progress{}, rep: &Report{}, now: time.Now()}
	for _, s := range in.sources {
		err := b.tx(ctx, func(w *writer) error {
			sink := newAdvSink(w, s.name, &SourceReport{})
			err := pipeline(ctx, len(s.advs), func(i int) prepared {
				p, err := prepare(c, s.advs[i])
				if err != nil {
					panic(err)
				}
				return p
			}, func(p prepared) error { return sink.put(p, p.a.ID) })
			if err != nil {
				return err
			}
			return im.finishAdvisories(w, s.name, sink, fetched{origin: "bench"})
		})
		if err != nil {
			return err
		}
	}
	err = b.tx(ctx, func(w *writer) error {
		for i := range in.kev {
			if err := w.putKEV(&in.kev[i]); err != nil {
				return err
			}
		}
		_, err := putNVD(w, in.nvd)
		return err
	})
	if err != nil {
		return err
	}
	return b.commit(ctx)
}

var (
	boltAdv  = []byte("advisories") // source \x00 id → encoded advisory
	boltIdx  = []byte("affected")   // ecosystem \x00 name \x00 source \x00 id → nothing
	boltKEV  = []byte("kev")        // cve → KEV JSON
	boltCVSS = []byte("nvd_cvss")   // cve → []CVSS JSON
)

// buildBolt writes in to a bbolt file: one transaction per source, the
// same encoding work as SQLite, fsync at each commit (bbolt's default).
func buildBolt(ctx context.Context, path string, c codec, in *storeInput) error {
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	for _, s := range in.sources {
		err := db.Update(func(tx *bolt.Tx) error {
			adv, err := tx.CreateBucketIfNotExists(boltAdv)
			if err != nil {
				return err
			}
			idx, err := tx.CreateBucketIfNotExists(boltIdx)
			if err != nil {
				return err
			}
			return pipeline(ctx, len(s.advs), func(i int) prepared {
				p, err := prepare(c, s.advs[i])
				if err != nil {
					panic(err)
				}
				return p
			}, func(p prepared) error {
				key := []byte(s.name + "\x00" + p.a.ID)
				if err := adv.Put(key, p.blob); err != nil {
					return err
				}
				for _, af := range p.a.Affected {
					k := af.Package.Ecosystem + "\x00" + NormalizeName(af.Package.Ecosystem, af.Package.Name) + "\x00"
					if err := idx.Put(append([]byte(k), key...), nil); err != nil {
						return err
					}
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
	}
	return db.Update(func(tx *bolt.Tx) error {
		kev, err := tx.CreateBucketIfNotExists(boltKEV)
		if err != nil {
			return err
		}
		for _, k := range in.kev {
			js, _ := json.Marshal(k)
			if err := kev.Put([]byte(k.CVE), js); err != nil {
				return err
			}
		}
		cvss, err := tx.CreateBucketIfNotExists(boltCVSS)
		if err != nil {
			return err
		}
		for _, r := range in.nvd {
			js, _ := json.Marshal(r.Metrics)
			if err := cvss.Put([]byte(r.ID), js); err != nil {
				return err
			}
		}
		return nil
	})
}

func openBolt(path string, c codec) (lookupFunc, func(), error) {
	db, err := bolt.Open(path, 0o444, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, nil, err
	}
	lookup := func(ctx context.Context, eco, name string) ([]*Advisory, error) {
		var out []*Advisory
		err := db.View(func(tx *bolt.Tx) error {
			adv, idx := tx.Bucket(boltAdv), tx.Bucket(boltIdx)
			prefix := []byte(eco + "\x00" + name + "\x00")
			cur := idx.Cursor()
			for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
				js, err := c.decode(adv.Get(k[len(prefix):]))
				if err != nil {
					return err
				}
				a := new(Advisory)
				if err := json.Unmarshal(js, a); err != nil {
					return err
				}
				if !slices.ContainsFunc(out, func(o *Advisory) bool { return o.ID == a.ID }) {
					out = append(out, a)
				}
			}
			return nil
		})
		return out, err
	}
	return lookup, func() { db.Close() }, nil
}

// peakRSS samples the process's resident set size until stop.
type peakRSS struct {
	base, peak int64
	stop, done chan struct{}
}

func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// cpuTime is the user+system CPU time of the process so far, read from
// /proc/self/stat (clock ticks of 10 ms); 0 where that does not exist. On
// a shared machine it varies less than wall time.
func cpuTime() time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3, state
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func startPeakRSS() *peakRSS {
	debug.FreeOSMemory()
	p := &peakRSS{base: rss(), stop: make(chan struct{}), done: make(chan struct{})}
	p.peak = p.base
	go func() {
		defer close(p.done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if r := rss(); r > p.peak {
				p.peak = r
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// end stops sampling and returns the peak growth over the start, in MB.
func (p *peakRSS) end() float64 {
	close(p.stop)
	<-p.done
	return float64(p.peak-p.base) / (1 << 20)
}

// BenchmarkStoreBuild: build time of all sources, file size, peak RSS.
func BenchmarkStoreBuild(b *testing.B) {
	in := loadStoreInput(b)
	for _, st := range benchStores() {
		b.Run(st.name, func(b *testing.B) {
			dir := b.TempDir()
			var size int64
			var peak float64
			var cpu time.Duration
			i := 0
			for b.Loop() {
				path := filepath.Join(dir, fmt.Sprintf("db-%d", i))
				i++
				p := startPeakRSS()
				c := cpuTime()
				if err := st.build(b.Context(), path, in); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime() - c
				peak = max(peak, p.end())
				fi, err := os.Stat(path)
				if err != nil {
					b.Fatal(err)
				}
				size = fi.Size()
				os.Remove(path)
			}
			b.ReportMetric(float64(size)/(1<<20), "file-MB")
			b.ReportMetric(peak, "peak-rss-MB")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// BenchmarkStoreLookup: 1,000 uncached (ecosystem, name) lookups per op,
// each decoding every advisory found.
func BenchmarkStoreLookup(b *testing.B) {
	in := loadStoreInput(b)
	for _, st := range benchStores() {
		b.Run(st.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "db")
			if err := st.build(b.Context(), path, in); err != nil {
				b.Fatal(err)
			}
			lookup, closeFn, err := st.open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer closeFn()
			found := 0
			var lat []time.Duration
			for b.Loop() {
				found = 0
				for _, p := range in.pairs {
					start := time.Now()
					advs, err := lookup(b.Context(), p[0], p[1])
					if err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(start))
					found += len(advs)
				}
			}
			if found == 0 {
				b.Fatal("no advisory found")
			}
			slices.Sort(lat)
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(len(in.pairs)), "µs/lookup")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(found), "advisories/op")
		})
	}
}

// BenchmarkImportAll imports all of the shared data with Import.
func BenchmarkImportAll(b *testing.B) {
	inputs := realInputs(b)
	dir := b.TempDir()
	var size int64
	var peak float64
	var cpu time.Duration
	i := 0
	for b.Loop() {
		path := filepath.Join(dir, fmt.Sprintf("db-%d", i))
		i++
		p := startPeakRSS()
		c := cpuTime()
		if _, err := Import(b.Context(), path, inputs, Options{}); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c
		peak = max(peak, p.end())
		fi, _ := os.Stat(path)
		size = fi.Size()
		os.Remove(path)
	}
	b.ReportMetric(float64(size)/(1<<20), "file-MB")
	b.ReportMetric(peak, "peak-rss-MB")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkAdvisories: 1,000 lookups per op on a warm handle (what
// matching sees once the cache holds its packages).
func BenchmarkAdvisories(b *testing.B) {
	in := loadStoreInput(b)
	path, _ := realDB(b)
	db := openDB(b, path)
	ctx := b.Context()
	for _, p := range in.pairs {
		if _, err := db.Advisories(ctx, p[0], p[1]); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		for _, p := range in.pairs {
			if _, err := db.Advisories(ctx, p[0], p[1]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(in.pairs)), "ns/lookup")
}
