package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// blobRequests counts upstream blob GETs and HEADs.
func blobRequests(u *fakeUpstream) int {
	return u.countWhere(func(k string) bool {
		return (strings.HasPrefix(k, "GET ") || strings.HasPrefix(k, "HEAD ")) && strings.Contains(k, "/blobs/sha256:")
	})
}

func TestBlobs(t *testing.T) {
	t.Parallel()
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("cache=%v", cached), func(t *testing.T) {
			t.Parallel()
			testBlobs(t, cached)
		})
	}
}

func testBlobs(t *testing.T, cached bool) {
	e := newEnv(t, envConfig{noBlobCache: !cached})
	f := e.push(t, "signed/app", "v1")
	e.signLegacy(t, f, e.key)
	unsigned := e.push(t, "signed/unsigned", "v1")
	other := e.push(t, "signed/b", "v1")
	e.signLegacy(t, other, e.key)
	blobs := blobsOf(t, f)
	layer := blobs[1]
	content := e.blobBytes(t, layer)
	e.up.resetCounts()

	t.Run("before the manifest", func(t *testing.T) {
		// Not yet served: denied without asking the upstream.
		oe := wantError(t, e.get(t, blobPath("signed/app", layer)), http.StatusForbidden, "DENIED")
		if !strings.Contains(oe.Message, layer.String()) || !strings.Contains(oe.Message, "reg.test/signed/app") {
			t.Errorf("message %q does not name the blob and image", oe.Message)
		}
		// An unsigned image's manifest is denied, and so are its blobs.
		wantError(t, e.get(t, manifestPath("signed/unsigned", "v1")), http.StatusForbidden, "DENIED")
		for _, b := range blobsOf(t, unsigned) {
			wantError(t, e.get(t, blobPath("signed/unsigned", b)), http.StatusForbidden, "DENIED")
			h := e.do(t, http.MethodHead, blobPath("signed/unsigned", b))
			wantStatus(t, h, http.StatusForbidden)
			if len(h.body) != 0 || h.header.Get("Content-Type") != "application/json" {
				t.Errorf("HEAD denial: Content-Type %q, body %q", h.header.Get("Content-Type"), h.body)
			}
		}
		if n := blobRequests(e.up); n != 0 {
			t.Errorf("upstream blob requests = %d, want 0", n)
		}
	})

	wantStatus(t, e.get(t, manifestPath("signed/app", "v1")), http.StatusOK)
	wantStatus(t, e.get(t, manifestPath("signed/b", "v1")), http.StatusOK)

	t.Run("GET", func(t *testing.T) {
		for _, b := range blobs {
			r := e.get(t, blobPath("signed/app", b))
			wantStatus(t, r, http.StatusOK)
			want := map[string]string{
				"Content-Type":          "application/octet-stream",
				"Content-Length":        fmt.Sprint(len(e.blobBytes(t, b))),
				"Docker-Content-Digest": b.String(),
				"Oci-Namespace":         testRegistry,
			}
			got := map[string]string{}
			for k := range want {
				got[k] = r.header.Get(k)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GET blob headers (-want +got):\n%s", diff)
			}
			if !bytes.Equal(r.body, e.blobBytes(t, b)) {
				t.Errorf("blob %s: body differs from upstream", b)
			}
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		r := e.do(t, http.MethodHead, blobPath("signed/app", layer))
		wantStatus(t, r, http.StatusOK)
		if r.header.Get("Content-Length") != fmt.Sprint(len(content)) || r.header.Get("Docker-Content-Digest") != layer.String() ||
			r.header.Get("Content-Type") != "application/octet-stream" || len(r.body) != 0 {
			t.Errorf("HEAD blob: headers %v, body %d bytes", r.header, len(r.body))
		}
	})
	t.Run("range", func(t *testing.T) {
		size := len(content)
		tests := []struct {
			rng       string
			wantRange string
			want      []byte
		}{
			{"bytes=0-9", fmt.Sprintf("bytes 0-9/%d", size), content[:10]},
			{"bytes=10-", fmt.Sprintf("bytes 10-%d/%d", size-1, size), content[10:]},
		}
		for _, tt := range tests {
			r := e.do(t, http.MethodGet, blobPath("signed/app", layer), "Range", tt.rng)
			wantStatus(t, r, http.StatusPartialContent)
			if got := r.header.Get("Content-Range"); got != tt.wantRange {
				t.Errorf("Range %s: Content-Range = %q, want %q", tt.rng, got, tt.wantRange)
			}
			if !bytes.Equal(r.body, tt.want) {
				t.Errorf("Range %s: got %d bytes, want %d", tt.rng, len(r.body), len(tt.want))
			}
		}
		// An unsupported Range is ignored: the whole (hashed) blob.
		r := e.do(t, http.MethodGet, blobPath("signed/app", layer), "Range", "bytes=0-1,5-6")
		wantStatus(t, r, http.StatusOK)
		if !bytes.Equal(r.body, content) {
			t.Errorf("multi-range: body differs")
		}
	})
	t.Run("granted per image", func(t *testing.T) {
		// signed/b was served, but does not reference f's layer.
		wantError(t, e.get(t, blobPath("signed/b", layer)), http.StatusForbidden, "DENIED")
		wantError(t, e.get(t, "/v2/reg.test/signed/b/blobs/"+layer.String()), http.StatusForbidden, "DENIED")
		// The same repository on another upstream is another image.
		wantError(t, e.get(t, "/v2/signed/app/blobs/"+layer.String()+"?ns=docker.io"), http.StatusForbidden, "DENIED")
	})
	t.Run("missing upstream", func(t *testing.T) {
		e.up.setFault(func(w http.ResponseWriter, r *http.Request) bool {
			if strings.HasSuffix(r.URL.Path, "/blobs/"+layer.String()) {
				writeUpstreamError(w, http.StatusNotFound, "BLOB_UNKNOWN", "gone")
				return true
			}
			return false
		})
		defer e.up.setFault(nil)
		if !cached {
			wantError(t, e.get(t, blobPath("signed/app", layer)), http.StatusNotFound, "BLOB_UNKNOWN")
			return
		}
		// Cached by the GETs above: served without asking the upstream.
		e.up.resetCounts()
		r := e.get(t, blobPath("signed/app", layer))
		wantStatus(t, r, http.StatusOK)
		if !bytes.Equal(r.body, content) {
			t.Errorf("cached blob: body differs")
		}
		if n := blobRequests(e.up); n != 0 {
			t.Errorf("upstream blob requests for a cached blob = %d, want 0", n)
		}
		// Not cached: the upstream's 404.
		other := blobsOf(t, f)[0]
		if err := os.Remove(filepath.Join(e.blobDir, "blobs", "sha256", other.Hex)); err != nil {
			t.Fatal(err)
		}
		e.up.setFault(func(w http.ResponseWriter, r *http.Request) bool {
			if strings.Contains(r.URL.Path, "/blobs/") {
				writeUpstreamError(w, http.StatusNotFound, "BLOB_UNKNOWN", "gone")
				return true
			}
			return false
		})
		wantError(t, e.get(t, blobPath("signed/app", other)), http.StatusNotFound, "BLOB_UNKNOWN")
	})
}

// TestBlobWrongBytes: an upstream serving bytes that do not hash to the
// blob's digest must not produce a clean 200 with those bytes: the
// response is cut short so the client sees a transfer error (or, when
// the mismatch is known before the response starts, it is a 502).
// Nothing is cached.
func TestBlobWrongBytes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ chunked, cached bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		t.Run(fmt.Sprintf("chunked=%v,cache=%v", tt.chunked, tt.cached), func(t *testing.T) {
			t.Parallel()
			chunked := tt.chunked
			e := newEnv(t, envConfig{noBlobCache: !tt.cached})
			f := e.push(t, "signed/app", "v1")
			e.signLegacy(t, f, e.key)
			wantStatus(t, e.get(t, manifestPath("signed/app", "v1")), http.StatusOK)
			layer := blobsOf(t, f)[1]
			good := e.blobBytes(t, layer)
			bad := bytes.Clone(good)
			bad[len(bad)-1] ^= 0xff // same length, wrong last byte
			e.up.setFault(func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+layer.String()) {
					return false
				}
				if !chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(bad)))
				}
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(bad)
				return true
			})

			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.front.URL+blobPath("signed/app", layer), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := e.front.Client().Do(req)
			if err != nil {
				return // aborted before the headers: also not a clean 200
			}
			defer resp.Body.Close()
			body, readErr := io.ReadAll(resp.Body)
			sum := sha256.Sum256(body)
			if "sha256:"+hex.EncodeToString(sum[:]) == layer.String() {
				t.Fatalf("body hashes to the digest: the fault was not injected")
			}
			if resp.StatusCode == http.StatusBadGateway {
				wantError(t, response{status: resp.StatusCode, header: resp.Header, body: body}, http.StatusBadGateway, "UNAVAILABLE")
			} else if readErr == nil {
				t.Errorf("status %d, %d of %d bytes read without error: the client got a clean response with wrong bytes",
					resp.StatusCode, len(body), len(bad))
			}
			if e.blobs != nil {
				if n, _ := e.blobs.Usage(); n != 0 {
					t.Errorf("%d blobs cached after a mismatch, want 0", n)
				}
			}
		})
	}
}

// TestGrantsRestored: serving a manifest again restores what it grants
// even when the cache lost it (ristretto evicts under pressure).
func TestGrantsRestored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	f := e.push(t, "signed/app", "v1")
	e.signLegacy(t, f, e.key)
	idx, children := e.pushIndex(t, "signed/app", "multi")
	e.signLegacy(t, idx, e.key)
	layer := blobsOf(t, f)[1]
	child := children[0]
	const image = testRegistry + "/signed/app"

	wantStatus(t, e.get(t, manifestPath("signed/app", "v1")), http.StatusOK)
	wantStatus(t, e.get(t, manifestPath("signed/app", "multi")), http.StatusOK)
	wantStatus(t, e.get(t, blobPath("signed/app", layer)), http.StatusOK)
	wantStatus(t, e.get(t, manifestPath("signed/app", child.digest.String())), http.StatusOK)

	// Evictions.
	e.srv.grants.Del(e.srv.blobKey(image, digestFromHash(layer)))
	e.srv.verdicts.Del(e.srv.verdictKey(image, digestFromHash(child.digest)))
	wantError(t, e.get(t, blobPath("signed/app", layer)), http.StatusForbidden, "DENIED")

	// containerd's next pull serves the manifests again, then asks.
	wantStatus(t, e.get(t, manifestPath("signed/app", "v1")), http.StatusOK)
	wantStatus(t, e.get(t, manifestPath("signed/app", "multi")), http.StatusOK)
	wantStatus(t, e.get(t, blobPath("signed/app", layer)), http.StatusOK)
	wantStatus(t, e.get(t, manifestPath("signed/app", child.digest.String())), http.StatusOK)
}
