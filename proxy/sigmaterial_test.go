package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/pullgate/pullgate/verifier"
	"github.com/pullgate/pullgate/verifier/verifiertest"
)

// index is the part of an OCI index the tests read.
type index struct {
	MediaType string `json:"mediaType"`
	Manifests []struct {
		MediaType    string `json:"mediaType"`
		Digest       string `json:"digest"`
		ArtifactType string `json:"artifactType"`
	} `json:"manifests"`
}

func decodeIndex(tb testing.TB, b []byte) index {
	tb.Helper()
	var idx index
	if err := json.Unmarshal(b, &idx); err != nil {
		tb.Fatalf("index %s: %v", b, err)
	}
	return idx
}

// manifestLayers returns the layer digests of a served image manifest.
func manifestLayers(tb testing.TB, b []byte) []v1.Hash {
	tb.Helper()
	m, err := v1.ParseManifest(strings.NewReader(string(b)))
	if err != nil {
		tb.Fatal(err)
	}
	out := []v1.Hash{m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// TestSignatureMaterial: cosign's material for an allowed image is
// served, so `cosign verify` works through pullgate; material of a
// denied image is not.
func TestSignatureMaterial(t *testing.T) {
	t.Parallel()
	t.Run("legacy sig tag", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envConfig{})
		f := e.push(t, "signed/app", "v1")
		e.signLegacy(t, f, e.key)
		sigTag := "sha256-" + f.digest.Hex + ".sig"
		r := e.get(t, manifestPath("signed/app", sigTag))
		wantStatus(t, r, http.StatusOK)
		for _, b := range manifestLayers(t, r.body) {
			wantStatus(t, e.get(t, blobPath("signed/app", b)), http.StatusOK)
		}
		e.cosignVerify(t, "signed/app", f, verifier.LayoutSigTag)

		// An unsigned image's .sig by an untrusted key is not served.
		u := e.push(t, "signed/app", "v2")
		e.signLegacy(t, u, verifiertest.MustGenerateKey(t, ""))
		oe := wantError(t, e.get(t, manifestPath("signed/app", "sha256-"+u.digest.Hex+".sig")), http.StatusForbidden, "DENIED")
		if !strings.Contains(oe.Message, "signature material of "+u.digest.String()) {
			t.Errorf("message %q does not explain", oe.Message)
		}
	})
	for _, referrers := range []bool{false, true} {
		t.Run(fmt.Sprintf("bundle referrers API=%v", referrers), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envConfig{referrers: referrers})
			f := e.push(t, "signed/app", "v1")
			e.signBundle(t, f, e.key)
			r := e.get(t, "/v2/signed/app/referrers/"+f.digest.String()+"?ns=reg.test")
			wantStatus(t, r, http.StatusOK)
			if ct := r.header.Get("Content-Type"); ct != "application/vnd.oci.image.index.v1+json" {
				t.Errorf("referrers Content-Type = %q", ct)
			}
			idx := decodeIndex(t, r.body)
			if len(idx.Manifests) != 1 {
				t.Fatalf("referrers = %s, want one", r.body)
			}
			ref := e.get(t, manifestPath("signed/app", idx.Manifests[0].Digest))
			wantStatus(t, ref, http.StatusOK)
			for _, b := range manifestLayers(t, ref.body) {
				wantStatus(t, e.get(t, blobPath("signed/app", b)), http.StatusOK)
			}
			if !referrers {
				// The referrers tag index itself.
				wantStatus(t, e.get(t, manifestPath("signed/app", "sha256-"+f.digest.Hex)), http.StatusOK)
			}
			// Through pullgate the referrers API always exists, whether the
			// upstream has one or only the referrers tag.
			e.cosignVerify(t, "signed/app", f, verifier.LayoutReferrersAPI)

			// A bundle by an untrusted key on an unsigned image.
			u := e.push(t, "signed/app", "v2")
			e.signBundle(t, u, verifiertest.MustGenerateKey(t, ""))
			r = e.get(t, "/v2/signed/app/referrers/"+u.digest.String()+"?ns=reg.test")
			wantStatus(t, r, http.StatusOK) // a listing serves no content
			idx = decodeIndex(t, r.body)
			if len(idx.Manifests) != 1 {
				t.Fatalf("referrers = %s, want one", r.body)
			}
			wantError(t, e.get(t, manifestPath("signed/app", idx.Manifests[0].Digest)), http.StatusForbidden, "DENIED")
			if !referrers {
				wantError(t, e.get(t, manifestPath("signed/app", "sha256-"+u.digest.Hex)), http.StatusForbidden, "DENIED")
			}
		})
	}
}

// cosignVerify verifies f through pullgate the way cosign verify does:
// the verifier reads every signature layout from pullgate itself.
func (e *env) cosignVerify(tb testing.TB, repo string, f fixture, want verifier.Layout) {
	tb.Helper()
	r, err := name.NewRepository(e.frontHst + "/" + testRegistry + "/" + repo)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := verifier.New()
	if err != nil {
		tb.Fatal(err)
	}
	rule, err := e.cfg.Match(testRegistry + "/" + repo)
	if err != nil {
		tb.Fatal(err)
	}
	src := verifiertest.RemoteSource(r, e.front.Client().Transport)
	verdict, err := v.Verify(tb.Context(), src, verifier.Image{Name: testRegistry + "/" + repo, Digest: digestFromHash(f.digest)}, rule)
	if err != nil {
		tb.Fatalf("verify through pullgate: %v", err)
	}
	if !verdict.Allowed {
		tb.Fatalf("verify through pullgate: denied: %v", verdict.Reasons)
	}
	var layouts []verifier.Layout
	for _, ev := range verdict.Evidence {
		layouts = append(layouts, ev.Layout)
	}
	if len(layouts) != 1 || layouts[0] != want {
		tb.Errorf("evidence layouts through pullgate = %v, want [%s]", layouts, want)
	}
}

// TestSignatureShapedRunnable: a manifest whose subject is an allowed
// image is signature material only if every layer is a signature type; a
// runnable layer makes it an ordinary (here unsigned) image.
func TestSignatureShapedRunnable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	f := e.push(t, "signed/app", "v1")
	e.signLegacy(t, f, e.key)
	wantStatus(t, e.get(t, manifestPath("signed/app", "v1")), http.StatusOK)

	sigLayer := static.NewLayer([]byte(`{"payload":"x"}`), verifiertest.MediaTypeBundleV03)
	runnable, err := random.Layer(2000, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := static.NewLayer([]byte("{}"), verifiertest.MediaTypeEmpty)
	for _, l := range []v1.Layer{sigLayer, runnable, cfg} {
		if err := remote.WriteLayer(f.repo, l, remote.WithContext(t.Context())); err != nil {
			t.Fatal(err)
		}
	}
	desc := func(l v1.Layer, mt string) string {
		d, _ := l.Digest()
		n, _ := l.Size()
		return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, mt, d, n)
	}
	manifest := func(layers ...string) []byte {
		return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
			`"artifactType":%q,"config":%s,"layers":[%s],"subject":{"mediaType":%q,"digest":%q,"size":%d}}`,
			verifiertest.MediaTypeBundleV03, desc(cfg, verifiertest.MediaTypeEmpty), strings.Join(layers, ","),
			f.desc.MediaType, f.digest, f.desc.Size)
	}
	good := manifest(desc(sigLayer, verifiertest.MediaTypeBundleV03))
	bad := manifest(desc(sigLayer, verifiertest.MediaTypeBundleV03), desc(runnable, string(types.OCILayer)))
	gd := putRaw(t, f.repo.Digest(sha256Digest(good)), good, types.OCIManifestSchema1)
	bd := putRaw(t, f.repo.Digest(sha256Digest(bad)), bad, types.OCIManifestSchema1)

	wantStatus(t, e.get(t, manifestPath("signed/app", gd.String())), http.StatusOK)
	oe := wantError(t, e.get(t, manifestPath("signed/app", bd.String())), http.StatusForbidden, "DENIED")
	if strings.Contains(oe.Message, "signature material") {
		t.Errorf("runnable manifest was judged as signature material: %q", oe.Message)
	}
	rd, _ := runnable.Digest()
	wantError(t, e.get(t, blobPath("signed/app", rd)), http.StatusForbidden, "DENIED")

	// The same runnable manifest under the .sig tag of the allowed image.
	putRaw(t, f.repo.Tag("sha256-"+f.digest.Hex+".att"), bad, types.OCIManifestSchema1)
	wantError(t, e.get(t, manifestPath("signed/app", "sha256-"+f.digest.Hex+".att")), http.StatusForbidden, "DENIED")
	wantError(t, e.get(t, blobPath("signed/app", rd)), http.StatusForbidden, "DENIED")
}
