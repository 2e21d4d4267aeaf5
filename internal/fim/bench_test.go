package fim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkScan scans a tree of 2,000 files of 16 KiB (32 MiB, page cache
// warm) recording NORMAL (stat, xattrs, sha256).
func BenchmarkScan(b *testing.B) {
	root := b.TempDir()
	data := make([]byte, 16<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	var total int64
	for d := 0; d < 40; d++ {
		dir := filepath.Join(root, fmt.Sprintf("d%02d", d))
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < 50; f++ {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", f)), data, 0o644); err != nil {
				b.Fatal(err)
			}
			total += int64(len(data))
		}
	}
	c, err := ParseConfig([]byte("watch: [{path: "+root+", attrs: NORMAL}]"), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		res, err := Scan(context.Background(), c, ScanOptions{})
		if err != nil || len(res.Entries) != 2041 {
			b.Fatalf("%v, %d entries", err, len(res.Entries))
		}
	}
}

// BenchmarkMatch is Config.Match on the default configuration.
func BenchmarkMatch(b *testing.B) {
	c := DefaultConfig()
	for b.Loop() {
		c.Match("/usr/lib/x86_64-linux-gnu/libc.so.6")
	}
}
