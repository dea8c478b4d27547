//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUpstreamFaults stops the real docker-registry under pullgate while
// containerd and crane pull: what pullgate verified and still holds is
// served (manifests by digest and verdicts are cached in memory), blobs
// (streamed, not cached) and anything new fail closed with a 5xx that
// names the problem, nothing unverified is ever served, and after a
// restart pulls work again.
func TestUpstreamFaults(t *testing.T) {
	bed := newTestbed(t)
	fx := &ctrdFixture{bed: bed, reg: bed.startRegistry(t)}
	fx.release = bed.cosign2.generateKeyPair(t, "release")
	fx.pg = bed.startPullgate(t, fmt.Sprintf(ctrdConfig, fx.reg.Addr), map[string][]byte{
		"keys/release.pub": fx.release.PubPEM,
	})
	fx.ctrd = bed.startContainerd(t)
	fx.ctrd.writeHosts(t, upstreamName, failClosedHosts(fx.pg.Addr))
	ns := namespace(t)

	cached := fx.pushSigned(t, bed.cosign2, fx.release, "e2e/fault-cached")
	fresh := fx.pushSigned(t, bed.cosign2, fx.release, "e2e/fault-fresh")
	unsigned := bed.pushImage(t, fx.reg.Ref("e2e/fault-unsigned:v1"))
	layers := manifestBlobs(t, bed, fx.reg.Ref("e2e/fault-cached@"+cached))

	// Before the outage: one full pull of e2e/fault-cached through pullgate.
	fx.wantPulled(t, fx.ctrd.ctrPull(t, ns, fx.ref("e2e/fault-cached:v1")), "e2e/fault-cached", cached)
	fx.ctrd.ctrRemove(t, ns, fx.ref("e2e/fault-cached:v1"))

	fx.reg.Stop(t)
	mark := len(fx.pg.Requests())

	t.Run("verified manifest by digest is served from cache", func(t *testing.T) {
		out := bed.mustCrane(t, "manifest", fx.pg.Ref("e2e/fault-cached@"+cached))
		if got := sha256Digest([]byte(out)); got != cached {
			t.Errorf("cached manifest served during the outage hashes to %s, want %s", got, cached)
		}
	})

	t.Run("tag needs the upstream: 503", func(t *testing.T) {
		wantHTTPUnavailable(t, fx.pg, "/v2/e2e/fault-cached/manifests/v1")
		p := fx.ctrd.ctrPull(t, ns, fx.ref("e2e/fault-cached:v1"))
		wantPullUnavailable(t, p, "[manifests v1]: 503 Service Unavailable")
	})

	t.Run("blobs are not cached: a full re-pull fails closed", func(t *testing.T) {
		// containerd gets the verified manifest from pullgate's cache, then
		// a 503 for the first blob: nothing is unpacked.
		p := fx.ctrd.ctrPull(t, ns, fx.ref("e2e/fault-cached@"+cached))
		wantPullUnavailable(t, p, "503 Service Unavailable - Server message: unavailable: ")
		if !strings.Contains(p.ErrorText(), "/blobs/sha256:") {
			t.Errorf("ctr's error is not about a blob: %s", p.ErrorText())
		}
		for _, b := range layers {
			wantHTTPUnavailable(t, fx.pg, "/v2/e2e/fault-cached/blobs/"+b)
		}
	})

	t.Run("new pulls fail closed", func(t *testing.T) {
		for _, ref := range []string{"e2e/fault-fresh:v1", "e2e/fault-fresh@" + fresh, "e2e/fault-unsigned@" + unsigned} {
			p := fx.ctrd.ctrPull(t, ns, fx.ref(ref))
			wantPullUnavailable(t, p, ": 503 Service Unavailable")
			p = fx.ctrd.crictlPull(t, fx.ref(ref))
			wantPullUnavailable(t, p, ": 503 Service Unavailable")
		}
		// crane retries 5xx with back-off (about 4 s): once is enough.
		dir := filepath.Join(t.TempDir(), "oci")
		out, code := bed.crane(t, "pull", "--format", "oci", fx.pg.Ref("e2e/fault-fresh:v1"), dir)
		wantUnavailable(t, "crane pull e2e/fault-fresh:v1", out, code)
	})

	t.Run("nothing unverified was served during the outage", func(t *testing.T) {
		// The only content served: the cached, verified manifest. Manifest
		// requests got that or a 5xx (never a denial or a not-found: the
		// upstream could not say). Blob requests got a 5xx, or 403 for a
		// blob of no served manifest (containerd HEADs /blobs/<manifest
		// digest> after a failed HEAD of a digest reference).
		reqs := fx.pg.Requests()
		for _, r := range reqs[mark:] {
			ok := false
			switch {
			case r.Path == "/v2/":
				ok = r.Status == 200
			case r.Path == "/v2/e2e/fault-cached/manifests/"+cached:
				ok = r.Status == 200
			case strings.Contains(r.Path, "/manifests/"):
				ok = r.Status >= 500
			case strings.Contains(r.Path, "/blobs/"):
				ok = r.Status >= 500 || r.Status == 403
			}
			if !ok {
				t.Errorf("pullgate answered %s during the outage", r)
			}
		}
		for _, d := range fx.pg.Decisions() {
			if d.Digest == unsigned || d.Digest == fresh {
				t.Errorf("a verdict for %s was reached without the upstream: %s", d.Digest, d.Raw)
			}
		}
	})

	fx.reg.Start(t)

	t.Run("after the upstream is back pulls work", func(t *testing.T) {
		fx.wantPulled(t, fx.ctrd.ctrPull(t, ns, fx.ref("e2e/fault-fresh:v1")), "e2e/fault-fresh", fresh)
		fx.wantPulled(t, fx.ctrd.crictlPull(t, fx.ref("e2e/fault-cached:v1")), "e2e/fault-cached", cached)
		fx.wantDenied(t, fx.ctrd.ctrPull(t, ns, fx.ref("e2e/fault-unsigned:v1")), "e2e/fault-unsigned", unsigned, policyName, fx.pg)
		fx.ctrd.ctrRemove(t, ns, fx.ctrd.ctrImages(t, ns)...)
		fx.ctrd.crictlRemove(t, fx.ref("e2e/fault-cached:v1"))
	})
}

// wantPullUnavailable checks that a pull failed with a 5xx whose text
// contains want.
func wantPullUnavailable(t testing.TB, p pull, want string) {
	t.Helper()
	if p.OK() {
		t.Fatalf("%s pull %s succeeded while the upstream is down", p.Client, p.Ref)
	}
	text := p.ErrorText()
	if p.Client == "crictl" {
		text = logfmtMsg(text)
	}
	if !strings.Contains(text, want) {
		t.Errorf("%s pull %s: the user saw\n  %s\nwant it to contain %q", p.Client, p.Ref, text, want)
		return
	}
	t.Logf("%s pull %s failed closed; the user saw:\n  %s", p.Client, p.Ref, text)
}

// wantHTTPUnavailable GETs path from pullgate (plain net/http: crane
// retries 5xx for seconds) and checks for a 503 UNAVAILABLE body that
// names the unreachable upstream.
func wantHTTPUnavailable(t testing.TB, pg *Pullgate, path string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get(pg.URL() + path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"code":"UNAVAILABLE"`) ||
		!strings.Contains(string(body), "upstream "+upstreamName+" unreachable") {
		t.Errorf("GET %s during the outage: %s %s, want 503 UNAVAILABLE naming the upstream", path, resp.Status, body)
		return
	}
	t.Logf("GET %s failed closed: %s %s", path, resp.Status, body)
}

// wantUnavailable checks that a crane command failed with pullgate's
// UNAVAILABLE error naming the unreachable upstream (crane shows bodies).
func wantUnavailable(t testing.TB, what, out string, code int) {
	t.Helper()
	if code == 0 {
		t.Fatalf("%s succeeded while the upstream is down:\n%s", what, tail(out, 5))
	}
	if !strings.Contains(lastLine(out), "UNAVAILABLE: upstream "+upstreamName+" unreachable") {
		t.Errorf("%s: want pullgate's UNAVAILABLE error naming the upstream:\n%s", what, tail(out, 5))
		return
	}
	t.Logf("%s failed closed: %s", what, lastLine(out))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// manifestBlobs is the config and layer digests of an image manifest.
func manifestBlobs(t testing.TB, bed *testbed, ref string) []string {
	t.Helper()
	var m struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(bed.mustCrane(t, "manifest", ref)), &m); err != nil {
		t.Fatalf("manifest %s: %v", ref, err)
	}
	out := []string{m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}
