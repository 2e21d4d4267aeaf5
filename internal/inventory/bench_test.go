package inventory_test

import (
	"testing"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// BenchmarkScanRootfs inventories the bookworm root filesystem with every
// extractor on.
func BenchmarkScanRootfs(b *testing.B) {
	rootfs := vigiltest.BookwormRootfs(b)
	for b.Loop() {
		benchScan(b, "dir:"+rootfs)
	}
}

// BenchmarkScanDockerArchive inventories the bookworm image from its
// docker-archive: tar reading, layer merge and extraction.
func BenchmarkScanDockerArchive(b *testing.B) {
	archive := vigiltest.BookwormArchive(b)
	for b.Loop() {
		benchScan(b, "docker-archive:"+archive)
	}
}
