package verifier

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pullgate/pullgate/policy"
)

const fixtureEImage digest.Digest = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"

// genuineRoot is the public-good trusted root of the fixtures.
func genuineRoot(t testing.TB) *root.TrustedRoot {
	t.Helper()
	tr, err := root.NewTrustedRootFromJSON(readFixture(t, "trust/trusted_root.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// keylessTestCheck is the check of a keyless signer against the genuine
// public-good root, SCTs required.
func keylessTestCheck(t testing.TB, k *policy.Keyless, tlog policy.TLogPolicy) *signerCheck {
	t.Helper()
	s, err := New(WithTrustedMaterial("", genuineRoot(t)))
	if err != nil {
		t.Fatal(err)
	}
	c := s.signerCheck(&policy.Signer{Name: "dev", Keyless: k, TLog: tlog}, s.snapshot())
	if c.unsupported != "" {
		t.Fatal(c.unsupported)
	}
	return c
}

// TestGenuineBundleVerifiesKeyless runs fixture E's bundle (a real
// keyless DSSE attestation, bundle v0.3) through the keyless check
// directly: it verifies (certificate chain, SCT, Rekor promise and
// proof, signature, identity) and yields the evidence, and is then
// refused as a signature only because its predicate is an attestation's.
func TestGenuineBundleVerifiesKeyless(t *testing.T) {
	t.Parallel()
	c := &candidate{}
	prepareBundle(c, readFixture(t, filepath.Join("newbundle-keyless-dsse-attestation-cosign-testdata", "bundle.json")), fixtureEImage)
	if c.reject != "" {
		t.Fatal(c.reject)
	}
	for _, tlog := range []policy.TLogPolicy{policy.TLogRequired, policy.TLogOptional} {
		sc := keylessTestCheck(t, &policy.Keyless{Issuer: "https://github.com/login/oauth", Subject: "cody@soyland.com"}, tlog)
		got, reason, err := sc.verify(c, fixtureEImage)
		if err != nil {
			t.Fatalf("tlog %s: %v", tlog, err)
		}
		want := verified{
			predicateType: "https://cosign.sigstore.dev/attestation/v1",
			identity:      "cody@soyland.com", issuer: "https://github.com/login/oauth",
			logIndex: 175508996, integratedTime: time.Date(2025, 2, 28, 19, 18, 11, 0, time.UTC),
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(verified{})); diff != "" {
			t.Errorf("tlog %s: verified (-want +got):\n%s", tlog, diff)
		}
		if reason != "attestation of type https://cosign.sigstore.dev/attestation/v1, not a signature" {
			t.Errorf("tlog %s: reason %q, want the attestation reason", tlog, reason)
		}
	}
}

// TestChainAnnotationIgnored checks the legacy conversion's documented
// choice: intermediates come from the trusted root, never from the
// unsigned dev.sigstore.cosign/chain annotation, so a chain annotation
// naming another CA changes nothing, and removing it changes nothing.
func TestChainAnnotationIgnored(t *testing.T) {
	t.Parallel()
	payload, ann := legacyFixture(t, "legacy-keyless-containers-image-fulcio-rekor")
	sc := keylessTestCheck(t, &policy.Keyless{Issuer: "https://github.com/login/oauth", Subject: "mitr@redhat.com"}, policy.TLogRequired)
	for name, chain := range map[string]string{"genuine": ann[annotationChain], "none": "", "garbage": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		a := cloneMap(ann)
		a[annotationChain] = chain
		c := &candidate{}
		prepareLegacy(c, payload, a, fixtureImage)
		if c.reject != "" {
			t.Fatalf("%s chain: rejected: %s", name, c.reject)
		}
		if _, reason, err := sc.verify(c, fixtureImage); reason != "" {
			t.Errorf("%s chain: %s (%v)", name, reason, err)
		}
	}
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// FuzzLegacyKeyless feeds arbitrary payloads and keyless layer
// annotations (signature, certificate, Rekor bundle, timestamp) to the
// legacy conversion and the keyless check for fixture A's signer,
// against the genuine root. Nothing may panic, and anything that
// verifies must carry fixture A's own payload, signature and
// certificate: only Fulcio, Rekor and that key could have made it.
func FuzzLegacyKeyless(f *testing.F) {
	payload, ann := legacyFixture(f, "legacy-keyless-containers-image-fulcio-rekor")
	f.Add(payload, ann[annotationSignature], ann[annotationCertificate], ann[annotationRekorBundle], "")
	f.Add(payload, ann[annotationSignature], ann[annotationCertificate], "", `{"SignedRFC3161Timestamp":"AAAA"}`)
	f.Add([]byte(`{"critical":{"image":{"docker-manifest-digest":"`+fixtureImage.String()+`"},"type":"cosign container image signature"}}`),
		"AAAA", ann[annotationCertificate], `{"SignedEntryTimestamp":"AAAA","Payload":{"body":"e30=","logID":"00","integratedTime":1,"logIndex":1}}`, "")
	sc := keylessTestCheck(f, &policy.Keyless{Issuer: "https://github.com/login/oauth", SubjectRegExp: ".*"}, policy.TLogOptional)
	genuinePayload := payload
	genuineSig, _ := base64.StdEncoding.DecodeString(ann[annotationSignature])
	genuineCert := certDER(ann[annotationCertificate])
	f.Fuzz(func(t *testing.T, payload []byte, sig, cert, rekor, ts string) {
		a := map[string]string{
			annotationSignature:   sig,
			annotationCertificate: cert,
			annotationRekorBundle: rekor,
			annotationTimestamp:   ts,
		}
		c := &candidate{}
		prepareLegacy(c, payload, a, fixtureImage)
		if c.reject != "" {
			return
		}
		got, reason, _ := sc.verify(c, fixtureImage)
		if reason != "" {
			return
		}
		s, _ := base64.StdEncoding.DecodeString(sig)
		if !bytes.Equal(payload, genuinePayload) || !bytes.Equal(s, genuineSig) || !bytes.Equal(certDER(cert), genuineCert) {
			t.Fatalf("fuzzed keyless signature verified (%+v): payload %q, annotations %v", got, payload, a)
		}
	})
}

func certDER(p string) []byte {
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		return nil
	}
	if _, err := x509.ParseCertificate(b.Bytes); err != nil {
		return nil
	}
	return b.Bytes
}
