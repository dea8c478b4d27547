package cache

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"
)

// Group coalesces concurrent calls that do the same work: callers with
// the same key share one execution and its result. A Group is owned by the
// struct that uses it (never a package global). The zero value is ready to
// use, with a 2-minute bound on each execution.
type Group[V any] struct {
	// Timeout bounds one execution of the shared work, which runs on a
	// context detached from the callers' cancellation. Zero means 2 minutes.
	Timeout time.Duration

	g singleflight.Group
}

// Do runs fn once for all concurrent callers with the same key and returns
// its result to each. shared reports whether the result went to more than
// one caller. fn receives a context that keeps ctx's values but not its
// cancellation, so one client going away does not fail the work for the
// others; a caller whose ctx ends stops waiting and gets ctx's error. A
// panic in fn is returned as an error.
func (g *Group[V]) Do(ctx context.Context, key string, fn func(context.Context) (V, error)) (v V, shared bool, err error) {
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ch := g.g.DoChan(key, func() (res any, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("cache: coalesced work for %q panicked: %v", key, p)
			}
		}()
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		return fn(wctx)
	})
	select {
	case <-ctx.Done():
		var zero V
		return zero, false, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			var zero V
			return zero, r.Shared, r.Err
		}
		v, _ = r.Val.(V) // a nil interface result stays the zero V
		return v, r.Shared, nil
	}
}
