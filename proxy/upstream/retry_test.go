package upstream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pullgate/pullgate/policy"
)

// handlerTransport serves requests in process with h: no network, so the
// client can run inside a synctest bubble.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// limited is an upstream that answers 429 (with retryAfter, if set) to
// the first `limit` manifest requests, then 200, and records when each
// manifest request arrived.
type limited struct {
	mu         sync.Mutex
	limit      int
	retryAfter string
	arrivals   []time.Time
}

func (l *limited) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v2/" {
		return
	}
	l.mu.Lock()
	l.arrivals = append(l.arrivals, time.Now())
	n := len(l.arrivals)
	l.mu.Unlock()
	if n <= l.limit {
		if l.retryAfter != "" {
			w.Header().Set("Retry-After", l.retryAfter)
		}
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	w.Header().Set("Docker-Content-Digest", "sha256:"+strconv.Itoa(n))
}

func (l *limited) requests() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.arrivals)
}

func newLimitedClient(t *testing.T, l *limited, opts ...Option) *Client {
	t.Helper()
	u, _ := url.Parse("http://reg.test")
	c, err := New(&policy.Upstream{Registry: "reg.test", Endpoint: u}, append([]Option{WithTransport(handlerTransport{l})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func head(ctx context.Context, c *Client) error {
	_, err := c.Manifest(ctx, http.MethodHead, "a", "v1", 1024)
	return err
}

func want429(t *testing.T, err error, retryAfter string) {
	t.Helper()
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusTooManyRequests || se.RetryAfter != retryAfter {
		t.Fatalf("error = %v (%+v), want a 429 with Retry-After %q", err, se, retryAfter)
	}
}

// TestRetryHonoursRetryAfter: a 429 is retried after the Retry-After the
// upstream asked for, or after an exponential backoff without one.
func TestRetryHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		limit      int
		retryAfter string
		wantGaps   []time.Duration
	}{
		{"Retry-After seconds", 2, "3", []time.Duration{3 * time.Second, 3 * time.Second}},
		{"no Retry-After: backoff", 3, "", []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
		{"Retry-After 0", 1, "0", []time.Duration{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				l := &limited{limit: tt.limit, retryAfter: tt.retryAfter}
				c := newLimitedClient(t, l)
				defer c.Close()
				if err := head(t.Context(), c); err != nil {
					t.Fatalf("HEAD after %d 429s = %v, want success", tt.limit, err)
				}
				if got := l.requests(); got != tt.limit+1 {
					t.Fatalf("upstream requests = %d, want %d", got, tt.limit+1)
				}
				for i, want := range tt.wantGaps {
					if got := l.arrivals[i+1].Sub(l.arrivals[i]); got != want {
						t.Errorf("wait before retry %d = %v, want %v", i+1, got, want)
					}
				}
			})
		})
	}
}

// TestRetryGivesUp: a Retry-After longer than maxWait, a deadline too
// close, or exhausted retries return the 429 with a Retry-After, and
// until it has passed no request reaches the upstream.
func TestRetryGivesUp(t *testing.T) {
	t.Parallel()
	t.Run("Retry-After beyond maxWait", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			l := &limited{limit: 1, retryAfter: "30"}
			c := newLimitedClient(t, l)
			defer c.Close()
			want429(t, head(t.Context(), c), "30")
			// Within the 30s: refused without asking the upstream.
			time.Sleep(10 * time.Second)
			want429(t, head(t.Context(), c), "20")
			// Within maxWait (10s) of the end: waits, then goes.
			time.Sleep(12 * time.Second)
			start := time.Now()
			if err := head(t.Context(), c); err != nil {
				t.Fatalf("HEAD after the wait = %v", err)
			}
			if waited := time.Since(start); waited != 8*time.Second {
				t.Errorf("waited %v, want 8s", waited)
			}
			if got := l.requests(); got != 2 {
				t.Errorf("upstream requests = %d, want 2", got)
			}
		})
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			l := &limited{limit: 5, retryAfter: "5"}
			c := newLimitedClient(t, l)
			defer c.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
			defer cancel()
			want429(t, head(ctx, c), "5")
			if got := l.requests(); got != 1 {
				t.Errorf("upstream requests = %d, want 1", got)
			}
		})
	})
	t.Run("retries exhausted", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			l := &limited{limit: 10}
			c := newLimitedClient(t, l, WithRetry(2, time.Minute))
			defer c.Close()
			want429(t, head(t.Context(), c), "4") // the next backoff
			if got := l.requests(); got != 3 {
				t.Errorf("upstream requests = %d, want 3", got)
			}
		})
	})
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			l := &limited{limit: 2, retryAfter: "60"}
			c := newLimitedClient(t, l, WithRetry(0, 0))
			defer c.Close()
			want429(t, head(t.Context(), c), "60")
			want429(t, head(t.Context(), c), "60") // straight through again
			if err := head(t.Context(), c); err != nil {
				t.Fatalf("third HEAD = %v", err)
			}
		})
	})
}

// TestRetryConcurrent: requests that arrive while the upstream asked to
// wait queue behind the Retry-After instead of each hitting it.
func TestRetryConcurrent(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := &limited{limit: 1, retryAfter: "2"}
		c := newLimitedClient(t, l)
		defer c.Close()
		if err := head(t.Context(), c); err != nil { // 429, waits 2s, 200
			t.Fatal(err)
		}
		l.mu.Lock()
		l.limit, l.arrivals = 1, nil
		l.mu.Unlock()
		var wg sync.WaitGroup
		errs := make([]error, 10)
		wg.Go(func() { errs[0] = head(t.Context(), c) }) // the one that gets the 429
		synctest.Wait()
		for i := 1; i < len(errs); i++ {
			wg.Go(func() { errs[i] = head(t.Context(), c) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
		}
		for i, at := range l.arrivals[1:] {
			if got := at.Sub(l.arrivals[0]); got < 2*time.Second {
				t.Errorf("request %d reached the upstream %v after the 429, before its Retry-After", i+1, got)
			}
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 7 ", 7 * time.Second, true},
		{"99999999", 24 * time.Hour, true},
		{"999999999999999999999999", 24 * time.Hour, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"Wed, 25 Nov 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Wed, 25 Nov 2026 11:00:00 GMT", 0, true},
		{"Fri, 25 Nov 2033 12:00:00 GMT", 24 * time.Hour, true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "Wed, 25 Nov 2026 12:00:30 GMT", "999999999999999999999", "-1"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if d < 0 || d > maxRetryAfter || !ok && d != 0 {
			t.Errorf("parseRetryAfter(%q) = %v, %v", s, d, ok)
		}
	})
}
