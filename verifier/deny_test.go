package verifier_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/verifier"
	"github.com/pullgate/pullgate/verifier/verifiertest"
)

// env is what a verdict test case sets up and checks against.
type env struct {
	u     *upstream
	desc  v1.Descriptor // the image being verified
	other v1.Descriptor // another image in the same repository
	a, b  *verifiertest.Key
}

func (e *env) img() verifier.Image { return imageOf(e.desc) }

func (e *env) sigArtifact(t testing.TB) digest.Digest { return e.u.sigArtifact(t, e.desc) }

func (e *env) referrerArtifact(t testing.TB) digest.Digest {
	t.Helper()
	as := e.u.referrerArtifacts(t, e.desc)
	if len(as) != 1 {
		t.Fatalf("referrers = %v, want 1", as)
	}
	return as[0]
}

func newEnv(t testing.TB, referrers bool) *env {
	t.Helper()
	u := newUpstream(t, referrers)
	return &env{
		u: u, desc: u.push(t, 1), other: u.push(t, 2),
		a: testKey(t, verifiertest.ECDSAP256, 0), b: testKey(t, verifiertest.ECDSAP256, 1),
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestVerifyVerdicts covers decisions on material written into a real
// (in-memory) registry: what counts as a signature, thresholds, and the
// wording of denials.
func TestVerifyVerdicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		referrers bool
		setup     func(t *testing.T, e *env)
		rule      func(e *env) *policy.Rule
		want      func(t *testing.T, e *env) *verifier.Verdict
	}{{
		name:  "unsigned",
		setup: func(*testing.T, *env) {},
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Reasons: []string{"no signature found (no cosign .sig tag, no Sigstore bundle among the referrers)"}}
		},
	}, {
		name: "signature of another digest copied under the tag",
		setup: func(t *testing.T, e *env) {
			payload := verifiertest.SimpleSigningPayload(e.u.repo, e.other.Digest)
			must(t, verifiertest.SignLegacyPayload(t.Context(), e.u.repo, e.desc.Digest, payload, e.a))
		},
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Reasons: []string{`no valid signature from signer "a" (1 signature found: signature payload names digest ` +
				e.other.Digest.String() + " not " + e.desc.Digest.String() + ")"}}
		},
	}, {
		name: "payload that is no cosign signature",
		setup: func(t *testing.T, e *env) {
			payload := []byte(`{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"` +
				e.desc.Digest.String() + `"},"type":"something else"},"optional":null}`)
			must(t, verifiertest.SignLegacyPayload(t.Context(), e.u.repo, e.desc.Digest, payload, e.a))
		},
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Reasons: []string{`no valid signature from signer "a" (1 signature found: signature payload type is "something else", not "cosign container image signature")`}}
		},
	}, {
		name: "signature annotation not base64",
		setup: func(t *testing.T, e *env) {
			payload := verifiertest.SimpleSigningPayload(e.u.repo, e.desc.Digest)
			must(t, verifiertest.WriteLegacyLayer(t.Context(), e.u.repo, e.desc.Digest, payload,
				map[string]string{verifiertest.AnnotationSignature: "not base64!"}))
		},
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Reasons: []string{`no valid signature from signer "a" (1 signature found: malformed legacy signature: dev.cosignproject.cosign/signature annotation is not base64)`}}
		},
	}, {
		name: "broken signature next to a valid one",
		setup: func(t *testing.T, e *env) {
			payload := verifiertest.SimpleSigningPayload(e.u.repo, e.desc.Digest)
			must(t, verifiertest.WriteLegacyLayer(t.Context(), e.u.repo, e.desc.Digest, payload,
				map[string]string{verifiertest.AnnotationSignature: base64.StdEncoding.EncodeToString([]byte("garbage"))}))
			must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.b))
			must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.a))
		},
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Allowed: true, Evidence: []verifier.Evidence{
				{Signer: "a", Layout: verifier.LayoutSigTag, Artifact: e.sigArtifact(t), LogIndex: -1},
			}}
		},
	}, {
		name: "key signature with a certificate attached (cosign sign --key --certificate)",
		setup: func(t *testing.T, e *env) {
			payload := verifiertest.SimpleSigningPayload(e.u.repo, e.desc.Digest)
			sig, err := e.a.LegacySignature(payload)
			must(t, err)
			must(t, verifiertest.WriteLegacyLayer(t.Context(), e.u.repo, e.desc.Digest, payload, map[string]string{
				verifiertest.AnnotationSignature:  base64.StdEncoding.EncodeToString(sig),
				"dev.sigstore.cosign/certificate": string(readFixture(t, "legacy-keyless-containers-image-fulcio-rekor/certificate.pem")),
			}))
		},
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Allowed: true, Evidence: []verifier.Evidence{
				{Signer: "a", Layout: verifier.LayoutSigTag, Artifact: e.sigArtifact(t), LogIndex: -1},
			}}
		},
	}, {
		name: "several failures are tallied",
		setup: func(t *testing.T, e *env) {
			must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.b))
			must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.b))
			payload := verifiertest.SimpleSigningPayload(e.u.repo, e.other.Digest)
			must(t, verifiertest.SignLegacyPayload(t.Context(), e.u.repo, e.desc.Digest, payload, e.a))
		},
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Reasons: []string{`no valid signature from signer "a" (3 signatures found: 2 signed by another key; 1 signature payload names digest ` +
				e.other.Digest.String() + " not " + e.desc.Digest.String() + ")"}}
		},
	}, {
		name:      "bundle about another digest",
		referrers: true,
		setup: func(t *testing.T, e *env) {
			stmt, err := verifiertest.Statement(e.other.Digest, verifiertest.CosignSignPredicateType, nil)
			must(t, err)
			must(t, verifiertest.SignBundleStatement(t.Context(), e.u.repo, e.desc, e.a, stmt))
		},
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Reasons: []string{`no valid signature from signer "a" (1 signature found: bundle statement does not name ` + e.desc.Digest.String() + ")"}}
		},
	}, {
		name:      "attestation is not a signature",
		referrers: true,
		setup: func(t *testing.T, e *env) {
			must(t, verifiertest.SignBundleWithPredicate(t.Context(), e.u.repo, e.desc, e.a,
				verifiertest.SLSAProvenanceV02PredicateType, map[string]any{"builder": map[string]any{"id": "x"}}))
		},
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Reasons: []string{`no valid signature from signer "a" (1 signature found: attestation of type https://slsa.dev/provenance/v0.2, not a signature)`}}
		},
	}, {
		name: "attestation next to a signature",
		setup: func(t *testing.T, e *env) {
			must(t, verifiertest.SignBundleWithPredicate(t.Context(), e.u.repo, e.desc, e.a, verifiertest.SLSAProvenanceV02PredicateType, nil))
			must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.a))
		},
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Allowed: true, Evidence: []verifier.Evidence{
				{Signer: "a", Layout: verifier.LayoutSigTag, Artifact: e.sigArtifact(t), LogIndex: -1},
			}}
		},
	}, {
		name:      "message-signature bundle",
		referrers: true,
		setup: func(t *testing.T, e *env) {
			kp, err := sign.NewEphemeralKeypair(nil)
			must(t, err)
			pb, err := sign.Bundle(&sign.PlainData{Data: []byte("hello")}, kp, sign.BundleOptions{})
			must(t, err)
			b, err := protojson.Marshal(pb)
			must(t, err)
			must(t, verifiertest.WriteBundleReferrer(t.Context(), e.u.repo, e.desc, b, ""))
		},
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Reasons: []string{`no valid signature from signer "a" (1 signature found: bundle holds a message signature, not a DSSE image signature)`}}
		},
	}, {
		name:      "bundle that is not JSON",
		referrers: true,
		setup: func(t *testing.T, e *env) {
			must(t, verifiertest.WriteBundleReferrer(t.Context(), e.u.repo, e.desc, []byte("{not json"), ""))
		},
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Reasons: []string{`no valid signature from signer "a" (1 signature found: bundle is not JSON)`}}
		},
	}, {
		name: "threshold 2 of 2 with one missing",
		setup: func(t *testing.T, e *env) {
			must(t, verifiertest.SignBundle(t.Context(), e.u.repo, e.desc, e.a))
		},
		rule: func(e *env) *policy.Rule { return keyRule(2, e.a.PolicySigner("a"), e.b.PolicySigner("b")) },
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{
				Reasons: []string{
					`1 of 2 required signers: have "a"; missing "b"`,
					`no valid signature from signer "b" (1 signature found: signed by another key)`,
				},
				Evidence: []verifier.Evidence{{
					Signer: "a", Layout: verifier.LayoutReferrersTag, Artifact: e.referrerArtifact(t),
					PredicateType: verifiertest.CosignSignPredicateType, LogIndex: -1,
				}},
			}
		},
	}, {
		name: "threshold 2 of 2 across layouts",
		setup: func(t *testing.T, e *env) {
			must(t, verifiertest.SignBundle(t.Context(), e.u.repo, e.desc, e.a))
			must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.b))
		},
		rule: func(e *env) *policy.Rule { return keyRule(2, e.a.PolicySigner("a"), e.b.PolicySigner("b")) },
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Allowed: true, Evidence: []verifier.Evidence{
				{
					Signer: "a", Layout: verifier.LayoutReferrersTag, Artifact: e.referrerArtifact(t),
					PredicateType: verifiertest.CosignSignPredicateType, LogIndex: -1,
				},
				{Signer: "b", Layout: verifier.LayoutSigTag, Artifact: e.sigArtifact(t), LogIndex: -1},
			}}
		},
	}, {
		name: "threshold 1 of 2 signers, neither signed",
		setup: func(t *testing.T, e *env) {
			other := testKey(t, verifiertest.ECDSAP256, 2)
			must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, other))
		},
		rule: func(e *env) *policy.Rule { return keyRule(1, e.a.PolicySigner("a"), e.b.PolicySigner("b")) },
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Reasons: []string{
				`0 of 1 required signers: missing "a", "b"`,
				`no valid signature from signer "a" (1 signature found: signed by another key)`,
				`no valid signature from signer "b" (1 signature found: signed by another key)`,
			}}
		},
	}, {
		name: "signers sharing a key count once",
		setup: func(t *testing.T, e *env) {
			must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.a))
		},
		rule: func(e *env) *policy.Rule { return keyRule(2, e.a.PolicySigner("a"), e.a.PolicySigner("a-again")) },
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Reasons: []string{
				"2 distinct signer(s) required but only 1 can be verified",
				`signers "a", "a-again" share one key and count once`,
			}}
		},
	}, {
		name: "signers sharing a key next to a third signer",
		setup: func(t *testing.T, e *env) {
			must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.a))
		},
		rule: func(e *env) *policy.Rule {
			return keyRule(2, e.a.PolicySigner("a"), e.a.PolicySigner("a-again"), e.b.PolicySigner("b"))
		},
		want: func(t *testing.T, e *env) *verifier.Verdict {
			art := e.sigArtifact(t)
			return &verifier.Verdict{
				Reasons: []string{
					`1 of 2 required signers: have "a", "a-again" (signers sharing a key count once); missing "b"`,
					`no valid signature from signer "b" (1 signature found: signed by another key)`,
				},
				Evidence: []verifier.Evidence{
					{Signer: "a", Layout: verifier.LayoutSigTag, Artifact: art, LogIndex: -1},
					{Signer: "a-again", Layout: verifier.LayoutSigTag, Artifact: art, LogIndex: -1},
				},
			}
		},
	}, {
		name: "keyless signer without a trusted root",
		setup: func(t *testing.T, e *env) {
			must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.a))
		},
		rule: func(e *env) *policy.Rule {
			return keyRule(1, &policy.Signer{Name: "ci", Keyless: &policy.Keyless{Issuer: "https://issuer", Subject: "me"}, TLog: policy.TLogRequired})
		},
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Reasons: []string{
				"1 distinct signer(s) required but only 0 can be verified",
				`signer "ci": keyless signer needs a trusted root (set trustedRoot or tuf), and none is configured`,
			}}
		},
	}, {
		name: "keyless signer next to a key signer",
		setup: func(t *testing.T, e *env) {
			must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.b))
		},
		rule: func(e *env) *policy.Rule {
			return keyRule(1, &policy.Signer{Name: "ci", Keyless: &policy.Keyless{Issuer: "https://issuer", Subject: "me"}}, e.a.PolicySigner("a"))
		},
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{Reasons: []string{
				`0 of 1 required signers: missing "ci", "a"`,
				`no valid signature from signer "ci": keyless signer needs a trusted root (set trustedRoot or tuf), and none is configured`,
				`no valid signature from signer "a" (1 signature found: signed by another key)`,
			}}
		},
	}, {
		name: "signed but the required attestation is missing",
		setup: func(t *testing.T, e *env) {
			must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.a))
		},
		rule: func(e *env) *policy.Rule {
			r := keyRule(1, e.a.PolicySigner("a"))
			r.Attestations = []*policy.Attestation{{PredicateType: verifiertest.SLSAProvenanceV02PredicateType}}
			return r
		},
		want: func(t *testing.T, e *env) *verifier.Verdict {
			return &verifier.Verdict{
				Reasons: []string{`no attestation of type https://slsa.dev/provenance/v0.2 found`},
				// The signature verified: it is evidence, not enough.
				Evidence: []verifier.Evidence{{Signer: "a", Layout: verifier.LayoutSigTag, Artifact: e.u.sigArtifact(t, e.desc), LogIndex: -1}},
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.referrers)
			tt.setup(t, e)
			rule := keyRule(1, e.a.PolicySigner("a"))
			if tt.rule != nil {
				rule = tt.rule(e)
			}
			got, err := newVerifier(t).Verify(t.Context(), e.u.src, e.img(), rule)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := tt.want(t, e)
			want.Image, want.Policy = e.img(), "apps"
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}
}

// tamper returns a Source that serves src's material with fn applied to
// .sig manifests (as JSON) and blobs.
func tamper(src verifier.Source, manifest func(m map[string]any), blob func(d digest.Digest, b []byte) []byte) *verifiertest.SourceFuncs {
	return &verifiertest.SourceFuncs{
		ManifestFunc: func(ctx context.Context, ref string, maxBytes int64) ([]byte, string, error) {
			body, mt, err := src.Manifest(ctx, ref, maxBytes)
			if err != nil || manifest == nil || !strings.HasSuffix(ref, ".sig") {
				return body, mt, err
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				return nil, "", err
			}
			manifest(m)
			body, err = json.Marshal(m)
			return body, mt, err
		},
		BlobFunc: func(ctx context.Context, d digest.Digest, maxBytes int64) ([]byte, error) {
			if blob != nil {
				if b := blob(d, nil); b != nil {
					return b, nil
				}
			}
			return src.Blob(ctx, d, maxBytes)
		},
		ReferrersFunc: src.Referrers,
	}
}

func firstLayer(m map[string]any) map[string]any {
	return m["layers"].([]any)[0].(map[string]any)
}

// TestVerifyTampered serves altered legacy material: the verifier must
// check the fetched payload bytes, not the layer digest it was promised.
func TestVerifyTampered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		source func(e *env, payload []byte) verifier.Source
		reason string
	}{{
		name: "signature replaced",
		source: func(e *env, _ []byte) verifier.Source {
			return tamper(e.u.src, func(m map[string]any) {
				ann := firstLayer(m)["annotations"].(map[string]any)
				sig, _ := base64.StdEncoding.DecodeString(ann[verifiertest.AnnotationSignature].(string))
				sig[len(sig)-1] ^= 1
				ann[verifiertest.AnnotationSignature] = base64.StdEncoding.EncodeToString(sig)
			}, nil)
		},
		reason: "signed by another key",
	}, {
		name: "payload bytes replaced",
		source: func(e *env, payload []byte) verifier.Source {
			return tamper(e.u.src, nil, func(d digest.Digest, _ []byte) []byte {
				if d == digest.FromBytes(payload) {
					return []byte(strings.Replace(string(payload), "apps/web", "apps/evil", 1))
				}
				return nil
			})
		},
		reason: "signature payload blob sha256:",
	}, {
		name: "payload and layer digest replaced",
		source: func(e *env, payload []byte) verifier.Source {
			evil := []byte(strings.Replace(string(payload), "apps/web", "apps/evil", 1))
			return tamper(e.u.src, func(m map[string]any) {
				firstLayer(m)["digest"] = digest.FromBytes(evil).String()
			}, func(d digest.Digest, _ []byte) []byte {
				if d == digest.FromBytes(evil) {
					return evil
				}
				return nil
			})
		},
		reason: "signed by another key",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, false)
			must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.a))
			payload := verifiertest.SimpleSigningPayload(e.u.repo, e.desc.Digest)
			got, err := newVerifier(t).Verify(t.Context(), tt.source(e, payload), e.img(), keyRule(1, e.a.PolicySigner("a")))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Allowed || len(got.Reasons) != 1 || !strings.Contains(got.Reasons[0], tt.reason) {
				t.Errorf("verdict = %+v, want a denial with a reason containing %q", got, tt.reason)
			}
		})
	}
}
