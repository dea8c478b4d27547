package verifier_test

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/verifier"
	"github.com/pullgate/pullgate/verifier/verifiertest"
)

// The shared real-world fixtures, read in place (never copied into the
// repository): the internal tests' helpers, exported in export_test.go.
const (
	fixtures     = verifier.FixturesDir
	fixtureImage = verifier.FixtureImage
)

func readFixture(t testing.TB, rel string) []byte {
	t.Helper()
	return verifier.ReadFixture(t, rel)
}

// pushSigLayout pushes a fixture's reconstructed .sig OCI layout to
// u.repo:sha256-<hex>.sig for fixtureImage and returns its digest.
func pushSigLayout(t testing.TB, u *upstream, dir string) digest.Digest {
	t.Helper()
	readFixture(t, filepath.Join(dir, "sig-oci-layout", "index.json"))
	idx, err := layout.ImageIndexFromPath(filepath.Join(fixtures, dir, "sig-oci-layout"))
	must(t, err)
	im, err := idx.IndexManifest()
	must(t, err)
	if len(im.Manifests) != 1 {
		t.Fatalf("%s: %d manifests in the layout, want 1", dir, len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	must(t, err)
	h, err := v1Hash(fixtureImage)
	must(t, err)
	must(t, remote.Write(verifiertest.SigTag(u.repo, h), img, remote.WithContext(t.Context())))
	return digest.Digest(im.Manifests[0].Digest.String())
}

// TestVerifyGenuineLegacyKeySignature verifies a real cosign key-based
// .sig (containers/image fixture, signed in 2023 and logged in
// public-good Rekor) through the in-memory registry: the legacy
// conversion must match what cosign really writes, including the Rekor
// SET annotation, which key signers with tlog optional do not check
// but which must convert cleanly.
func TestVerifyGenuineLegacyKeySignature(t *testing.T) {
	t.Parallel()
	const dir = "legacy-key-rekor-containers-image"
	if got := digest.FromBytes(readFixture(t, filepath.Join(dir, "image-manifest.json"))); got != fixtureImage {
		t.Fatalf("fixture image digest = %s, want %s", got, fixtureImage)
	}
	pemBytes := readFixture(t, filepath.Join(dir, "upstream", "cosign2.pub"))
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	must(t, err)
	genuine := &policy.Signer{Name: "containers-image", Key: &policy.Key{PEM: pemBytes, PublicKey: pub}, TLog: policy.TLogOptional}
	other := testKey(t, verifiertest.ECDSAP256, 0).PolicySigner("containers-image")

	u := newUpstream(t, false)
	artifact := pushSigLayout(t, u, dir)
	if want := digest.FromBytes(readFixture(t, filepath.Join(dir, "sig-manifest.json"))); artifact != want {
		t.Fatalf("pushed .sig manifest %s, want the fixture's %s", artifact, want)
	}
	img := verifier.Image{Name: "registry.example.com/cimg/key-1", Digest: fixtureImage}
	v := newVerifier(t)

	tests := []struct {
		name   string
		signer *policy.Signer
		want   *verifier.Verdict
	}{{
		name:   "its key",
		signer: genuine,
		want: &verifier.Verdict{Allowed: true, Evidence: []verifier.Evidence{
			{Signer: "containers-image", Layout: verifier.LayoutSigTag, Artifact: artifact, LogIndex: -1},
		}},
	}, {
		name:   "another key",
		signer: other,
		want: &verifier.Verdict{Reasons: []string{
			`no valid signature from signer "containers-image" (1 signature found: signed by another key)`,
		}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := v.Verify(t.Context(), u.src, img, keyRule(1, tt.signer))
			must(t, err)
			tt.want.Image, tt.want.Policy = img, "apps"
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVerifyGenuineLegacyKeylessSignature checks a real keyless .sig is
// not accepted by a key signer (keyless signers: genuine_test.go).
func TestVerifyGenuineLegacyKeylessSignature(t *testing.T) {
	t.Parallel()
	const dir = "legacy-keyless-containers-image-fulcio-rekor"
	u := newUpstream(t, false)
	pushSigLayout(t, u, dir)
	img := verifier.Image{Name: "registry.example.com/cimg/fulcio-rekor-1", Digest: fixtureImage}
	got, err := newVerifier(t).Verify(t.Context(), u.src, img, keyRule(1, testKey(t, verifiertest.ECDSAP256, 0).PolicySigner("k")))
	must(t, err)
	want := &verifier.Verdict{Image: img, Policy: "apps", Reasons: []string{
		`no valid signature from signer "k" (1 signature found: signed with a certificate (keyless), not this key)`,
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verdict (-want +got):\n%s", diff)
	}
}
