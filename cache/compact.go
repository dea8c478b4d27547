package cache

import (
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// mapShards is the number of independently locked parts of a [Map].
const mapShards = 64

// Map is a bounded map from string keys to values with a TTL each,
// built to hold many small entries (verdicts, blob grants, tags) in
// little memory: it keeps no key, only a 128-bit keyed hash of it (two
// 64-bit hashes with per-map random seeds, so collisions can neither be
// found offline nor be expected: about 2^-128 per pair of keys), and one
// expiry per entry. A full Map makes room by dropping expired entries,
// then arbitrary ones; every entry is something its owner can recompute.
// It is safe for concurrent use. Unlike [Memory], a Set is visible to
// the next Get at once and is never refused.
type Map[V any] struct {
	seeds [2]maphash.Seed
	max   int64
	n     atomic.Int64 // entries held, across shards
	// sweepAfter is when makeRoom may next scan every shard.
	sweepAfter atomic.Int64
	shards     [mapShards]mapShard[V]
}

type mapShard[V any] struct {
	mu sync.Mutex
	m  map[[2]uint64]mapEntry[V]
}

type mapEntry[V any] struct {
	v   V
	exp int64 // unix nanoseconds
}

// NewMap returns a map that holds up to maxEntries entries.
func NewMap[V any](maxEntries int) (*Map[V], error) {
	if maxEntries <= 0 {
		return nil, errors.New("cache: maxEntries must be positive")
	}
	m := &Map[V]{
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		max:   int64(maxEntries),
	}
	for i := range m.shards {
		m.shards[i].m = map[[2]uint64]mapEntry[V]{}
	}
	return m, nil
}

func (m *Map[V]) locate(key string) (*mapShard[V], [2]uint64) {
	h := [2]uint64{maphash.String(m.seeds[0], key), maphash.String(m.seeds[1], key)}
	return &m.shards[h[0]%mapShards], h
}

// Get returns the value stored under key and whether it was found and
// has not expired.
func (m *Map[V]) Get(key string) (V, bool) {
	s, h := m.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[h]
	if !ok {
		var zero V
		return zero, false
	}
	if time.Now().UnixNano() >= e.exp {
		delete(s.m, h)
		m.n.Add(-1)
		var zero V
		return zero, false
	}
	return e.v, true
}

// Set stores v under key for ttl. A ttl that is not positive removes the
// key.
func (m *Map[V]) Set(key string, v V, ttl time.Duration) {
	s, h := m.locate(key)
	now := time.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, exists := s.m[h]
	if ttl <= 0 {
		if exists {
			delete(s.m, h)
			m.n.Add(-1)
		}
		return
	}
	if !exists {
		if m.n.Load() >= m.max {
			m.makeRoom(s, now)
		}
		m.n.Add(1)
	}
	s.m[h] = mapEntry[V]{v: v, exp: now + int64(ttl)}
}

// makeRoom is called with s locked when the map is full. It drops the
// expired entries of s; failing that, of the other shards (at most once a
// second: a full map of live entries must not make every Set scan it);
// failing that, an arbitrary eighth of s (map iteration order), so that
// the next Sets do not each scan it.
func (m *Map[V]) makeRoom(s *mapShard[V], now int64) {
	dropped := s.dropExpired(now)
	if dropped == 0 && now >= m.sweepAfter.Load() {
		m.sweepAfter.Store(now + int64(time.Second))
		for i := range m.shards {
			o := &m.shards[i]
			if o != s && o.mu.TryLock() {
				dropped += o.dropExpired(now)
				o.mu.Unlock()
			}
		}
	}
	if dropped == 0 {
		drop := max(1, len(s.m)/8)
		for h := range s.m {
			delete(s.m, h)
			if dropped++; dropped == drop {
				break
			}
		}
	}
	m.n.Add(int64(-dropped))
}

// dropExpired deletes the expired entries of s (locked).
func (s *mapShard[V]) dropExpired(now int64) int {
	n := 0
	for h, e := range s.m {
		if now >= e.exp {
			delete(s.m, h)
			n++
		}
	}
	return n
}

// Del removes key.
func (m *Map[V]) Del(key string) {
	s, h := m.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[h]; ok {
		delete(s.m, h)
		m.n.Add(-1)
	}
}

// Len returns the number of entries held, expired ones not yet dropped
// included.
func (m *Map[V]) Len() int { return int(m.n.Load()) }
