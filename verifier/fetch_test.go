package verifier_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/verifier"
	"github.com/pullgate/pullgate/verifier/verifiertest"
)

var errUnavailable = errors.New("GET https://registry.example.com/v2/apps/web/…: unexpected status 503")

// forward returns a SourceFuncs that forwards to src.
func forward(src verifier.Source) *verifiertest.SourceFuncs {
	return &verifiertest.SourceFuncs{ManifestFunc: src.Manifest, BlobFunc: src.Blob, ReferrersFunc: src.Referrers}
}

func TestVerifyThresholdZeroFetchesNothing(t *testing.T) {
	t.Parallel()
	src := &verifiertest.SourceFuncs{}
	img := verifier.Image{Name: imageName, Digest: digest.FromString("x")}
	rule := keyRule(0, testKey(t, verifiertest.ECDSAP256, 0).PolicySigner("a"))
	got, err := newVerifier(t).Verify(t.Context(), src, img, rule)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&verifier.Verdict{Image: img, Policy: "apps", Allowed: true}, got); diff != "" {
		t.Errorf("verdict (-want +got):\n%s", diff)
	}
	m, b, r := src.Calls()
	if m+b+r != 0 {
		t.Errorf("source calls = %d manifests, %d blobs, %d referrers; want none", m, b, r)
	}
}

// TestVerifyFetchErrors checks that a Source fault is "could not
// decide" (an error and no verdict) unless the material already fetched
// satisfies the rule.
func TestVerifyFetchErrors(t *testing.T) {
	t.Parallel()
	type signed struct{ legacy, bundle *verifiertest.Key }
	tests := []struct {
		name    string
		signed  func(e *env) signed
		fault   func(e *env, f *verifiertest.SourceFuncs)
		allowed bool
	}{{
		name:   "sig tag unavailable, nothing else",
		signed: func(e *env) signed { return signed{} },
		fault: func(e *env, f *verifiertest.SourceFuncs) {
			next := f.ManifestFunc
			f.ManifestFunc = func(ctx context.Context, ref string, n int64) ([]byte, string, error) {
				if strings.HasSuffix(ref, ".sig") {
					return nil, "", errUnavailable
				}
				return next(ctx, ref, n)
			}
		},
	}, {
		name:   "referrers tag unavailable, sig tag signed by another key",
		signed: func(e *env) signed { return signed{legacy: e.b} },
		fault: func(e *env, f *verifiertest.SourceFuncs) {
			next := f.ManifestFunc
			f.ManifestFunc = func(ctx context.Context, ref string, n int64) ([]byte, string, error) {
				if ref == "sha256-"+e.desc.Digest.Hex {
					return nil, "", errUnavailable
				}
				return next(ctx, ref, n)
			}
		},
	}, {
		name:   "referrers API unavailable, valid sig tag",
		signed: func(e *env) signed { return signed{legacy: e.a} },
		fault: func(e *env, f *verifiertest.SourceFuncs) {
			f.ReferrersFunc = func(context.Context, digest.Digest, int64) ([]byte, error) { return nil, errUnavailable }
		},
		allowed: true,
	}, {
		name:   "sig tag unavailable, valid bundle",
		signed: func(e *env) signed { return signed{bundle: e.a} },
		fault: func(e *env, f *verifiertest.SourceFuncs) {
			next := f.ManifestFunc
			f.ManifestFunc = func(ctx context.Context, ref string, n int64) ([]byte, string, error) {
				if strings.HasSuffix(ref, ".sig") {
					return nil, "", errUnavailable
				}
				return next(ctx, ref, n)
			}
		},
		allowed: true,
	}, {
		name:   "referrer manifest unavailable, valid sig tag",
		signed: func(e *env) signed { return signed{legacy: e.a, bundle: e.b} },
		fault: func(e *env, f *verifiertest.SourceFuncs) {
			next := f.ManifestFunc
			f.ManifestFunc = func(ctx context.Context, ref string, n int64) ([]byte, string, error) {
				if strings.HasPrefix(ref, "sha256:") {
					return nil, "", errUnavailable
				}
				return next(ctx, ref, n)
			}
		},
		allowed: true,
	}, {
		name:   "blob unavailable",
		signed: func(e *env) signed { return signed{legacy: e.a, bundle: e.a} },
		fault: func(e *env, f *verifiertest.SourceFuncs) {
			f.BlobFunc = func(context.Context, digest.Digest, int64) ([]byte, error) { return nil, errUnavailable }
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, false)
			s := tt.signed(e)
			if s.legacy != nil {
				must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, s.legacy))
			}
			if s.bundle != nil {
				must(t, verifiertest.SignBundle(t.Context(), e.u.repo, e.desc, s.bundle))
			}
			src := forward(e.u.src)
			tt.fault(e, src)
			got, err := newVerifier(t).Verify(t.Context(), src, e.img(), keyRule(1, e.a.PolicySigner("a")))
			if tt.allowed {
				if err != nil || got == nil || !got.Allowed {
					t.Fatalf("Verify = %+v, %v; want allowed", got, err)
				}
				return
			}
			if got != nil || err == nil {
				t.Fatalf("Verify = %+v, %v; want no verdict and an error", got, err)
			}
			if !errors.Is(err, errUnavailable) || !strings.Contains(err.Error(), e.img().String()) {
				t.Errorf("error %q does not wrap the fault with the image", err)
			}
		})
	}
}

func TestVerifyContextCanceled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.a))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	got, err := newVerifier(t).Verify(ctx, e.u.src, e.img(), keyRule(1, e.a.PolicySigner("a")))
	if got != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify = %+v, %v; want no verdict and context.Canceled", got, err)
	}
}

// TestVerifyLimits checks oversize and overlong material is rejected
// with a reason, never an error, a panic, or unbounded fetching.
func TestVerifyLimits(t *testing.T) {
	t.Parallel()
	t.Run("sig manifest too large", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, false)
		must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.a))
		got, err := newVerifier(t, verifier.WithLimits(policy.Limits{MaxManifestBytes: 64})).
			Verify(t.Context(), e.u.src, e.img(), keyRule(1, e.a.PolicySigner("a")))
		must(t, err)
		want := &verifier.Verdict{Image: e.img(), Policy: "apps", Reasons: []string{
			"no signature found (no cosign .sig tag, no Sigstore bundle among the referrers)",
			sigTagName(e.img().Digest) + " is larger than 64 bytes; ignored",
		}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("verdict (-want +got):\n%s", diff)
		}
	})
	t.Run("source ignores maxBytes", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, false)
		src := forward(e.u.src)
		src.ManifestFunc = func(ctx context.Context, ref string, _ int64) ([]byte, string, error) {
			return e.u.src.Manifest(ctx, ref, 1<<30)
		}
		must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.a))
		got, err := newVerifier(t, verifier.WithLimits(policy.Limits{MaxManifestBytes: 64})).
			Verify(t.Context(), src, e.img(), keyRule(1, e.a.PolicySigner("a")))
		must(t, err)
		if got.Allowed || !strings.Contains(strings.Join(got.Reasons, "\n"), "is larger than 64 bytes") {
			t.Errorf("verdict = %+v, want a denial for the oversize manifest", got)
		}
	})
	t.Run("payload too large", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, false)
		must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.a))
		got, err := newVerifier(t, verifier.WithLimits(policy.Limits{MaxSignatureBytes: 16})).
			Verify(t.Context(), e.u.src, e.img(), keyRule(1, e.a.PolicySigner("a")))
		must(t, err)
		want := &verifier.Verdict{Image: e.img(), Policy: "apps", Reasons: []string{
			`no valid signature from signer "a" (1 signature found: signature payload is larger than 16 bytes)`,
		}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("verdict (-want +got):\n%s", diff)
		}
	})
	t.Run("too many signatures in the sig tag", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, false)
		for _, k := range []*verifiertest.Key{e.b, e.b, e.a} { // the valid one is third
			must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, k))
		}
		src := forward(e.u.src)
		got, err := newVerifier(t, verifier.WithLimits(policy.Limits{MaxSignatures: 2})).
			Verify(t.Context(), src, e.img(), keyRule(1, e.a.PolicySigner("a")))
		must(t, err)
		want := &verifier.Verdict{Image: e.img(), Policy: "apps", Reasons: []string{
			`no valid signature from signer "a" (2 signatures found: signed by another key)`,
			sigTagName(e.img().Digest) + " has 3 signatures; only the first 2 were read",
		}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("verdict (-want +got):\n%s", diff)
		}
		if _, blobs, _ := src.Calls(); blobs != 2 {
			t.Errorf("blob fetches = %d, want 2", blobs)
		}
	})
	t.Run("too many referrers", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, true)
		for range 3 {
			must(t, verifiertest.SignBundle(t.Context(), e.u.repo, e.desc, e.b))
		}
		src := forward(e.u.src)
		got, err := newVerifier(t, verifier.WithLimits(policy.Limits{MaxSignatures: 1})).
			Verify(t.Context(), src, e.img(), keyRule(1, e.a.PolicySigner("a")))
		must(t, err)
		want := &verifier.Verdict{Image: e.img(), Policy: "apps", Reasons: []string{
			`no valid signature from signer "a" (1 signature found: signed by another key)`,
			"referrers of " + e.desc.Digest.String() + ": 3 referrers listed; only the first 1 were read",
		}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("verdict (-want +got):\n%s", diff)
		}
		// One .sig tag and one referrer manifest; one bundle blob.
		if m, b, _ := src.Calls(); m != 2 || b != 1 {
			t.Errorf("fetches = %d manifests, %d blobs; want 2, 1", m, b)
		}
	})
	t.Run("ten thousand layers", func(t *testing.T) {
		t.Parallel()
		img := verifier.Image{Name: imageName, Digest: digest.FromString("image")}
		type layer struct {
			MediaType   string            `json:"mediaType"`
			Digest      string            `json:"digest"`
			Size        int               `json:"size"`
			Annotations map[string]string `json:"annotations"`
		}
		payload := []byte(`{"critical":{"image":{"docker-manifest-digest":"` + img.Digest.String() + `"},"type":"cosign container image signature"}}`)
		layers := make([]layer, 10000)
		for i := range layers {
			layers[i] = layer{verifiertest.MediaTypeSimpleSigning, digest.FromBytes(payload).String(), len(payload),
				map[string]string{verifiertest.AnnotationSignature: base64.StdEncoding.EncodeToString([]byte{byte(i)})}}
		}
		manifest, err := json.Marshal(map[string]any{"schemaVersion": 2, "layers": layers})
		must(t, err)
		src := &verifiertest.SourceFuncs{
			ManifestFunc: func(_ context.Context, ref string, _ int64) ([]byte, string, error) {
				if ref == sigTagName(img.Digest) {
					return manifest, "application/vnd.oci.image.manifest.v1+json", nil
				}
				return nil, "", verifier.ErrNotFound
			},
			BlobFunc: func(context.Context, digest.Digest, int64) ([]byte, error) { return payload, nil },
		}
		got, err := newVerifier(t).Verify(t.Context(), src, img, keyRule(1, testKey(t, verifiertest.ECDSAP256, 0).PolicySigner("a")))
		must(t, err)
		if got.Allowed {
			t.Errorf("allowed garbage: %+v", got)
		}
		if _, b, _ := src.Calls(); b != verifier.DefaultMaxSignatures {
			t.Errorf("blob fetches = %d, want %d", b, verifier.DefaultMaxSignatures)
		}
	})
}

// TestVerifyReferrerBytesMismatch serves other bytes for a referrer
// manifest than its digest names.
func TestVerifyReferrerBytesMismatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	must(t, verifiertest.SignBundle(t.Context(), e.u.repo, e.desc, e.a))
	art := e.referrerArtifact(t)
	src := forward(e.u.src)
	src.ManifestFunc = func(ctx context.Context, ref string, n int64) ([]byte, string, error) {
		body, mt, err := e.u.src.Manifest(ctx, ref, n)
		if ref == art.String() {
			body = append(body, ' ')
		}
		return body, mt, err
	}
	got, err := newVerifier(t).Verify(t.Context(), src, e.img(), keyRule(1, e.a.PolicySigner("a")))
	must(t, err)
	if got.Allowed || len(got.Reasons) != 2 || !strings.Contains(got.Reasons[1], "registry returned bytes with digest") {
		t.Errorf("verdict = %+v, want a denial naming the digest mismatch", got)
	}
}

// TestVerifyExperimentalReferrer verifies cosign v2's experimental OCI
// 1.1 signature (COSIGN_EXPERIMENTAL=1 --registry-referrers-mode=oci-1-1):
// a simple-signing image whose config media type is
// application/vnd.dev.cosign.artifact.sig.v1+json, pushed as a referrer.
func TestVerifyExperimentalReferrer(t *testing.T) {
	t.Parallel()
	for _, referrers := range []bool{true, false} {
		t.Run(fmt.Sprint("referrersAPI=", referrers), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, referrers)
			payload := verifiertest.SimpleSigningPayload(e.u.repo, e.desc.Digest)
			sig, err := e.a.LegacySignature(payload)
			must(t, err)
			img, err := mutate.Append(
				mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), "application/vnd.dev.cosign.artifact.sig.v1+json"),
				mutate.Addendum{
					Layer:       static.NewLayer(payload, verifiertest.MediaTypeSimpleSigning),
					Annotations: map[string]string{verifiertest.AnnotationSignature: base64.StdEncoding.EncodeToString(sig)},
				})
			must(t, err)
			subj := mutate.Subject(img, e.desc).(v1.Image) // must be the last mutation
			dgst, err := subj.Digest()
			must(t, err)
			must(t, remote.Write(e.u.repo.Digest(dgst.String()), subj, remote.WithContext(t.Context())))

			got, err := newVerifier(t).Verify(t.Context(), e.u.src, e.img(), keyRule(1, e.a.PolicySigner("a")))
			must(t, err)
			layout := verifier.LayoutReferrersTag
			if referrers {
				layout = verifier.LayoutReferrersAPI
			}
			want := &verifier.Verdict{Image: e.img(), Policy: "apps", Allowed: true, Evidence: []verifier.Evidence{
				{Signer: "a", Layout: layout, Artifact: digest.Digest(dgst.String()), LogIndex: -1},
			}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVerifyConcurrent shares one verifier between goroutines; run with
// -race.
func TestVerifyConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.a))
	must(t, verifiertest.SignBundle(t.Context(), e.u.repo, e.desc, e.a))
	v := newVerifier(t)
	signerA, signerB := e.a.PolicySigner("a"), e.b.PolicySigner("b")
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			rule := keyRule(1, signerA)
			if i%2 == 1 {
				rule = keyRule(1, signerB)
			}
			got, err := v.Verify(t.Context(), e.u.src, e.img(), rule)
			if err != nil {
				t.Errorf("Verify: %v", err)
				return
			}
			if got.Allowed != (i%2 == 0) {
				t.Errorf("goroutine %d: allowed = %v", i, got.Allowed)
			}
		})
	}
	wg.Wait()
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    []verifier.Option
		wantErr bool
	}{
		{name: "defaults"},
		{name: "zero limits take defaults", opts: []verifier.Option{verifier.WithLimits(policy.Limits{})}},
		{name: "negative limit", opts: []verifier.Option{verifier.WithLimits(policy.Limits{MaxSignatures: -1})}, wantErr: true},
		{name: "nil logger", opts: []verifier.Option{verifier.WithLogger(nil)}, wantErr: true},
		{name: "nil clock", opts: []verifier.Option{verifier.WithClock(nil)}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := verifier.New(tt.opts...)
			if (err != nil) != tt.wantErr {
				t.Errorf("New: error %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyBadInput(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	rule := keyRule(1, testKey(t, verifiertest.ECDSAP256, 0).PolicySigner("a"))
	for _, tc := range []struct {
		img  verifier.Image
		rule *policy.Rule
	}{
		{verifier.Image{Name: imageName, Digest: "sha256:short"}, rule},
		{verifier.Image{Name: imageName, Digest: digest.SHA512.FromString("x")}, rule},
		{verifier.Image{Name: imageName, Digest: digest.FromString("x")}, nil},
	} {
		got, err := v.Verify(t.Context(), &verifiertest.SourceFuncs{}, tc.img, tc.rule)
		if got != nil || err == nil {
			t.Errorf("Verify(%v, %v) = %+v, %v; want an error", tc.img, tc.rule, got, err)
		}
	}
}
