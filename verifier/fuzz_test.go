package verifier

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

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

// fuzzConditions are evaluated over every fuzzed statement that parses:
// field access on any shape, comprehensions, timestamps, strings.
var fuzzConditions = []string{
	`predicateType.startsWith("https://")`,
	`subject.exists(s, s.digest.sha256 == "` + fixtureImage.Encoded() + `")`,
	`predicate.builder.id == "x"`,
	`has(predicate.a) && predicate.a.all(x, x > 1)`,
	`now - timestamp(predicate.metadata.scanFinishedOn) < duration("168h")`,
	`predicate.?scanner.result.orValue({}).size() >= 0`,
	`string(predicate).size() > 0`,
}

// FuzzStatementCondition feeds arbitrary DSSE payloads to the strict
// statement parser and every parsed statement to CEL conditions. It
// must never panic or hang; a statement that parses must be valid JSON
// naming the digest, with a predicate type; every evaluation must end
// in a bool or an error.
func FuzzStatementCondition(f *testing.F) {
	f.Add([]byte(readFixture(f, filepath.Join("newbundle-keyless-dsse-attestation-cosign-testdata", "dsse-payload.intoto.json"))))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"p","subject":[{"digest":{"sha256":"` + fixtureImage.Encoded() + `"}}],"predicate":{"a":[1,2,1e999],"builder":{"id":"x"},"metadata":{"scanFinishedOn":"2026-01-01T00:00:00Z"}}}`))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"p","subject":[{"digest":{"sha256":"` + fixtureImage.Encoded() + `"}}],"predicate":{"a":1,"a":2}}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	conds := make([]*policy.Condition, len(fuzzConditions))
	for i, c := range fuzzConditions {
		conds[i] = policy.MustCompileCondition(c)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, payload []byte) {
		st, err := parseStatement(payload, fixtureImage)
		if err != nil {
			return
		}
		if !json.Valid(payload) || st.predicateType == "" || len(st.subject) == 0 {
			t.Fatalf("accepted %q as %+v", payload, st)
		}
		for _, c := range conds {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			_, _ = c.Eval(ctx, policy.ConditionInput{PredicateType: st.predicateType, Subject: st.subject, Predicate: st.predicate, Now: now})
			cancel()
		}
	})
}

// FuzzPrepareEnvelope feeds arbitrary .att layer blobs and annotations
// to the DSSE envelope conversion and verification: nothing may panic,
// and nothing may verify (no fuzzed envelope is signed by the fuzz key).
func FuzzPrepareEnvelope(f *testing.F) {
	att := readFixture(f, filepath.Join("legacy-keyless-slsa-provenance-attestation-slsa-verifier-v2.1.0", "oci-layout", "blobs", "sha256",
		"e163b472f2e5d66e5a2a45e26e020c51a0d2da7dc8b567b31fc2ebfd33dbc33a"))
	f.Add(att, "", "")
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AAAA"}]}`), "", `{"SignedEntryTimestamp":"AAAA","Payload":{"body":"e30=","logID":"00"}}`)
	check := fuzzCheck(f)
	f.Fuzz(func(t *testing.T, blob []byte, cert, rekor string) {
		c := &candidate{layout: LayoutAttTag}
		prepareEnvelope(c, blob, map[string]string{annotationCertificate: cert, annotationRekorBundle: rekor}, fixtureImage)
		if c.reject != "" {
			return
		}
		if _, reason, _ := check.check(c, fixtureImage); reason == "" {
			t.Fatalf("fuzzed attestation verified: %q", blob)
		}
	})
}
