package proxy

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// handlerTransport serves upstream requests in process (no network), so
// a server using it can run inside a synctest bubble.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// serveLocal sends one request to srv in process.
func serveLocal(t testing.TB, srv http.Handler, method, p string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), method, p, nil))
	return rec
}

// TestTagTTL: within the tag TTL, every HEAD and GET of a tag (many at
// once, or one after another) costs one upstream request in all; a tag
// moved upstream is seen once the TTL has passed.
func TestTagTTL(t *testing.T) {
	t.Parallel()
	const ttl = 5 * time.Second
	e := newEnv(t, envConfig{tagTTL: ttl.String()})
	a := e.push(t, "signed/app", "v1")
	e.signLegacy(t, a, e.key)
	b := e.push(t, "signed/app", "next") // v1 is moved here below
	e.signLegacy(t, b, e.key)
	p := manifestPath("signed/app", "v1")

	synctest.Test(t, func(t *testing.T) {
		srv, err := New(e.cfg, e.srv.verifier, WithUpstreamTransport(handlerTransport{e.up}), WithUpstreamRetry(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		e.up.resetCounts()
		heads := func() int { return e.up.count(http.MethodHead, "/v2/signed/app/manifests/v1") }
		lookups := func() int { return heads() + e.up.count(http.MethodGet, "/v2/signed/app/manifests/v1") }
		wantDigest := func(when string, rec *httptest.ResponseRecorder, want string) {
			t.Helper()
			if rec.Code != http.StatusOK || rec.Header().Get("Docker-Content-Digest") != want {
				t.Fatalf("%s: %d %s, want 200 %s (%s)", when, rec.Code, rec.Header().Get("Docker-Content-Digest"), want, rec.Body)
			}
		}

		// A burst: 20 at once.
		var wg sync.WaitGroup
		recs := make([]*httptest.ResponseRecorder, 20)
		for i := range recs {
			method := http.MethodHead
			if i%2 == 0 {
				method = http.MethodGet
			}
			wg.Go(func() { recs[i] = serveLocal(t, srv, method, p) })
		}
		wg.Wait()
		for _, rec := range recs {
			wantDigest("burst", rec, a.digest.String())
		}
		// Then one every 400ms, within the TTL.
		for range 10 {
			time.Sleep(400 * time.Millisecond)
			wantDigest("within the TTL", serveLocal(t, srv, http.MethodHead, p), a.digest.String())
		}
		if n := lookups(); n != 1 {
			t.Errorf("upstream requests for the tag within the TTL = %d, want 1", n)
		}

		// The tag moves upstream.
		put := httptest.NewRequestWithContext(t.Context(), http.MethodPut, "/v2/signed/app/manifests/v1", bytes.NewReader(b.raw))
		put.Header.Set("Content-Type", string(b.desc.MediaType))
		rec := httptest.NewRecorder()
		e.up.ServeHTTP(rec, put)
		if rec.Code != http.StatusCreated {
			t.Fatalf("moving the tag upstream: %d %s", rec.Code, rec.Body)
		}
		// Seen once the TTL has passed (4s of it have).
		wantDigest("before the TTL ends", serveLocal(t, srv, http.MethodHead, p), a.digest.String())
		time.Sleep(ttl - 4*time.Second + time.Millisecond)
		wantDigest("after the TTL", serveLocal(t, srv, http.MethodGet, p), b.digest.String())
		wantDigest("after the TTL, again", serveLocal(t, srv, http.MethodHead, p), b.digest.String())
		// The first lookup was a GET (a tag never seen), the second a
		// HEAD (a tag seen, whose digest was likely still cached).
		if n, h := lookups(), heads(); n != 2 || h != 1 {
			t.Errorf("upstream requests for the tag = %d (%d HEADs), want 2 (1 HEAD)", n, h)
		}
		// By digest, the old image is still served.
		wantDigest("old digest", serveLocal(t, srv, http.MethodGet, manifestPath("signed/app", a.digest.String())), a.digest.String())
	})
}

// TestTagTTLZero: with tagTTL 0 every request resolves the tag upstream.
func TestTagTTLZero(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{tagTTL: "0s"})
	f := e.push(t, "signed/app", "v1")
	e.signLegacy(t, f, e.key)
	e.up.resetCounts()
	for range 3 {
		wantStatus(t, e.do(t, http.MethodHead, manifestPath("signed/app", "v1")), http.StatusOK)
	}
	if n := e.up.count(http.MethodHead, "/v2/signed/app/manifests/v1"); n != 3 {
		t.Errorf("upstream HEADs = %d, want 3", n)
	}
}
