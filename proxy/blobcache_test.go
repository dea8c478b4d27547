package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/pullgate/pullgate/cache"
)

// gatedBlob makes the upstream answer GETs of blob dgst with body
// (Content-Length len(body)), sending the first half at once and the
// rest only after release is closed. It counts those GETs.
type gatedBlob struct {
	release chan struct{}
	mu      sync.Mutex
	gets    int
}

func (e *env) gateBlob(t testing.TB, dgst v1.Hash, body []byte) *gatedBlob {
	t.Helper()
	g := &gatedBlob{release: make(chan struct{})}
	testDone := e.up.release
	e.up.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+dgst.String()) {
			return false
		}
		g.mu.Lock()
		g.gets++
		g.mu.Unlock()
		half := len(body) / 2
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:half])
		w.(http.Flusher).Flush()
		select {
		case <-g.release:
		case <-testDone:
			return true
		}
		_, _ = w.Write(body[half:])
		return true
	})
	return g
}

func (g *gatedBlob) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gets
}

// stream is a blob response being read by a test client.
type stream struct {
	resp *http.Response
}

func (e *env) open(t testing.TB, p string, hdr ...string) *stream {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.front.URL+p, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.front.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", p, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &stream{resp: resp}
}

// read reads exactly n bytes.
func (s *stream) read(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(s.resp.Body, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

// bigLayerImage is an image whose one layer is size bytes, pushed to
// repo:tag and signed; the manifest is served through pullgate.
func (e *env) bigLayerImage(t testing.TB, repo, tag string, size int64) (layer v1.Hash, content []byte) {
	t.Helper()
	img, err := random.Image(size, 1)
	if err != nil {
		t.Fatal(err)
	}
	f := e.pushImage(t, repo, tag, img)
	e.signLegacy(t, f, e.key)
	wantStatus(t, e.get(t, manifestPath(repo, tag)), http.StatusOK)
	layer = blobsOf(t, f)[1]
	return layer, e.blobBytes(t, layer)
}

// TestBlobFillStreamsToLateJoiner: a client that asks for a blob while
// another's fetch of it is under way gets the bytes already fetched at
// once, before the fetch completes, and both share one upstream GET.
func TestBlobFillStreamsToLateJoiner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	layer, content := e.bigLayerImage(t, "signed/app", "v1", 1<<20)
	g := e.gateBlob(t, layer, content)
	half := len(content) / 2

	first := e.open(t, blobPath("signed/app", layer))
	wantStatus(t, response{status: first.resp.StatusCode}, http.StatusOK)
	if got := first.read(t, half); !bytes.Equal(got, content[:half]) {
		t.Fatal("first client: first half differs")
	}
	// The upstream has sent only the first half, and holds the rest.
	late := e.open(t, blobPath("signed/app", layer))
	if cl := late.resp.Header.Get("Content-Length"); cl != fmt.Sprint(len(content)) {
		t.Errorf("late joiner Content-Length = %q, want %d", cl, len(content))
	}
	if got := late.read(t, half); !bytes.Equal(got, content[:half]) {
		t.Fatal("late joiner: first half differs")
	}
	close(g.release)
	for name, s := range map[string]*stream{"first": first, "late": late} {
		rest, err := io.ReadAll(s.resp.Body)
		if err != nil || !bytes.Equal(rest, content[half:]) {
			t.Errorf("%s client: rest = %d bytes, %v; want the second half", name, len(rest), err)
		}
	}
	if n := g.count(); n != 1 {
		t.Errorf("upstream GETs of the blob = %d, want 1", n)
	}
	// Cached now: no upstream request at all.
	e.up.resetCounts()
	r := e.get(t, blobPath("signed/app", layer))
	if r.status != http.StatusOK || !bytes.Equal(r.body, content) {
		t.Errorf("cached GET: %d, %d bytes", r.status, len(r.body))
	}
	if n := blobRequests(e.up); n != 0 {
		t.Errorf("upstream blob requests after caching = %d, want 0", n)
	}
}

// TestBlobFillCoalesces: N concurrent requests for one blob cost one
// upstream GET, and every client gets the blob.
func TestBlobFillCoalesces(t *testing.T) {
	t.Parallel()
	const n = 40
	e := newEnv(t, envConfig{})
	layer, content := e.bigLayerImage(t, "signed/app", "v1", 256<<10)
	g := e.gateBlob(t, layer, content)
	streams := make([]*stream, n)
	for i := range n {
		// Each has its response headers, so each joined the one fill.
		streams[i] = e.open(t, blobPath("signed/app", layer))
	}
	close(g.release)
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Go(func() {
			b, err := io.ReadAll(s.resp.Body)
			if err != nil || !bytes.Equal(b, content) {
				t.Errorf("client %d: %d bytes, %v", i, len(b), err)
			}
		})
	}
	wg.Wait()
	if got := g.count(); got != 1 {
		t.Errorf("upstream GETs of the blob = %d for %d clients, want 1", got, n)
	}
}

// TestBlobFillMismatchAbortsAll: when the bytes turn out not to match
// the digest, every client streaming them sees its response fail, and
// nothing is left in the cache, not even a temporary file.
func TestBlobFillMismatchAbortsAll(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	layer, content := e.bigLayerImage(t, "signed/app", "v1", 1<<20)
	bad := bytes.Clone(content)
	bad[len(bad)-10] ^= 1 // in the second half
	g := e.gateBlob(t, layer, bad)
	half := len(content) / 2
	clients := []*stream{e.open(t, blobPath("signed/app", layer)), e.open(t, blobPath("signed/app", layer))}
	for _, c := range clients {
		c.read(t, half) // both are streaming
	}
	close(g.release)
	for i, c := range clients {
		rest, err := io.ReadAll(c.resp.Body)
		if err == nil {
			t.Errorf("client %d: %d more bytes and a clean end; want the response aborted", i, len(rest))
		}
		if len(rest) >= len(content)-half {
			t.Errorf("client %d got every byte of a blob that did not verify", i)
		}
	}
	if n, _ := e.blobs.Usage(); n != 0 {
		t.Errorf("%d blobs cached after a mismatch", n)
	}
	waitNoFills(t, e)
	entries, err := os.ReadDir(filepath.Join(e.blobDir, "blobs", "sha256"))
	if err != nil || len(entries) != 0 {
		t.Errorf("cache directory after a mismatch: %v, %v; want empty", entries, err)
	}
	// The upstream mends its ways: the next request fetches again.
	e.up.setFault(nil)
	if r := e.get(t, blobPath("signed/app", layer)); r.status != http.StatusOK || !bytes.Equal(r.body, content) {
		t.Errorf("GET after the upstream was fixed: %d, %d bytes", r.status, len(r.body))
	}
	if n := g.count(); n != 1 {
		t.Errorf("gated GETs = %d, want 1", n)
	}
}

// waitNoFills waits for the fill goroutines to finish (they end right
// after the responses; this is a deadlock guard, not a timing check).
func waitNoFills(t testing.TB, e *env) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		e.srv.fillsMu.Lock()
		n := len(e.srv.fills)
		e.srv.fillsMu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d fills still running", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBlobRangeFromFill: a Range request for a blob not cached starts
// (or joins) the one fill and is answered from it as bytes arrive, but
// every range's last byte waits until the whole blob verified: no
// response completes with bytes that did not verify.
func TestBlobRangeFromFill(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	layer, content := e.bigLayerImage(t, "signed/app", "v1", 1<<20)
	g := e.gateBlob(t, layer, content)
	size := len(content)
	head := e.open(t, blobPath("signed/app", layer), "Range", "bytes=10-19")
	tail := e.open(t, blobPath("signed/app", layer), "Range", fmt.Sprintf("bytes=%d-", size-5))
	if head.resp.StatusCode != http.StatusPartialContent || head.resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 10-19/%d", size) {
		t.Errorf("head range: %d %q", head.resp.StatusCode, head.resp.Header.Get("Content-Range"))
	}
	// The first half is there: the head range streams, but holds its
	// last byte until the fetch completes and verifies.
	got := head.read(t, 9)
	if !bytes.Equal(got, content[10:19]) {
		t.Errorf("head range bytes differ")
	}
	close(g.release)
	if got, err := io.ReadAll(head.resp.Body); err != nil || !bytes.Equal(got, content[19:20]) {
		t.Errorf("head range last byte = %q, %v", got, err)
	}
	if got, err := io.ReadAll(tail.resp.Body); err != nil || !bytes.Equal(got, content[size-5:]) {
		t.Errorf("tail range = %q, %v", got, err)
	}
	if n := g.count(); n != 1 {
		t.Errorf("upstream GETs = %d, want 1 (no Range passed upstream)", n)
	}
	// From the cache, every form.
	tests := []struct {
		rng        string
		wantStatus int
		want       []byte
	}{
		{"bytes=0-0", http.StatusPartialContent, content[:1]},
		{"bytes=-3", http.StatusPartialContent, content[size-3:]},
		{fmt.Sprintf("bytes=5-%d", size+100), http.StatusPartialContent, content[5:]},
		{"bytes=9-3", http.StatusOK, content},
		{fmt.Sprintf("bytes=%d-", size), http.StatusRequestedRangeNotSatisfiable, nil},
		{"bytes=-0", http.StatusRequestedRangeNotSatisfiable, nil},
	}
	for _, tt := range tests {
		r := e.do(t, http.MethodGet, blobPath("signed/app", layer), "Range", tt.rng)
		if tt.wantStatus == http.StatusRequestedRangeNotSatisfiable {
			wantError(t, r, tt.wantStatus, "RANGE_INVALID")
			continue
		}
		if r.status != tt.wantStatus || !bytes.Equal(r.body, tt.want) {
			t.Errorf("Range %s: %d, %d bytes; want %d, %d bytes", tt.rng, r.status, len(r.body), tt.wantStatus, len(tt.want))
		}
	}
}

// TestBlobHeadDoesNotFill: a HEAD for a blob not cached asks the
// upstream with a HEAD and caches nothing; once cached, HEADs are local.
func TestBlobHeadDoesNotFill(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	layer, content := e.bigLayerImage(t, "signed/app", "v1", 4096)
	e.up.resetCounts()
	r := e.do(t, http.MethodHead, blobPath("signed/app", layer))
	if r.status != http.StatusOK || r.header.Get("Content-Length") != fmt.Sprint(len(content)) {
		t.Errorf("HEAD: %d, Content-Length %q", r.status, r.header.Get("Content-Length"))
	}
	if n := e.up.count(http.MethodHead, "/v2/signed/app/blobs/"+layer.String()); n != 1 {
		t.Errorf("upstream HEADs = %d, want 1", n)
	}
	if n, _ := e.blobs.Usage(); n != 0 {
		t.Errorf("a HEAD cached %d blobs", n)
	}
	wantStatus(t, e.get(t, blobPath("signed/app", layer)), http.StatusOK)
	waitNoFills(t, e)
	e.up.resetCounts()
	r = e.do(t, http.MethodHead, blobPath("signed/app", layer))
	if r.status != http.StatusOK || r.header.Get("Content-Length") != fmt.Sprint(len(content)) || len(r.body) != 0 {
		t.Errorf("cached HEAD: %d, Content-Length %q, %d body bytes", r.status, r.header.Get("Content-Length"), len(r.body))
	}
	if n := e.up.total(); n != 0 {
		t.Errorf("upstream requests for a cached HEAD = %d, want 0", n)
	}
}

// TestBlobCacheSurvivesRestart: a new server on the same cache
// directory serves the blob without fetching it again.
func TestBlobCacheSurvivesRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	layer, content := e.bigLayerImage(t, "signed/app", "v1", 64<<10)
	wantStatus(t, e.get(t, blobPath("signed/app", layer)), http.StatusOK)
	waitNoFills(t, e)
	e.srv.Close()

	disk, err := cache.NewDisk(e.blobDir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(e.cfg, verifierFunc(e.srv.verifier.Verify), WithBlobCache(disk), WithUpstreamTransport(e.hosts))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	front := httptest.NewServer(srv)
	t.Cleanup(front.Close)
	e.front = front
	wantStatus(t, e.get(t, manifestPath("signed/app", "v1")), http.StatusOK) // grants are in memory
	e.up.resetCounts()
	r := e.get(t, blobPath("signed/app", layer))
	if r.status != http.StatusOK || !bytes.Equal(r.body, content) {
		t.Errorf("GET after restart: %d, %d bytes", r.status, len(r.body))
	}
	if n := blobRequests(e.up); n != 0 {
		t.Errorf("upstream blob requests after a restart = %d, want 0", n)
	}
}

// TestBlobFill429: an upstream 429 for the shared fetch reaches every
// waiting client as TOOMANYREQUESTS with the Retry-After, is not cached,
// and is honoured: no request goes upstream before the Retry-After.
func TestBlobFill429(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{retry: true})
	layer, content := e.bigLayerImage(t, "signed/app", "v1", 4096)
	var mu sync.Mutex
	limited := true
	gets := 0
	e.up.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/blobs/") {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		gets++
		if !limited {
			return false
		}
		w.Header().Set("Retry-After", "3600") // beyond pullgate's 10s wait
		writeUpstreamError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", "slow down")
		return true
	})
	for range 3 {
		r := e.get(t, blobPath("signed/app", layer))
		oe := wantError(t, r, http.StatusTooManyRequests, "TOOMANYREQUESTS")
		if ra := r.header.Get("Retry-After"); ra == "" || ra > "3600" {
			t.Errorf("Retry-After = %q, want at most 3600", ra)
		}
		_ = oe
	}
	mu.Lock()
	if gets != 1 {
		t.Errorf("upstream blob requests = %d, want 1 (later ones wait for the Retry-After)", gets)
	}
	mu.Unlock()
	if n, _ := e.blobs.Usage(); n != 0 {
		t.Errorf("a 429 cached %d blobs", n)
	}
	// A server without the hold (a restart) gets the blob once the
	// upstream serves it again: the 429 was never cached.
	mu.Lock()
	limited = false
	mu.Unlock()
	for _, u := range e.srv.upstreams {
		u.Close()
	}
	srv, err := New(e.cfg, verifierFunc(e.srv.verifier.Verify), WithBlobCache(e.blobs), WithUpstreamTransport(e.hosts))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e.front = httptest.NewServer(srv)
	t.Cleanup(e.front.Close)
	wantStatus(t, e.get(t, manifestPath("signed/app", "v1")), http.StatusOK)
	if r := e.get(t, blobPath("signed/app", layer)); r.status != http.StatusOK || !bytes.Equal(r.body, content) {
		t.Errorf("GET after the rate limit: %d, %d bytes", r.status, len(r.body))
	}
}

// TestConcurrentFullPulls: N clients pulling one new image at once, as a
// node rollout does, cost one upstream request for the tag (the GET of
// the manifest), one GET of each blob, and one verification.
func TestConcurrentFullPulls(t *testing.T) {
	t.Parallel()
	const n = 30
	e := newEnv(t, envConfig{tagTTL: "1m"})
	img, err := random.Image(512<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	f := e.pushImage(t, "signed/app", "v2", img)
	e.signLegacy(t, f, e.key)
	e.up.resetCounts()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if got, err := e.pull(t, testRegistry+"/signed/app:v2"); err != nil || got != f.digest {
				t.Errorf("pull %d: %s, %v", i, got, err)
			}
		})
	}
	wg.Wait()
	headTag := e.up.count(http.MethodHead, "/v2/signed/app/manifests/v2")
	getTag := e.up.count(http.MethodGet, "/v2/signed/app/manifests/v2")
	counts := map[string]int{
		// A tag never seen is fetched with one GET (no HEAD first).
		"lookups of the tag":   headTag + getTag,
		"GETs of the manifest": getTag + e.up.count(http.MethodGet, "/v2/signed/app/manifests/"+f.digest.String()),
		"verifications":        int(e.verifies.Load()),
		"GETs of the .sig":     e.up.count(http.MethodGet, "/v2/signed/app/manifests/sha256-"+f.digest.Hex+".sig"),
	}
	want := map[string]int{"lookups of the tag": 1, "GETs of the manifest": 1, "verifications": 1, "GETs of the .sig": 1}
	for _, b := range blobsOf(t, f) {
		counts["GET blob "+b.String()[:15]] = e.up.count(http.MethodGet, "/v2/signed/app/blobs/"+b.String())
		want["GET blob "+b.String()[:15]] = 1
	}
	for k, w := range want {
		if counts[k] != w {
			t.Errorf("%s: %d upstream requests, want %d", k, counts[k], w)
		}
	}
}

// TestFillEndsOnClose: Close ends a fill stuck on its upstream.
func TestFillEndsOnClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	layer, content := e.bigLayerImage(t, "signed/app", "v1", 1<<20)
	e.gateBlob(t, layer, content) // never released
	s := e.open(t, blobPath("signed/app", layer))
	s.read(t, 100)
	done := make(chan struct{})
	go func() { e.srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute): // a deadlock guard, not a timing assertion
		t.Fatal("Close did not end the fill")
	}
	if _, err := io.ReadAll(s.resp.Body); err == nil {
		t.Errorf("the client saw a clean end of a blob whose fetch was cut")
	}
	if n, _ := e.blobs.Usage(); n != 0 {
		t.Errorf("%d blobs cached from a cut fetch", n)
	}
}
