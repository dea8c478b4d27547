package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pullgate/pullgate/verifier/verifiertest"
)

// TestPullSigned pulls images signed in every layout with every key
// algorithm, as crane does: manifest, config and every layer.
func TestPullSigned(t *testing.T) {
	t.Parallel()
	layouts := []struct {
		name      string
		referrers bool
		sign      func(e *env, t testing.TB, f fixture)
		want      string // evidence layout in the decision log
	}{
		{"legacy sig tag", false, func(e *env, t testing.TB, f fixture) { e.signLegacy(t, f, e.key) }, "sig-tag"},
		{"bundle referrers tag", false, func(e *env, t testing.TB, f fixture) { e.signBundle(t, f, e.key) }, "referrers-tag"},
		{"bundle referrers API", true, func(e *env, t testing.TB, f fixture) { e.signBundle(t, f, e.key) }, "referrers-api"},
	}
	for _, alg := range []string{verifiertest.ECDSAP256, verifiertest.ECDSAP384, verifiertest.RSA2048, verifiertest.Ed25519} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			key := verifiertest.MustGenerateKey(t, alg)
			for _, l := range layouts {
				t.Run(l.name, func(t *testing.T) {
					t.Parallel()
					e := newEnv(t, envConfig{referrers: l.referrers, key: key})
					f := e.push(t, "signed/app", "v1")
					l.sign(e, t, f)

					got, err := e.pull(t, testRegistry+"/signed/app:v1")
					if err != nil {
						t.Fatalf("pull: %v", err)
					}
					if got != f.digest {
						t.Errorf("pulled digest %s, want %s", got, f.digest)
					}
					decisions := e.logs.lines(t, "decision")
					if len(decisions) != 1 {
						t.Fatalf("decision lines = %d, want 1:\n%s", len(decisions), e.logs)
					}
					d := decisions[0]
					if d["verdict"] != "allow" || d["policy"] != "signed" || d["image"] != "reg.test/signed/app" || d["digest"] != f.digest.String() {
						t.Errorf("decision line = %v", d)
					}
					if diff := cmp.Diff([]any{l.want}, d["layouts"]); diff != "" {
						t.Errorf("decision layouts (-want +got):\n%s", diff)
					}
					if diff := cmp.Diff([]any{"release-key"}, d["signers"]); diff != "" {
						t.Errorf("decision signers (-want +got):\n%s", diff)
					}

					// A second pull is served from the verdict cache.
					if _, err := e.pull(t, testRegistry+"/signed/app:v1"); err != nil {
						t.Fatalf("second pull: %v", err)
					}
					if n := e.verifies.Load(); n != 1 {
						t.Errorf("verifications = %d, want 1", n)
					}
				})
			}
		})
	}
}

// TestManifestHeaders checks GET and HEAD of an allowed manifest carry
// what containerd and ggcr need, with the same values.
func TestManifestHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	f := e.push(t, "signed/app", "v1")
	e.signLegacy(t, f, e.key)
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		for _, ref := range []string{"v1", f.digest.String()} {
			r := e.do(t, method, manifestPath("signed/app", ref))
			wantStatus(t, r, http.StatusOK)
			want := map[string]string{
				"Content-Type":                    string(f.desc.MediaType),
				"Content-Length":                  fmt.Sprint(len(f.raw)),
				"Docker-Content-Digest":           f.digest.String(),
				"Docker-Distribution-Api-Version": "registry/2.0",
				"Oci-Namespace":                   testRegistry,
			}
			got := map[string]string{}
			for k := range want {
				got[k] = r.header.Get(k)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s %s headers (-want +got):\n%s", method, ref, diff)
			}
			wantBody := string(f.raw)
			if method == http.MethodHead {
				wantBody = ""
			}
			if string(r.body) != wantBody {
				t.Errorf("%s %s body = %q, want %q", method, ref, r.body, wantBody)
			}
		}
	}
}

// TestMovedTag: a tag that verified and was cached as allowed, then moved
// to an unsigned image, is denied.
func TestMovedTag(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	signed := e.push(t, "signed/app", "latest")
	e.signLegacy(t, signed, e.key)
	if _, err := e.pull(t, testRegistry+"/signed/app:latest"); err != nil {
		t.Fatalf("pull signed: %v", err)
	}
	unsigned := e.push(t, "signed/app", "latest")

	r := e.get(t, manifestPath("signed/app", "latest"))
	oe := wantError(t, r, http.StatusForbidden, "DENIED")
	if !strings.Contains(oe.Message, unsigned.digest.String()) {
		t.Errorf("denial %q does not name the new digest %s", oe.Message, unsigned.digest)
	}
	if _, err := e.pull(t, testRegistry+"/signed/app:latest"); err == nil || !strings.Contains(err.Error(), "DENIED") {
		t.Errorf("pull of moved tag: err = %v, want DENIED", err)
	}
	// The old digest is still allowed by digest.
	wantStatus(t, e.get(t, manifestPath("signed/app", signed.digest.String())), http.StatusOK)
}

// TestDeniedBody checks the exact OCI shape of a denial, for a missing
// signature and for a signature by a key the policy does not trust.
func TestDeniedBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		sign       bool
		wantReason string
	}{
		{"unsigned", false, "no signature"},
		{"wrong key", true, `signer "release-key"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envConfig{})
			f := e.push(t, "signed/app", "v1")
			if tt.sign {
				e.signLegacy(t, f, verifiertest.MustGenerateKey(t, ""))
			}
			r := e.get(t, manifestPath("signed/app", "v1"))
			wantStatus(t, r, http.StatusForbidden)
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if r.header.Get("Docker-Content-Digest") != "" {
				t.Errorf("denial carries Docker-Content-Digest %q", r.header.Get("Docker-Content-Digest"))
			}
			var raw map[string][]map[string]json.RawMessage
			if err := json.Unmarshal(r.body, &raw); err != nil {
				t.Fatalf("body %s: %v", r.body, err)
			}
			if len(raw) != 1 || len(raw["errors"]) != 1 {
				t.Fatalf("body %s: want exactly {\"errors\":[one]}", r.body)
			}
			var keys []string
			for k := range raw["errors"][0] {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if diff := cmp.Diff([]string{"code", "detail", "message"}, keys); diff != "" {
				t.Errorf("error entry keys (-want +got):\n%s", diff)
			}
			oe := ociErr(t, r)
			reasons, _ := oe.Detail["reasons"].([]any)
			if len(reasons) == 0 {
				t.Fatalf("detail has no reasons: %s", r.body)
			}
			var rs []string
			for _, x := range reasons {
				s, _ := x.(string)
				if !strings.Contains(s, tt.wantReason) {
					t.Errorf("reason %q does not mention %s", s, tt.wantReason)
				}
				rs = append(rs, s)
			}
			image := "reg.test/signed/app"
			want := ociErrorEntry{
				Code:    "DENIED",
				Message: fmt.Sprintf("%s@%s by policy %q: %s", image, f.digest, "signed", strings.Join(rs, "; ")),
				Detail:  map[string]any{"image": image, "digest": f.digest.String(), "policy": "signed", "reasons": reasons},
			}
			if diff := cmp.Diff(want, oe); diff != "" {
				t.Errorf("denial (-want +got):\n%s", diff)
			}

			// HEAD: same status, no body (containerd resolves with HEAD).
			h := e.do(t, http.MethodHead, manifestPath("signed/app", "v1"))
			wantStatus(t, h, http.StatusForbidden)
			if len(h.body) != 0 {
				t.Errorf("HEAD body = %q", h.body)
			}
			// ggcr (crane) shows the code and message.
			_, err := e.pull(t, testRegistry+"/signed/app:v1")
			if err == nil || !strings.Contains(err.Error(), "DENIED") || !strings.Contains(err.Error(), `by policy "signed"`) {
				t.Errorf("pull error = %v, want the denial", err)
			}
		})
	}
}

// TestUnmatched: images no policy names follow unmatched.
func TestUnmatched(t *testing.T) {
	t.Parallel()
	t.Run("deny", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envConfig{unmatched: "deny"})
		f := e.push(t, "other/app", "v1")
		e.signLegacy(t, f, e.key) // a signature does not matter: no rule
		e.up.resetCounts()
		oe := wantError(t, e.get(t, manifestPath("other/app", "v1")), http.StatusForbidden, "DENIED")
		// Refused before any upstream request: nothing to resolve, and
		// resolving would reveal whether the image exists.
		if n := e.up.total(); n != 0 {
			t.Errorf("unmatched image cost %d upstream requests, want 0", n)
		}
		if want := "reg.test/other/app:v1: no policy matches"; !strings.HasPrefix(oe.Message, want) {
			t.Errorf("message %q does not name the refused tag %q", oe.Message, want)
		}
		missing := wantError(t, e.get(t, manifestPath("other/missing", "v1")), http.StatusForbidden, "DENIED")
		if strings.Contains(missing.Message, "not found") {
			t.Errorf("an unmatched missing image answers %q: it reveals existence", missing.Message)
		}
		if want := "no policy matches reg.test/other/app and unmatched is deny"; !strings.Contains(oe.Message, want) {
			t.Errorf("message %q does not contain %q", oe.Message, want)
		}
		wantError(t, e.get(t, blobPath("other/app", blobsOf(t, f)[1])), http.StatusForbidden, "DENIED")
		if n := e.verifies.Load(); n != 0 {
			t.Errorf("verifications = %d, want 0", n)
		}
	})
	t.Run("allow", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envConfig{unmatched: "allow"})
		f := e.push(t, "other/app", "v1")
		got, err := e.pull(t, testRegistry+"/other/app:v1")
		if err != nil || got != f.digest {
			t.Fatalf("pull = %v, %v; want %s", got, err, f.digest)
		}
		if n := e.verifies.Load(); n != 0 {
			t.Errorf("verifications = %d, want 0", n)
		}
		d := e.logs.lines(t, "decision")
		if len(d) != 1 || d[0]["verdict"] != "allow" || !strings.Contains(fmt.Sprint(d[0]["reason"]), "unverified") {
			t.Errorf("decision lines = %v", d)
		}
		// A rule still governs the images it names.
		e.push(t, "signed/app", "v1")
		wantError(t, e.get(t, manifestPath("signed/app", "v1")), http.StatusForbidden, "DENIED")
	})
}

// TestAudit: an audit rule serves what it would deny and logs it.
func TestAudit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	f := e.push(t, "audit/app", "v1")
	got, err := e.pull(t, testRegistry+"/audit/app:v1")
	if err != nil || got != f.digest {
		t.Fatalf("pull = %v, %v; want %s", got, err, f.digest)
	}
	d := e.logs.lines(t, "decision")
	if len(d) != 1 {
		t.Fatalf("decision lines = %d, want 1:\n%s", len(d), e.logs)
	}
	want := map[string]any{
		"level": "WARN", "image": "reg.test/audit/app", "digest": f.digest.String(), "policy": "audited",
		"verdict": "deny", "mode": "audit", "action": "served anyway (audit mode)",
	}
	for k, v := range want {
		if d[0][k] != v {
			t.Errorf("decision %s = %v, want %v", k, d[0][k], v)
		}
	}
	if rs, _ := d[0]["reasons"].([]any); len(rs) == 0 {
		t.Errorf("audit decision has no reasons: %v", d[0])
	}
}

// TestIndex: an index signed at the index covers its children once it
// was served; children of an unsigned index are denied.
func TestIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	idx, children := e.pushIndex(t, "signed/multi", "v1")
	e.signLegacy(t, idx, e.key)
	child := children[1]

	// Before the index was served, the unsigned child is denied...
	wantError(t, e.get(t, manifestPath("signed/multi", child.digest.String())), http.StatusForbidden, "DENIED")
	// ...and after, covered (the cached denial is replaced).
	r := e.get(t, manifestPath("signed/multi", "v1"))
	wantStatus(t, r, http.StatusOK)
	if r.header.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" || string(r.body) != string(idx.raw) {
		t.Errorf("index served as %q, %q", r.header.Get("Content-Type"), r.body)
	}
	for _, c := range children {
		r := e.get(t, manifestPath("signed/multi", c.digest.String()))
		wantStatus(t, r, http.StatusOK)
		if got := r.header.Get("Docker-Content-Digest"); got != c.digest.String() {
			t.Errorf("child served with digest %s, want %s", got, c.digest)
		}
		for _, b := range blobsOf(t, c) {
			wantStatus(t, e.get(t, blobPath("signed/multi", b)), http.StatusOK)
		}
	}
	// A platform pull as containerd and crane do it.
	got, err := e.pull(t, testRegistry+"/signed/multi:v1")
	if err != nil {
		t.Fatalf("platform pull: %v", err)
	}
	if got != children[0].digest { // ggcr picks linux/amd64
		t.Errorf("platform pull got %s, want %s", got, children[0].digest)
	}

	// An unsigned index covers nothing.
	uidx, uchildren := e.pushIndex(t, "signed/multi", "unsigned")
	wantError(t, e.get(t, manifestPath("signed/multi", uchildren[0].digest.String())), http.StatusForbidden, "DENIED")
	wantError(t, e.get(t, manifestPath("signed/multi", "unsigned")), http.StatusForbidden, "DENIED")
	wantError(t, e.get(t, manifestPath("signed/multi", uchildren[0].digest.String())), http.StatusForbidden, "DENIED")
	_ = uidx

	// Coverage is per image: the signed index's child under another
	// repository is verified on its own (and is unsigned there).
	e.pushImage(t, "signed/other", "child", child.img)
	wantError(t, e.get(t, "/v2/signed/other/manifests/"+child.digest.String()+"?ns=reg.test"), http.StatusForbidden, "DENIED")
}

// TestCheck runs the check the verify subcommand uses.
func TestCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	signed := e.push(t, "signed/app", "v1")
	e.signLegacy(t, signed, e.key)
	unsigned := e.push(t, "signed/app", "v2")
	tests := []struct {
		image      string
		wantDigest string
		wantServed bool
	}{
		{"reg.test/signed/app:v1", signed.digest.String(), true},
		{"signed/app:v1", signed.digest.String(), true}, // default registry
		{"reg.test/signed/app:v2", unsigned.digest.String(), false},
		{"reg.test/signed/app:tag@" + signed.digest.String(), signed.digest.String(), true},
	}
	for _, tt := range tests {
		d, err := e.srv.Check(t.Context(), tt.image)
		if err != nil {
			t.Errorf("Check(%q): %v", tt.image, err)
			continue
		}
		if d.Digest.String() != tt.wantDigest || d.Served != tt.wantServed || d.Image != "reg.test/signed/app" {
			t.Errorf("Check(%q) = %s served=%v image=%s, want %s served=%v", tt.image, d.Digest, d.Served, d.Image, tt.wantDigest, tt.wantServed)
		}
	}
	if _, err := e.srv.Check(t.Context(), "evil.example.com/x:y"); err == nil {
		t.Errorf("Check of an unknown registry succeeded")
	}
}
