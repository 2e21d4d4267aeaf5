package vulnmatch

import (
	"hash/maphash"
	"sync"
)

// boundedCache is a concurrent map that forgets: it is split in shards,
// and a shard that reaches its share of the capacity is emptied before the
// next insert. Matching keeps parsed versions and compiled advisories in
// such caches across calls of Match, so a warm process (and the vulndb LRU
// that hands out the same advisories again) does not redo the work, while
// memory stays bounded.
type boundedCache[K comparable, V any] struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]cacheShard[K, V]
}

const cacheShards = 32

type cacheShard[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

func newBoundedCache[K comparable, V any](capacity int) *boundedCache[K, V] {
	return &boundedCache[K, V]{seed: maphash.MakeSeed(), perShard: max(1, capacity/cacheShards)}
}

func (c *boundedCache[K, V]) shard(k K) *cacheShard[K, V] {
	return &c.shards[maphash.Comparable(c.seed, k)%cacheShards]
}

func (c *boundedCache[K, V]) get(k K) (V, bool) {
	sh := c.shard(k)
	sh.mu.RLock()
	v, ok := sh.m[k]
	sh.mu.RUnlock()
	return v, ok
}

func (c *boundedCache[K, V]) put(k K, v V) {
	sh := c.shard(k)
	sh.mu.Lock()
	if sh.m == nil || len(sh.m) >= c.perShard {
		sh.m = make(map[K]V, 64)
	}
	sh.m[k] = v
	sh.mu.Unlock()
}

// reset empties the cache.
func (c *boundedCache[K, V]) reset() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.m = nil
		sh.mu.Unlock()
	}
}
