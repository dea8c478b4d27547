package verifier

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/policy"
)

// fuzzCheck is a key signer check to run fuzzed candidates through
// sigstore-go, so the whole pure path is exercised, not just parsing.
func fuzzCheck(f *testing.F) *signerCheck {
	f.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	c := newKeyCheck("fuzz", &k.PublicKey, policy.TLogOptional, nil)
	if c.unsupported != "" {
		f.Fatal(c.unsupported)
	}
	return c
}

// FuzzLegacyBundle feeds arbitrary payloads and layer annotations to the
// legacy layer to bundle conversion, the claim check and verification.
// Nothing may panic, and nothing may verify (no fuzzed signature is by
// the fuzz key).
func FuzzLegacyBundle(f *testing.F) {
	for _, dir := range []string{"legacy-key-rekor-containers-image", "legacy-keyless-containers-image-fulcio-rekor"} {
		payload, ann := legacyFixture(f, dir)
		f.Add(payload, ann[annotationSignature], ann[annotationCertificate], ann[annotationRekorBundle], ann[annotationTimestamp])
	}
	f.Add([]byte("{}"), "AAAA", "", `{"SignedEntryTimestamp":"AAAA","Payload":{"body":"e30=","logID":"00"}}`, `{"SignedRFC3161Timestamp":"AAAA"}`)
	check := fuzzCheck(f)
	f.Fuzz(func(t *testing.T, payload []byte, sig, cert, rekor, ts string) {
		ann := map[string]string{
			annotationSignature:   sig,
			annotationCertificate: cert,
			annotationRekorBundle: rekor,
			annotationTimestamp:   ts,
		}
		c := &candidate{}
		prepareLegacy(c, payload, ann, fixtureImage)
		if c.reject != "" {
			return
		}
		if _, reason, _ := check.verify(c, fixtureImage); reason == "" {
			t.Fatalf("fuzzed legacy signature verified: payload %q, annotations %v", payload, ann)
		}
	})
}

// FuzzSimpleSigning feeds arbitrary payloads and digests to the
// simple-signing claim check: it must never panic, and must accept only
// a payload naming exactly the digest.
func FuzzSimpleSigning(f *testing.F) {
	payload, _ := legacyFixture(f, "legacy-key-rekor-containers-image")
	f.Add(payload, fixtureImage.String())
	f.Add([]byte(`{"critical":{"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature"}}`), "sha256:00")
	f.Add([]byte(`null`), "")
	f.Fuzz(func(t *testing.T, payload []byte, dgst string) {
		err := checkSimpleSigning(payload, digest.Digest(dgst))
		if err != nil {
			return
		}
		ss, perr := parseSimpleSigning(payload)
		if perr != nil || ss.Critical.Image.DockerManifestDigest != dgst || ss.Critical.Type != simpleSigningType {
			t.Fatalf("accepted payload %q for digest %q", payload, dgst)
		}
	})
}

// FuzzPrepareBundle feeds arbitrary bundle blobs to bundle parsing, the
// statement pre-check and verification.
func FuzzPrepareBundle(f *testing.F) {
	dsse := readFixture(f, filepath.Join("newbundle-keyless-dsse-attestation-cosign-testdata", "bundle.json"))
	f.Add(dsse)
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Add([]byte(`{}`))
	check := fuzzCheck(f)
	f.Fuzz(func(t *testing.T, blob []byte) {
		c := &candidate{}
		prepareBundle(c, blob, fixtureImage)
		if c.reject != "" {
			return
		}
		if _, reason, _ := check.verify(c, fixtureImage); reason == "" {
			t.Fatalf("fuzzed bundle verified: %q", blob)
		}
	})
}
