package vulndb

import (
	"container/list"
	"sync"
)

// lru is a least-recently-used cache bounded by the total cost of its
// entries, safe for concurrent use.
type lru[K comparable, V any] struct {
	mu      sync.Mutex
	maxCost int
	cost    int
	order   *list.List // front is most recently used; values are *lruEntry
	items   map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key  K
	val  V
	cost int
}

func newLRU[K comparable, V any](maxCost int) *lru[K, V] {
	return &lru[K, V]{maxCost: maxCost, order: list.New(), items: make(map[K]*list.Element)}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// add stores v under k at cost (at least 1) and evicts the least recently
// used entries until the total fits; an entry costing more than the whole
// cache is not kept.
func (c *lru[K, V]) add(k K, v V, cost int) {
	cost = max(cost, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.cost -= e.Value.(*lruEntry[K, V]).cost
		c.order.Remove(e)
		delete(c.items, k)
	}
	if cost > c.maxCost {
		return
	}
	c.items[k] = c.order.PushFront(&lruEntry[K, V]{k, v, cost})
	c.cost += cost
	for c.cost > c.maxCost {
		old := c.order.Back()
		ent := old.Value.(*lruEntry[K, V])
		c.order.Remove(old)
		delete(c.items, ent.key)
		c.cost -= ent.cost
	}
}

func (c *lru[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
