package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/verifier"
	"github.com/pullgate/pullgate/verifier/verifiertest"
)

// rawManifest is a remote.Taggable of exact bytes.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// putRaw pushes exact manifest bytes to ref upstream and returns their digest.
func putRaw(tb testing.TB, ref name.Reference, raw []byte, mt types.MediaType) v1.Hash {
	tb.Helper()
	if err := remote.Put(ref, rawManifest{raw, mt}, remote.WithContext(tb.Context())); err != nil {
		tb.Fatal(err)
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// onPath returns a fault that answers requests whose method is method
// (any when empty) and whose path ends in suffix with answer.
func onPath(method, suffix string, answer func(w http.ResponseWriter, r *http.Request)) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if (method != "" && r.Method != method) || !strings.HasSuffix(r.URL.Path, suffix) {
			return false
		}
		answer(w, r)
		return true
	}
}

func TestUpstreamFaults(t *testing.T) {
	t.Parallel()
	status := func(code int, retryAfter string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			writeUpstreamError(w, code, "SOMETHING", "upstream trouble")
		}
	}
	tests := []struct {
		name       string
		bundle     bool // sign with a bundle (referrers) instead of a .sig
		tagOnly    bool // the fault is on the tag: by digest works
		fault      func(f fixture) func(http.ResponseWriter, *http.Request) bool
		wantStatus int
		wantCode   string
		wantMsg    string
		wantHeader map[string]string
	}{
		{
			name:    "manifest 500",
			tagOnly: true,
			fault: func(fixture) func(http.ResponseWriter, *http.Request) bool {
				return onPath("", "/manifests/v1", status(500, ""))
			},
			wantStatus: http.StatusBadGateway, wantCode: "UNAVAILABLE", wantMsg: "500",
		},
		{
			name: "manifest by digest 503",
			fault: func(f fixture) func(http.ResponseWriter, *http.Request) bool {
				return onPath(http.MethodGet, "/manifests/"+f.digest.String(), status(503, "7"))
			},
			wantStatus: http.StatusBadGateway, wantCode: "UNAVAILABLE", wantMsg: "503", wantHeader: map[string]string{"Retry-After": "7"},
		},
		{
			name:    "manifest 429",
			tagOnly: true,
			fault: func(fixture) func(http.ResponseWriter, *http.Request) bool {
				return onPath("", "/manifests/v1", status(429, "30"))
			},
			wantStatus: http.StatusTooManyRequests, wantCode: "TOOMANYREQUESTS", wantMsg: "429", wantHeader: map[string]string{"Retry-After": "30"},
		},
		{
			name: "signature 500",
			fault: func(f fixture) func(http.ResponseWriter, *http.Request) bool {
				return onPath(http.MethodGet, "/manifests/sha256-"+f.digest.Hex+".sig", status(500, ""))
			},
			wantStatus: http.StatusServiceUnavailable, wantCode: "UNAVAILABLE", wantMsg: "cannot verify reg.test/signed/app@",
		},
		{
			name: "signature blob 429",
			fault: func(f fixture) func(http.ResponseWriter, *http.Request) bool {
				return func(w http.ResponseWriter, r *http.Request) bool {
					if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") {
						return false
					}
					status(429, "5")(w, r)
					return true
				}
			},
			wantStatus: http.StatusTooManyRequests, wantCode: "TOOMANYREQUESTS", wantMsg: "cannot verify", wantHeader: map[string]string{"Retry-After": "5"},
		},
		{
			name:   "referrers 500",
			bundle: true,
			fault: func(f fixture) func(http.ResponseWriter, *http.Request) bool {
				return onPath(http.MethodGet, "/referrers/"+f.digest.String(), status(500, ""))
			},
			wantStatus: http.StatusServiceUnavailable, wantCode: "UNAVAILABLE", wantMsg: "cannot verify",
		},
		{
			name:    "connection reset",
			tagOnly: true,
			fault: func(fixture) func(http.ResponseWriter, *http.Request) bool {
				return onPath("", "/manifests/v1", func(w http.ResponseWriter, _ *http.Request) { panic(http.ErrAbortHandler) })
			},
			wantStatus: http.StatusServiceUnavailable, wantCode: "UNAVAILABLE", wantMsg: "unreachable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envConfig{})
			f := e.push(t, "signed/app", "v1")
			if tt.bundle {
				e.signBundle(t, f, e.key)
			} else {
				e.signLegacy(t, f, e.key)
			}
			e.up.setFault(tt.fault(f))
			refs := []string{"v1", f.digest.String()}
			if tt.tagOnly {
				refs = refs[:1]
			}
			for _, ref := range refs {
				for range 2 { // not cached: the same answer twice, each from upstream
					r := e.get(t, manifestPath("signed/app", ref))
					oe := wantError(t, r, tt.wantStatus, tt.wantCode)
					if !strings.Contains(oe.Message, tt.wantMsg) {
						t.Errorf("%s: message %q does not contain %q", ref, oe.Message, tt.wantMsg)
					}
					for k, v := range tt.wantHeader {
						if got := r.header.Get(k); got != v {
							t.Errorf("%s: header %s = %q, want %q", ref, k, got, v)
						}
					}
				}
			}
			for _, d := range e.logs.lines(t, "decision") {
				if d["verdict"] != "error" {
					t.Errorf("decision line for a fault: %v", d)
				}
			}

			// Recovery: nothing was cached, the same requests now succeed.
			e.up.setFault(nil)
			for _, ref := range []string{"v1", f.digest.String()} {
				r := e.get(t, manifestPath("signed/app", ref))
				wantStatus(t, r, http.StatusOK)
			}
		})
	}
}

// TestUpstreamHangs: an upstream that does not answer before the
// request's deadline gives a 5xx, and nothing is cached.
func TestUpstreamHangs(t *testing.T) {
	t.Parallel()
	hang := func(release <-chan struct{}) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
				// An error, not a broken connection: Go's transport would
				// retry an idempotent request on a fresh connection.
				writeUpstreamError(w, http.StatusInternalServerError, "UNKNOWN", "gave up")
			}
		}
	}
	t.Run("tag lookup", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envConfig{requestTimeout: 300 * time.Millisecond})
		f := e.push(t, "signed/app", "v1")
		e.signLegacy(t, f, e.key)
		e.up.setFault(onPath(http.MethodHead, "/manifests/v1", hang(e.up.release)))
		r := e.get(t, manifestPath("signed/app", "v1"))
		if r.status < 500 || ociErr(t, r).Code != "UNAVAILABLE" {
			t.Fatalf("status = %d, body %s; want a 5xx UNAVAILABLE", r.status, r.body)
		}
		e.up.setFault(nil)
		wantStatus(t, e.get(t, manifestPath("signed/app", "v1")), http.StatusOK)
	})
	t.Run("signature fetch", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envConfig{requestTimeout: 300 * time.Millisecond})
		f := e.push(t, "signed/app", "v1")
		e.signLegacy(t, f, e.key)
		release := make(chan struct{})
		e.up.setFault(onPath(http.MethodGet, ".sig", hang(release)))
		r := e.get(t, manifestPath("signed/app", "v1"))
		if r.status < 500 || ociErr(t, r).Code != "UNAVAILABLE" {
			t.Fatalf("status = %d, body %s; want a 5xx UNAVAILABLE", r.status, r.body)
		}
		// The shared verification outlives the client; when the upstream
		// fails it, the failure is not cached.
		e.up.setFault(nil)
		close(release)
		for i := 0; ; i++ {
			r := e.get(t, manifestPath("signed/app", "v1"))
			if r.status == http.StatusOK {
				break
			}
			// Only the tail of the failed verification may still answer.
			if r.status < 500 || i == 100 {
				t.Fatalf("after recovery: status %d, body %s", r.status, r.body)
			}
		}
		if d := e.logs.lines(t, "decision"); len(d) != 2 || d[0]["verdict"] != "error" || d[1]["verdict"] != "allow" {
			t.Errorf("decisions = %v, want an error then an allow", d)
		}
	})
}

// TestExactBytes: pullgate serves the upstream's bytes as they are, with
// a digest computed over them, whatever the upstream's headers claim.
func TestExactBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	f := e.push(t, "signed/app", "v1")
	// The same manifest, formatted unusually: a re-marshalled body would
	// not hash to its digest.
	var m map[string]any
	if err := json.Unmarshal(f.raw, &m); err != nil {
		t.Fatal(err)
	}
	pretty, err := json.MarshalIndent(m, "", "\t ")
	if err != nil {
		t.Fatal(err)
	}
	pretty = append(pretty, "\n\n"...)
	pd := putRaw(t, f.repo.Tag("pretty"), pretty, f.desc.MediaType)
	pf := fixture{digest: pd, raw: pretty, repo: f.repo}
	e.signLegacy(t, pf, e.key)
	e.signLegacy(t, f, e.key)

	check := func(t *testing.T, ref string, want []byte) {
		t.Helper()
		for _, method := range []string{http.MethodHead, http.MethodGet} {
			r := e.do(t, method, manifestPath("signed/app", ref))
			wantStatus(t, r, http.StatusOK)
			if got := r.header.Get("Docker-Content-Digest"); got != sha256Digest(want) {
				t.Errorf("%s %s: Docker-Content-Digest %s, want %s", method, ref, got, sha256Digest(want))
			}
			if got := r.header.Get("Content-Length"); got != fmt.Sprint(len(want)) {
				t.Errorf("%s %s: Content-Length %s, want %d", method, ref, got, len(want))
			}
			if method == http.MethodGet && !bytes.Equal(r.body, want) {
				t.Errorf("GET %s: body differs from the upstream's bytes:\n%s\nwant\n%s", ref, r.body, want)
			}
		}
	}
	t.Run("formatting kept", func(t *testing.T) {
		check(t, "pretty", pretty)
		check(t, pd.String(), pretty)
	})
	t.Run("lying digest headers", func(t *testing.T) {
		bogus := "sha256:" + strings.Repeat("0", 64)
		e.up.setFault(func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasSuffix(r.URL.Path, "/manifests/v1") && !strings.HasSuffix(r.URL.Path, "/manifests/pretty") {
				return false
			}
			e.up.serve(&headerRewriter{ResponseWriter: w, key: "Docker-Content-Digest", value: bogus}, r)
			return true
		})
		defer e.up.setFault(nil)
		check(t, "v1", f.raw)
		check(t, "pretty", pretty)
	})
	t.Run("digest mismatch", func(t *testing.T) {
		// A manifest never fetched before (so not in pullgate's cache).
		compact := append(bytes.Clone(f.raw), ' ')
		cd := putRaw(t, f.repo.Tag("compact"), compact, f.desc.MediaType)
		e.signLegacy(t, fixture{digest: cd, repo: f.repo}, e.key)
		e.up.setFault(onPath(http.MethodGet, "/manifests/"+cd.String(), func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", string(f.desc.MediaType))
			w.Header().Set("Docker-Content-Digest", cd.String())
			_, _ = w.Write(f.raw) // another manifest's bytes
		}))
		before := e.verifies.Load()
		for range 2 {
			oe := wantError(t, e.get(t, manifestPath("signed/app", cd.String())), http.StatusBadGateway, "UNAVAILABLE")
			if !strings.Contains(oe.Message, cd.String()) || !strings.Contains(oe.Message, f.digest.String()) {
				t.Errorf("message %q does not name both digests", oe.Message)
			}
		}
		if n := e.verifies.Load() - before; n != 0 {
			t.Errorf("verifications = %d, want 0", n)
		}
		e.up.setFault(nil)
		check(t, cd.String(), compact)
	})
}

// headerRewriter replaces one response header before it is written.
type headerRewriter struct {
	http.ResponseWriter
	key, value string
}

func (h *headerRewriter) WriteHeader(code int) {
	if h.ResponseWriter.Header().Get(h.key) != "" {
		h.ResponseWriter.Header().Set(h.key, h.value)
	}
	h.ResponseWriter.WriteHeader(code)
}

func (h *headerRewriter) Write(b []byte) (int, error) { return h.ResponseWriter.Write(b) }

// TestCoalescing: concurrent GETs of the same new tag share one
// verification and one manifest fetch. The verifier holds until every
// request has resolved the tag upstream, so all are in flight together.
func TestCoalescing(t *testing.T) {
	t.Parallel()
	const n = 50
	allIn := make(chan struct{})
	var heads atomic.Int64
	e := newEnv(t, envConfig{wrap: func(v Verifier) Verifier {
		return verifierFunc(func(ctx context.Context, src verifier.Source, img verifier.Image, rule *policy.Rule) (*verifier.Verdict, error) {
			select {
			case <-allIn:
			case <-time.After(time.Minute): // a deadlock guard, not a timing assertion
				return nil, errors.New("requests never all arrived")
			}
			return v.Verify(ctx, src, img, rule)
		})
	}})
	f := e.push(t, "signed/app", "new")
	e.signLegacy(t, f, e.key)
	e.up.resetCounts()
	e.up.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead && strings.HasSuffix(r.URL.Path, "/manifests/new") && heads.Add(1) == n {
			close(allIn)
		}
		return false
	})

	var wg sync.WaitGroup
	results := make([]response, n)
	for i := range n {
		wg.Go(func() {
			results[i] = e.get(t, manifestPath("signed/app", "new"))
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.status != http.StatusOK || r.header.Get("Docker-Content-Digest") != f.digest.String() {
			t.Errorf("request %d: %d %s", i, r.status, r.body)
		}
	}
	if got := e.verifies.Load(); got != 1 {
		t.Errorf("verifications = %d, want 1", got)
	}
	if got := e.up.count(http.MethodGet, "/v2/signed/app/manifests/"+f.digest.String()); got != 1 {
		t.Errorf("upstream manifest fetches = %d, want 1", got)
	}
	if got := e.up.count(http.MethodGet, "/v2/signed/app/manifests/sha256-"+f.digest.Hex+".sig"); got != 1 {
		t.Errorf("upstream .sig fetches = %d, want 1", got)
	}
	if d := e.logs.lines(t, "decision"); len(d) != 1 {
		t.Errorf("decision lines = %d, want 1", len(d))
	}
}

// TestConcurrentPulls: full pulls of several images at once.
func TestConcurrentPulls(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	var fs []fixture
	for i := range 3 {
		f := e.push(t, fmt.Sprintf("signed/app%d", i), "v1")
		e.signLegacy(t, f, e.key)
		fs = append(fs, f)
	}
	var wg sync.WaitGroup
	for i := range 12 {
		f := fs[i%len(fs)]
		wg.Go(func() {
			got, err := e.pull(t, fmt.Sprintf("%s/signed/app%d:v1", testRegistry, i%len(fs)))
			if err != nil || got != f.digest {
				t.Errorf("pull %d: %v, %v", i, got, err)
			}
		})
	}
	wg.Wait()
	if got := e.verifies.Load(); got != int64(len(fs)) {
		t.Errorf("verifications = %d, want %d", got, len(fs))
	}
}

// TestVerifierPanics: a panicking verifier is a 500 with an OCI body and
// a log line, and the server carries on.
func TestVerifierPanics(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	e := newEnv(t, envConfig{wrap: func(v Verifier) Verifier {
		return verifierFunc(func(ctx context.Context, src verifier.Source, img verifier.Image, rule *policy.Rule) (*verifier.Verdict, error) {
			if calls.Add(1) == 1 {
				panic("verifier bug")
			}
			return v.Verify(ctx, src, img, rule)
		})
	}})
	f := e.push(t, "signed/app", "v1")
	e.signLegacy(t, f, e.key)
	oe := wantError(t, e.get(t, manifestPath("signed/app", "v1")), http.StatusInternalServerError, "UNKNOWN")
	if !strings.HasPrefix(oe.Message, "internal error (request ") || strings.Contains(oe.Message, "verifier bug") {
		t.Errorf("message %q: want a generic message with the request ID", oe.Message)
	}
	if l := e.logs.lines(t, "request failed"); len(l) != 1 || !strings.Contains(fmt.Sprint(l[0]["error"]), "verifier bug") {
		t.Errorf("request failed lines = %v", l)
	}
	wantStatus(t, e.get(t, manifestPath("signed/app", "v1")), http.StatusOK)
}

// TestHandlerPanics: ServeHTTP turns a handler panic into a 500 before
// the headers are out, and into an aborted response after.
func TestHandlerPanics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	e.srv.router.HandleFunc("/v2/test/early", func(http.ResponseWriter, *http.Request) { panic("early") })
	e.srv.router.HandleFunc("/v2/test/late", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("partial"))
		panic("late")
	})
	oe := wantError(t, e.get(t, "/v2/test/early"), http.StatusInternalServerError, "UNKNOWN")
	if strings.Contains(oe.Message, "early") {
		t.Errorf("message %q leaks the panic", oe.Message)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.front.URL+"/v2/test/late", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.front.Client().Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Errorf("a panic after the headers gave a clean response")
	}
	// The client's transport retries the aborted GET once: two or three.
	if l := e.logs.lines(t, "handler panic"); len(l) < 2 {
		t.Errorf("handler panic lines = %d, want at least 2", len(l))
	}
	wantStatus(t, e.get(t, "/v2/"), http.StatusOK)
}

// TestOversizeSignature: a signature blob larger than the configured
// limit is rejected signature material (a cached denial), not an
// endless "cannot verify".
func TestOversizeSignature(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	f := e.push(t, "signed/app", "v1")
	// A .sig image whose one layer claims 100 bytes but holds more than
	// limits.maxSignatureBytes.
	big := static.NewLayer(bytes.Repeat([]byte("x"), int(e.cfg.Limits.MaxSignatureBytes)+1), verifiertest.MediaTypeSimpleSigning)
	if err := remote.WriteLayer(f.repo, big, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	bd, err := big.Digest()
	if err != nil {
		t.Fatal(err)
	}
	cfg := static.NewLayer([]byte("{}"), types.OCIConfigJSON)
	if err := remote.WriteLayer(f.repo, cfg, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	cd, _ := cfg.Digest()
	sig := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":%q},`+
		`"layers":[{"mediaType":%q,"size":100,"digest":%q,"annotations":{"dev.cosignproject.cosign/signature":"AAAA"}}]}`,
		cd, verifiertest.MediaTypeSimpleSigning, bd)
	putRaw(t, verifiertest.SigTag(f.repo, f.digest), []byte(sig), types.OCIManifestSchema1)

	for range 2 {
		oe := wantError(t, e.get(t, manifestPath("signed/app", "v1")), http.StatusForbidden, "DENIED")
		if !strings.Contains(oe.Message, "larger than") {
			t.Errorf("message %q does not say the signature is too large", oe.Message)
		}
	}
	if n := e.verifies.Load(); n != 1 {
		t.Errorf("verifications = %d, want 1 (the denial is cached)", n)
	}
}
