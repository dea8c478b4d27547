package verifiertest_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pullgate/pullgate/verifier"
	"github.com/pullgate/pullgate/verifier/verifiertest"
)

const emptyJSONDigest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSignBundleShape checks the referrer manifest and bundle are shaped
// as cosign v3 writes them, with and without the referrers API.
func TestSignBundleShape(t *testing.T) {
	t.Parallel()
	for _, referrers := range []bool{true, false} {
		t.Run(map[bool]string{true: "referrers API", false: "referrers tag"}[referrers], func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			srv := verifiertest.NewRegistry(referrers)
			t.Cleanup(srv.Close)
			repo, err := verifiertest.Repository(srv, "apps/web")
			must(t, err)
			desc, err := verifiertest.PushRandomImage(ctx, repo, "v1", 1)
			must(t, err)
			key, err := verifiertest.GenerateKey("")
			must(t, err)
			must(t, verifiertest.SignBundle(ctx, repo, desc, key))

			src := verifiertest.RemoteSource(repo, nil)
			dgst := digest.Digest(desc.Digest.String())
			var index []byte
			if referrers {
				index, err = src.Referrers(ctx, dgst, 1<<20)
				must(t, err)
				if _, _, err := src.Manifest(ctx, verifiertest.ReferrersTag(repo, desc.Digest).TagStr(), 1<<20); !errors.Is(err, verifier.ErrNotFound) {
					t.Errorf("referrers tag with the API: %v, want ErrNotFound", err)
				}
			} else {
				if _, err := src.Referrers(ctx, dgst, 1<<20); !errors.Is(err, verifier.ErrReferrersUnsupported) {
					t.Fatalf("Referrers without the API: %v, want ErrReferrersUnsupported", err)
				}
				index, _, err = src.Manifest(ctx, verifiertest.ReferrersTag(repo, desc.Digest).TagStr(), 1<<20)
				must(t, err)
			}
			var idx v1.IndexManifest
			must(t, json.Unmarshal(index, &idx))
			if len(idx.Manifests) != 1 {
				t.Fatalf("index lists %d referrers, want 1", len(idx.Manifests))
			}
			body, mt, err := src.Manifest(ctx, idx.Manifests[0].Digest.String(), 1<<20)
			must(t, err)
			if mt != "application/vnd.oci.image.manifest.v1+json" {
				t.Errorf("referrer Content-Type = %q", mt)
			}
			var m v1.Manifest
			must(t, json.Unmarshal(body, &m))
			delete(m.Annotations, verifiertest.AnnotationCreated)
			bundleDesc := m.Layers[0]
			want := v1.Manifest{
				SchemaVersion: 2,
				MediaType:     "application/vnd.oci.image.manifest.v1+json",
				ArtifactType:  verifiertest.MediaTypeBundleV03,
				Config: v1.Descriptor{
					MediaType: verifiertest.MediaTypeEmpty, Size: 2, Digest: v1.Hash{Algorithm: "sha256", Hex: emptyJSONDigest[7:]},
					ArtifactType: verifiertest.MediaTypeBundleV03,
				},
				Layers:  []v1.Descriptor{{MediaType: verifiertest.MediaTypeBundleV03, Size: bundleDesc.Size, Digest: bundleDesc.Digest}},
				Subject: &v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest},
				Annotations: map[string]string{
					verifiertest.AnnotationBundleContent:       "dsse-envelope",
					verifiertest.AnnotationBundlePredicateType: verifiertest.CosignSignPredicateType,
				},
			}
			if diff := cmp.Diff(want, m); diff != "" {
				t.Errorf("referrer manifest (-want +got):\n%s", diff)
			}

			blob, err := src.Blob(ctx, digest.Digest(bundleDesc.Digest.String()), 1<<20)
			must(t, err)
			var b struct {
				MediaType            string `json:"mediaType"`
				VerificationMaterial struct {
					PublicKey struct {
						Hint string `json:"hint"`
					} `json:"publicKey"`
				} `json:"verificationMaterial"`
				DSSEEnvelope struct {
					Payload     []byte `json:"payload"`
					PayloadType string `json:"payloadType"`
				} `json:"dsseEnvelope"`
			}
			must(t, json.Unmarshal(blob, &b))
			var stmt map[string]any
			must(t, json.Unmarshal(b.DSSEEnvelope.Payload, &stmt))
			gotBundle := map[string]any{
				"mediaType": b.MediaType, "hasHint": b.VerificationMaterial.PublicKey.Hint != "",
				"payloadType": b.DSSEEnvelope.PayloadType, "statement": stmt,
			}
			wantBundle := map[string]any{
				"mediaType": verifiertest.MediaTypeBundleV03, "hasHint": true,
				"payloadType": "application/vnd.in-toto+json",
				"statement": map[string]any{
					"_type":         "https://in-toto.io/Statement/v1",
					"subject":       []any{map[string]any{"digest": map[string]any{"sha256": desc.Digest.Hex}, "annotations": map[string]any{}}},
					"predicateType": verifiertest.CosignSignPredicateType,
					"predicate":     map[string]any{},
				},
			}
			if diff := cmp.Diff(wantBundle, gotBundle); diff != "" {
				t.Errorf("bundle (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSignLegacyShape checks the .sig image is shaped as cosign v2
// writes it, one layer per signature.
func TestSignLegacyShape(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := verifiertest.NewRegistry(false)
	t.Cleanup(srv.Close)
	repo, err := verifiertest.Repository(srv, "apps/web")
	must(t, err)
	desc, err := verifiertest.PushRandomImage(ctx, repo, "v1", 1)
	must(t, err)
	for _, alg := range []string{verifiertest.ECDSAP256, verifiertest.Ed25519} {
		key, err := verifiertest.GenerateKey(alg)
		must(t, err)
		must(t, verifiertest.SignLegacy(ctx, repo, desc.Digest, key))
	}
	img, err := remote.Image(verifiertest.SigTag(repo, desc.Digest), remote.WithContext(ctx))
	must(t, err)
	m, err := img.Manifest()
	must(t, err)
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
		t.Errorf("manifest media types = %s, config %s", m.MediaType, m.Config.MediaType)
	}
	payload := verifiertest.SimpleSigningPayload(repo, desc.Digest)
	wantPayload := `{"critical":{"identity":{"docker-reference":"` + repo.Name() + `"},"image":{"docker-manifest-digest":"` +
		desc.Digest.String() + `"},"type":"cosign container image signature"},"optional":null}`
	if string(payload) != wantPayload {
		t.Errorf("payload = %s, want %s", payload, wantPayload)
	}
	if len(m.Layers) != 2 {
		t.Fatalf("%d layers, want 2", len(m.Layers))
	}
	for _, l := range m.Layers {
		if l.MediaType != verifiertest.MediaTypeSimpleSigning || l.Digest.String() != digest.FromBytes(payload).String() {
			t.Errorf("layer %+v", l)
		}
		if _, err := base64.StdEncoding.DecodeString(l.Annotations[verifiertest.AnnotationSignature]); err != nil || len(l.Annotations) != 1 {
			t.Errorf("layer annotations %v", l.Annotations)
		}
	}
}

func TestRemoteSourceErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := verifiertest.NewRegistry(true)
	t.Cleanup(srv.Close)
	repo, err := verifiertest.Repository(srv, "apps/web")
	must(t, err)
	desc, err := verifiertest.PushRandomImage(ctx, repo, "v1", 1)
	must(t, err)
	src := verifiertest.RemoteSource(repo, nil)
	if _, _, err := src.Manifest(ctx, "nope", 1<<20); !errors.Is(err, verifier.ErrNotFound) {
		t.Errorf("missing manifest: %v", err)
	}
	if _, err := src.Blob(ctx, digest.FromString("nope"), 1<<20); !errors.Is(err, verifier.ErrNotFound) {
		t.Errorf("missing blob: %v", err)
	}
	if _, _, err := src.Manifest(ctx, "v1", 10); !errors.Is(err, verifier.ErrTooLarge) {
		t.Errorf("oversize manifest: %v", err)
	}
	body, _, err := src.Manifest(ctx, desc.Digest.String(), 1<<20)
	must(t, err)
	if got := digest.FromBytes(body).String(); got != desc.Digest.String() {
		t.Errorf("manifest by digest hashes to %s", got)
	}

	var f verifiertest.SourceFuncs
	_, _, errM := f.Manifest(ctx, "x", 1)
	_, errB := f.Blob(ctx, digest.FromString("x"), 1)
	_, errR := f.Referrers(ctx, digest.FromString("x"), 1)
	if !errors.Is(errM, verifier.ErrNotFound) || !errors.Is(errB, verifier.ErrNotFound) || !errors.Is(errR, verifier.ErrReferrersUnsupported) {
		t.Errorf("zero SourceFuncs: %v, %v, %v", errM, errB, errR)
	}
	if m, b, r := f.Calls(); m != 1 || b != 1 || r != 1 {
		t.Errorf("Calls = %d, %d, %d", m, b, r)
	}
}

// TestSigstoreTrustedRootJSON checks the trusted_root.json round trip
// keeps the Rekor and CT log IDs (VirtualSigstore's are ASCII hex, which
// a naive round trip turns into hex of hex) and the Fulcio chain.
func TestSigstoreTrustedRootJSON(t *testing.T) {
	t.Parallel()
	ss := verifiertest.MustNewSigstore(t)
	b, err := ss.TrustedRootJSON()
	must(t, err)
	tr, err := root.NewTrustedRootFromJSON(b)
	must(t, err)
	if _, ok := tr.RekorLogs()[ss.RekorLogID()]; !ok || len(tr.RekorLogs()) != 1 {
		t.Errorf("Rekor logs after the round trip: %v, want exactly %s", keys(tr.RekorLogs()), ss.RekorLogID())
	}
	if diff := cmp.Diff(keys(ss.TrustedRoot().CTLogs()), keys(tr.CTLogs())); diff != "" {
		t.Errorf("CT log IDs after the round trip (-want +got):\n%s", diff)
	}
	if n := len(tr.FulcioCertificateAuthorities()); n != 1 {
		t.Errorf("%d Fulcio CAs, want 1", n)
	}
	if n := len(tr.TimestampingAuthorities()); n != 1 {
		t.Errorf("%d timestamp authorities, want 1", n)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
