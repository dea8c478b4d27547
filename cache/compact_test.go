package cache

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestNewMapRejectsBadSize(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, -1} {
		if _, err := NewMap[int](n); err == nil {
			t.Errorf("NewMap(%d) = nil error, want error", n)
		}
	}
}

func newMap[V any](t testing.TB, n int) *Map[V] {
	t.Helper()
	m, err := NewMap[V](n)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMapSetGetDel(t *testing.T) {
	t.Parallel()
	m := newMap[string](t, 100)
	tests := []struct {
		name string
		do   func()
		key  string
		want string
		ok   bool
	}{
		{"set", func() { m.Set("a", "1", time.Hour) }, "a", "1", true},
		{"overwrite", func() { m.Set("a", "2", time.Hour) }, "a", "2", true},
		{"other key", func() { m.Set("b", "3", time.Hour) }, "a", "2", true},
		{"del", func() { m.Del("a") }, "a", "", false},
		{"zero ttl removes", func() { m.Set("b", "4", 0) }, "b", "", false},
		{"never set", func() {}, "c", "", false},
	}
	for _, tt := range tests {
		tt.do()
		if got, ok := m.Get(tt.key); got != tt.want || ok != tt.ok {
			t.Errorf("%s: Get(%q) = %q, %v; want %q, %v", tt.name, tt.key, got, ok, tt.want, tt.ok)
		}
	}
	if n := m.Len(); n != 0 {
		t.Errorf("Len() = %d after deleting everything, want 0", n)
	}
}

func TestMapTTL(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m := newMap[int](t, 100)
		m.Set("short", 1, 10*time.Second)
		m.Set("long", 2, time.Hour)
		time.Sleep(10*time.Second - time.Nanosecond)
		if _, ok := m.Get("short"); !ok {
			t.Errorf("Get(short) just before its TTL: miss")
		}
		time.Sleep(time.Nanosecond)
		if v, ok := m.Get("short"); ok {
			t.Errorf("Get(short) at its TTL = %d, want a miss", v)
		}
		if v, ok := m.Get("long"); !ok || v != 2 {
			t.Errorf("Get(long) = %d, %v; want 2, true", v, ok)
		}
		// A Set refreshes the TTL.
		m.Set("long", 3, time.Minute)
		time.Sleep(59 * time.Second)
		if v, ok := m.Get("long"); !ok || v != 3 {
			t.Errorf("Get(long) after a refresh = %d, %v; want 3, true", v, ok)
		}
	})
}

// TestMapBound: a full map drops expired entries first, and stays
// within its bound.
func TestMapBound(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const n = 1000
		m := newMap[int](t, n)
		for i := range n / 2 {
			m.Set(fmt.Sprint("old", i), i, time.Second)
		}
		for i := range n / 2 {
			m.Set(fmt.Sprint("keep", i), i, time.Hour)
		}
		// Everything fits.
		for i := range n / 2 {
			if _, ok := m.Get(fmt.Sprint("keep", i)); !ok {
				t.Fatalf("keep%d missing from a map that is not over its bound", i)
			}
		}
		time.Sleep(2 * time.Second) // the old ones expire
		for i := range n / 2 {
			m.Set(fmt.Sprint("new", i), i, time.Hour)
		}
		kept := 0
		for i := range n / 2 {
			if _, ok := m.Get(fmt.Sprint("keep", i)); ok {
				kept++
			}
		}
		// Room was made from expired entries wherever a shard had some;
		// only a few live entries may have gone.
		if kept < n/2*9/10 {
			t.Errorf("%d of %d live entries survived, want most", kept, n/2)
		}
		for i := range 10 * n {
			m.Set(fmt.Sprint("flood", i), i, time.Hour)
			if l := m.Len(); l > n+1 {
				t.Fatalf("Len() = %d after %d sets, bound %d", l, i+1, n)
			}
		}
	})
}

func TestMapConcurrent(t *testing.T) {
	t.Parallel()
	m := newMap[int](t, 500)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := fmt.Sprint(i % 700)
				switch (w + i) % 4 {
				case 0:
					m.Del(k)
				case 1:
					m.Set(k, i, time.Hour)
				default:
					if v, ok := m.Get(k); ok && fmt.Sprint(v%700) != k {
						t.Errorf("Get(%s) = %d: another key's value", k, v)
					}
				}
			}
		})
	}
	wg.Wait()
	if l := m.Len(); l > 500+8 {
		t.Errorf("Len() = %d, bound 500", l)
	}
}
