package cache

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newMemory[V any](t testing.TB, items, cost int64) *Memory[V] {
	t.Helper()
	m, err := NewMemory[V](items, cost)
	if err != nil {
		t.Fatalf("NewMemory: %v", err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestNewMemoryRejectsBadSizes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ items, cost int64 }{{0, 1}, {1, 0}, {-1, 5}} {
		if _, err := NewMemory[int](tt.items, tt.cost); err == nil {
			t.Errorf("NewMemory(%d, %d) = nil error, want error", tt.items, tt.cost)
		}
	}
}

func TestMemorySetIsVisibleImmediately(t *testing.T) {
	t.Parallel()
	m := newMemory[string](t, 1000, 1000)
	// Many sets in a row: each must be readable as soon as Set returns,
	// which a bare ristretto Set does not guarantee.
	for i := range 500 {
		key := "k" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
		if !m.Set(key, key, 1, time.Minute) {
			t.Fatalf("Set(%q) = false, want true", key)
		}
		if got, ok := m.Get(key); !ok || got != key {
			t.Fatalf("Get(%q) after Set = %q, %v; want %q, true", key, got, ok, key)
		}
	}
}

func TestMemoryTTLAndDel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m, err := NewMemory[int](100, 100)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		m.Set("short", 1, 1, 10*time.Second)
		m.Set("long", 2, 1, time.Hour)
		m.Set("gone", 3, 1, time.Hour)
		m.Del("gone")
		if _, ok := m.Get("gone"); ok {
			t.Errorf("Get(gone) after Del found an entry")
		}
		time.Sleep(11 * time.Second)
		if v, ok := m.Get("short"); ok {
			t.Errorf("Get(short) after its TTL = %d, want a miss", v)
		}
		if v, ok := m.Get("long"); !ok || v != 2 {
			t.Errorf("Get(long) = %d, %v; want 2, true", v, ok)
		}
	})
}

func TestMemoryRefusals(t *testing.T) {
	t.Parallel()
	m := newMemory[[]byte](t, 10, 100)
	tests := []struct {
		name string
		cost int64
		ttl  time.Duration
		want bool
	}{
		{"fits", 10, time.Minute, true},
		{"bigger than the cache", 101, time.Minute, false},
		{"zero ttl", 1, 0, false},
		{"negative ttl", 1, -time.Second, false},
	}
	for _, tt := range tests {
		if got := m.Set(tt.name, make([]byte, tt.cost), tt.cost, tt.ttl); got != tt.want {
			t.Errorf("Set(%s) = %v, want %v", tt.name, got, tt.want)
		}
		if _, ok := m.Get(tt.name); ok != tt.want {
			t.Errorf("Get(%s) found = %v, want %v", tt.name, ok, tt.want)
		}
	}
}

func TestMemoryBoundsTotalCost(t *testing.T) {
	t.Parallel()
	m := newMemory[int](t, 100, 50)
	for i := range 200 {
		m.Set(string(rune(i+1000)), i, 1, time.Hour)
	}
	n := 0
	for i := range 200 {
		if _, ok := m.Get(string(rune(i + 1000))); ok {
			n++
		}
	}
	if n > 50 {
		t.Errorf("cache holds %d entries of cost 1, want at most 50", n)
	}
}

func TestGroupCoalesces(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var g Group[int]
		var runs atomic.Int32
		release := make(chan struct{})
		const callers = 50
		var done sync.WaitGroup
		results := make([]int, callers)
		for i := range callers {
			done.Go(func() {
				v, _, err := g.Do(t.Context(), "digest", func(context.Context) (int, error) {
					runs.Add(1)
					<-release
					return 42, nil
				})
				if err != nil {
					t.Errorf("Do: %v", err)
				}
				results[i] = v
			})
		}
		synctest.Wait() // every caller is now blocked inside Do
		close(release)
		done.Wait()
		if got := runs.Load(); got != 1 {
			t.Errorf("work ran %d times for %d concurrent callers, want 1", got, callers)
		}
		for i, v := range results {
			if v != 42 {
				t.Errorf("caller %d got %d, want 42", i, v)
			}
		}
	})
}

func TestGroupDistinctKeysRunSeparately(t *testing.T) {
	t.Parallel()
	var g Group[string]
	for _, k := range []string{"a", "b"} {
		v, shared, err := g.Do(t.Context(), k, func(context.Context) (string, error) { return k, nil })
		if err != nil || v != k || shared {
			t.Errorf("Do(%q) = %q, %v, %v; want %q, false, nil", k, v, shared, err, k)
		}
	}
}

func TestGroupCallerCancellationDoesNotCancelWork(t *testing.T) {
	t.Parallel()
	var g Group[int]
	ctx, cancel := context.WithCancel(t.Context())
	workCtxErr := make(chan error, 1)
	release := make(chan struct{})
	go func() {
		time.Sleep(20 * time.Millisecond) // not a timing assertion: only lets Do start waiting
		cancel()
	}()
	_, _, err := g.Do(ctx, "k", func(wctx context.Context) (int, error) {
		<-release
		workCtxErr <- wctx.Err()
		return 1, nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Do with a cancelled caller = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-workCtxErr; err != nil {
		t.Errorf("shared work saw its context end (%v) when one caller left", err)
	}
}

func TestGroupPanicBecomesError(t *testing.T) {
	t.Parallel()
	var g Group[*int]
	v, _, err := g.Do(t.Context(), "k", func(context.Context) (*int, error) { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "boom") || v != nil {
		t.Errorf("Do(panicking) = %v, %v; want nil and an error mentioning the panic", v, err)
	}
}

func TestGroupTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := Group[int]{Timeout: time.Second}
		_, _, err := g.Do(t.Context(), "k", func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Do past its timeout = %v, want DeadlineExceeded", err)
		}
	})
}

func TestGroupNilInterfaceResult(t *testing.T) {
	t.Parallel()
	var g Group[error]
	v, _, err := g.Do(t.Context(), "k", func(context.Context) (error, error) { return nil, nil })
	if v != nil || err != nil {
		t.Errorf("Do = %v, %v; want nil, nil", v, err)
	}
}
