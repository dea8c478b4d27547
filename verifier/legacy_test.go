package verifier

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

const fixtures = "../../shared/fixtures"

const fixtureImage digest.Digest = "sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a"

func readFixture(t testing.TB, rel string) []byte {
	t.Helper()
	p := filepath.Join(fixtures, rel)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("fixture %s is missing (%v): the genuine cosign fixtures must be at /work/shared/fixtures; this test does not skip", p, err)
	}
	return b
}

// legacyFixture returns a fixture's payload and layer annotations.
func legacyFixture(t testing.TB, dir string) ([]byte, map[string]string) {
	t.Helper()
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(readFixture(t, filepath.Join(dir, "layer-spec.json")), &spec); err != nil {
		t.Fatal(err)
	}
	return readFixture(t, filepath.Join(dir, "payload.json")), spec.Annotations
}

// TestLegacyBundleGenuineRekor converts a real key-signed .sig layer and
// verifies it with its Rekor SET against the real public-good trusted
// root: the conversion of the dev.sigstore.cosign/bundle annotation
// (hex-decoded log ID, kind and version from the body, SET, integrated
// time) is exactly what sigstore-go needs, independently of the
// verifier's own key and keyless checks.
func TestLegacyBundleGenuineRekor(t *testing.T) {
	t.Parallel()
	const dir = "legacy-key-rekor-containers-image"
	payload, ann := legacyFixture(t, dir)
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(readFixture(t, filepath.Join(dir, "upstream", "cosign2.pub")))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRootFromJSON(readFixture(t, "trust/trusted_root.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSimpleSigning(payload, fixtureImage); err != nil {
		t.Fatalf("checkSimpleSigning: %v", err)
	}
	b, err := legacyBundle(payload, ann)
	if err != nil {
		t.Fatalf("legacyBundle: %v", err)
	}
	entries, err := b.TlogEntries()
	if err != nil || len(entries) != 1 {
		t.Fatalf("TlogEntries = %v, %v; want one", entries, err)
	}
	if got, want := entries[0].LogIndex(), int64(11608800); got != want {
		t.Errorf("log index = %d, want %d", got, want)
	}
	if got, want := entries[0].IntegratedTime(), time.Unix(1674251859, 0); !got.Equal(want) {
		t.Errorf("integrated time = %v, want %v", got, want)
	}

	sv, err := keyVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	keys := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(sv, time.Time{}, time.Time{}), nil
	})
	v, err := verify.NewVerifier(root.TrustedMaterialCollection{tr, keys}, verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1))
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Verify(b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(payload)), verify.WithKey()))
	if err != nil {
		t.Fatalf("Verify with the Rekor SET: %v", err)
	}
	if len(res.VerifiedTimestamps) != 1 || !res.VerifiedTimestamps[0].Timestamp.Equal(time.Unix(1674251859, 0)) {
		t.Errorf("verified timestamps = %+v, want the integrated time", res.VerifiedTimestamps)
	}

	// A forged log index breaks the SET: the entry no longer verifies.
	var rb map[string]any
	if err := json.Unmarshal([]byte(ann[annotationRekorBundle]), &rb); err != nil {
		t.Fatal(err)
	}
	rb["Payload"].(map[string]any)["logIndex"] = 11608801
	forged, _ := json.Marshal(rb)
	ann2 := map[string]string{annotationSignature: ann[annotationSignature], annotationRekorBundle: string(forged)}
	b2, err := legacyBundle(payload, ann2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(b2, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(payload)), verify.WithKey())); err == nil {
		t.Error("Verify accepted a forged log index")
	}
}

// TestLegacyBundleGenuineKeyless converts a real keyless .sig layer: the
// certificate becomes the verification material.
func TestLegacyBundleGenuineKeyless(t *testing.T) {
	t.Parallel()
	payload, ann := legacyFixture(t, "legacy-keyless-containers-image-fulcio-rekor")
	b, err := legacyBundle(payload, ann)
	if err != nil {
		t.Fatalf("legacyBundle: %v", err)
	}
	vc, err := b.VerificationContent()
	if err != nil {
		t.Fatal(err)
	}
	if vc.Certificate() == nil {
		t.Fatal("no certificate in the converted bundle")
	}
	if got := vc.Certificate().EmailAddresses; len(got) != 1 || got[0] != "mitr@redhat.com" {
		t.Errorf("certificate SAN = %v", got)
	}
}

func TestLegacyBundleErrors(t *testing.T) {
	t.Parallel()
	sig := base64.StdEncoding.EncodeToString([]byte("sig"))
	tests := []struct {
		name string
		ann  map[string]string
		want string
	}{
		{"no signature", map[string]string{}, "no dev.cosignproject.cosign/signature annotation"},
		{"empty signature", map[string]string{annotationSignature: ""}, "no dev.cosignproject.cosign/signature annotation"},
		{"signature not base64", map[string]string{annotationSignature: "%%%"}, "dev.cosignproject.cosign/signature annotation is not base64"},
		{"certificate not PEM", map[string]string{annotationSignature: sig, annotationCertificate: "nope"}, "dev.sigstore.cosign/certificate annotation is not a PEM certificate"},
		{"rekor bundle not JSON", map[string]string{annotationSignature: sig, annotationRekorBundle: "{"}, "dev.sigstore.cosign/bundle annotation: not a Rekor bundle"},
		{"rekor bundle without SET", map[string]string{annotationSignature: sig, annotationRekorBundle: `{"Payload":{}}`}, "dev.sigstore.cosign/bundle annotation: SignedEntryTimestamp is not base64"},
		{"timestamp not JSON", map[string]string{annotationSignature: sig, annotationTimestamp: "x"}, "dev.sigstore.cosign/rfc3161timestamp annotation: not a timestamp bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := legacyBundle([]byte("{}"), tt.ann)
			if err == nil || err.Error() != tt.want {
				t.Errorf("legacyBundle error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCheckSimpleSigning(t *testing.T) {
	t.Parallel()
	d := digest.FromString("image")
	other := digest.FromString("other")
	tests := []struct {
		name    string
		payload string
		want    string
	}{
		{"ok", `{"critical":{"identity":{"docker-reference":"anything"},"image":{"docker-manifest-digest":"` + d.String() + `"},"type":"cosign container image signature"},"optional":null}`, ""},
		{"other digest", `{"critical":{"image":{"docker-manifest-digest":"` + other.String() + `"},"type":"cosign container image signature"}}`,
			"signature payload names digest " + other.String() + " not " + d.String()},
		{"no digest", `{"critical":{"type":"cosign container image signature"}}`, "signature payload names no digest"},
		{"wrong type", `{"critical":{"image":{"docker-manifest-digest":"` + d.String() + `"},"type":"x\ny"}}`,
			`signature payload type is "x?y", not "cosign container image signature"`},
		{"not JSON", `nope`, "signature payload is not simple-signing JSON"},
		{"digest with newline", `{"critical":{"image":{"docker-manifest-digest":"sha256:a\nb"},"type":"cosign container image signature"}}`,
			"signature payload names digest sha256:a?b not " + d.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkSimpleSigning([]byte(tt.payload), d)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("checkSimpleSigning (-want +got):\n%s", diff)
			}
		})
	}
}

// TestKeyVerifier checks every signing scheme cosign and sigstore-go use
// for each key type verifies, and that a signature by one scheme does
// not pass for another key.
func TestKeyVerifier(t *testing.T) {
	t.Parallel()
	msg := []byte("payload")
	s256 := sha256.Sum256(msg)
	s384 := sha512.Sum384(msg)
	s512 := sha512.Sum512(msg)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecdsaSig := func(k *ecdsa.PrivateKey, digest []byte) []byte {
		s, err := ecdsa.SignASN1(rand.Reader, k, digest)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rsaSig, _ := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, s256[:])
	edPure := ed25519.Sign(edKey, msg)
	edPH, _ := edKey.Sign(rand.Reader, s512[:], &ed25519.Options{Hash: crypto.SHA512})

	tests := []struct {
		name string
		pub  crypto.PublicKey
		sig  []byte
		ok   bool
	}{
		{"p256 sha256", &p256.PublicKey, ecdsaSig(p256, s256[:]), true},
		{"p384 sha384 (sigstore-go default)", &p384.PublicKey, ecdsaSig(p384, s384[:]), true},
		{"p384 sha256 (cosign v2 legacy)", &p384.PublicKey, ecdsaSig(p384, s256[:]), true},
		{"p521 sha512", &p521.PublicKey, ecdsaSig(p521, s512[:]), true},
		{"p521 sha256", &p521.PublicKey, ecdsaSig(p521, s256[:]), true},
		{"p384 signature, other key", &p256.PublicKey, ecdsaSig(p384, s256[:]), false},
		{"rsa pkcs1v15 sha256", &rsaKey.PublicKey, rsaSig, true},
		{"ed25519 pure", edKey.Public(), edPure, true},
		{"ed25519ph", edKey.Public(), edPH, true},
		{"ed25519 garbage", edKey.Public(), []byte("x"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := keyVerifier(tt.pub)
			if err != nil {
				t.Fatal(err)
			}
			err = v.VerifySignature(bytes.NewReader(tt.sig), bytes.NewReader(msg))
			if (err == nil) != tt.ok {
				t.Errorf("VerifySignature = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"short":                 "short",
		"0123456789abc":         "0123456789…",
		"a\x00b\nc\xffd":        "a?b?c?d",
		strings.Repeat("é", 10): strings.Repeat("é", 5) + "…",
	} {
		if got := truncate(in, 10); got != want {
			t.Errorf("truncate(%q) = %q, want %q", in, got, want)
		}
	}
}
