package cache

import (
	"errors"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Memory is a bounded in-memory cache with a TTL per entry, backed by
// ristretto. Keys are strings; the cost of an entry is given by the caller
// (1 for a verdict, the length for bytes). It is safe for concurrent use.
type Memory[V any] struct {
	c *ristretto.Cache[string, V]
}

// NewMemory returns a cache that holds entries of total cost at most
// maxCost. maxItems is the expected number of entries; it sizes the
// admission counters (ten per item, as ristretto recommends).
func NewMemory[V any](maxItems, maxCost int64) (*Memory[V], error) {
	if maxItems <= 0 || maxCost <= 0 {
		return nil, errors.New("cache: maxItems and maxCost must be positive")
	}
	c, err := ristretto.NewCache(&ristretto.Config[string, V]{
		NumCounters:        maxItems * 10,
		MaxCost:            maxCost,
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, err
	}
	return &Memory[V]{c: c}, nil
}

// Get returns the value stored under key and whether it was found and has
// not expired.
func (m *Memory[V]) Get(key string) (V, bool) {
	return m.c.Get(key)
}

// Set stores v under key for ttl (which must be positive) at the given
// cost. Unlike a bare ristretto Set it returns only once the entry is
// visible to Get, so a verdict recorded before a response is sent is seen
// by the next request. It reports false when the cache refused the entry
// (for example because it is bigger than the whole cache).
func (m *Memory[V]) Set(key string, v V, cost int64, ttl time.Duration) bool {
	if ttl <= 0 {
		return false
	}
	ok := m.c.SetWithTTL(key, v, cost, ttl)
	if !ok {
		// Dropped under contention: drain the buffers and try once more.
		m.c.Wait()
		ok = m.c.SetWithTTL(key, v, cost, ttl)
	}
	m.c.Wait()
	if !ok {
		return false
	}
	_, found := m.c.Get(key)
	return found
}

// Del removes key.
func (m *Memory[V]) Del(key string) {
	m.c.Del(key)
	m.c.Wait()
}

// Close stops the cache's goroutines. The cache must not be used after.
func (m *Memory[V]) Close() {
	m.c.Close()
}
