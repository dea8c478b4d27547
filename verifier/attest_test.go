package verifier_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/verifier"
	"github.com/pullgate/pullgate/verifier/verifiertest"
)

const (
	slsaV02   = "https://slsa.dev/provenance/v0.2"
	cyclonedx = "https://cyclonedx.org/bom"
	vulnV1    = "https://cosign.sigstore.dev/attestation/vuln/v1"
	builderID = "https://github.com/myorg/builder/.github/workflows/build.yml@refs/tags/v1"
)

// provenance is a small SLSA v0.2 predicate.
func provenance(builder string) map[string]any {
	return map[string]any{
		"builder":    map[string]any{"id": builder},
		"buildType":  "https://github.com/slsa-framework/slsa-github-generator/container@v1",
		"invocation": map[string]any{"configSource": map[string]any{"uri": "git+https://github.com/myorg/app@refs/heads/main"}},
	}
}

// attestation is a requirement as policy.Parse builds it.
func attestation(predicateType, condition string, signers ...*policy.Signer) *policy.Attestation {
	a := &policy.Attestation{PredicateType: predicateType, Signers: signers, Condition: condition}
	if condition != "" {
		a.Program = policy.MustCompileCondition(condition)
	}
	return a
}

// attRule is rule "apps" over signers with signature threshold
// threshold and the requirements.
func attRule(threshold int, signers []*policy.Signer, reqs ...*policy.Attestation) *policy.Rule {
	r := keyRule(threshold, signers...)
	r.Attestations = reqs
	return r
}

// attLayout is where a test attestation is stored.
type attLayout string

const (
	attTag     attLayout = "att-tag"
	attRefAPI  attLayout = "referrers-api"
	attRefTag  attLayout = "referrers-tag"
	builderCEL           = `predicate.builder.id == "` + builderID + `"`
)

var allAttLayouts = []attLayout{attTag, attRefAPI, attRefTag}

// attest writes a key-signed attestation of e.desc in layout l, as
// cosign v2 (.att) or v3 (bundle referrer) writes it.
func attest(t *testing.T, e *env, l attLayout, key *verifiertest.Key, predicateType string, predicate map[string]any) {
	t.Helper()
	if l == attTag {
		must(t, verifiertest.AttestLegacy(t.Context(), e.u.repo, e.desc.Digest, key, predicateType, predicate))
		return
	}
	must(t, verifiertest.SignBundleWithPredicate(t.Context(), e.u.repo, e.desc, key, predicateType, predicate))
}

// artifactOf returns the digest of the manifest that carries e.desc's
// attestations in l (the .att image, or the only referrer).
func artifactOf(t *testing.T, e *env, l attLayout) digest.Digest {
	t.Helper()
	if l == attTag {
		d, err := remote.Head(verifiertest.AttTag(e.u.repo, e.desc.Digest), remote.WithContext(t.Context()))
		must(t, err)
		return digest.Digest(d.Digest.String())
	}
	return e.referrerArtifact(t)
}

// TestVerifyAttestationLayouts verifies a key-signed SLSA provenance
// attestation in each layout cosign writes, with and without a
// signature requirement, and checks the evidence names the requirement
// it satisfied.
func TestVerifyAttestationLayouts(t *testing.T) {
	t.Parallel()
	for _, l := range allAttLayouts {
		t.Run(string(l), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, l == attRefAPI)
			attest(t, e, l, e.a, slsaV02, provenance(builderID))
			a := e.a.PolicySigner("a")
			want := verifier.Evidence{
				Signer: "a", Layout: verifier.Layout(l), Artifact: artifactOf(t, e, l),
				PredicateType: slsaV02, Requirement: slsaV02, Condition: builderCEL, LogIndex: -1,
			}
			got, err := newVerifier(t).Verify(t.Context(), e.u.src, e.img(), attRule(0, []*policy.Signer{a}, attestation(slsaV02, builderCEL)))
			must(t, err)
			if diff := cmp.Diff(&verifier.Verdict{Image: e.img(), Policy: "apps", Allowed: true, Evidence: []verifier.Evidence{want}}, got); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}

			// With a signature requirement too: the attestation is no
			// signature (cosign never treats one as a signature).
			got, err = newVerifier(t).Verify(t.Context(), e.u.src, e.img(), attRule(1, []*policy.Signer{a}, attestation(slsaV02, builderCEL)))
			must(t, err)
			if got.Allowed || !slices.Contains(got.Evidence, want) {
				t.Errorf("signature and attestation required, only attested: %+v", got)
			}
			must(t, verifiertest.SignBundle(t.Context(), e.u.repo, e.desc, e.a))
			got, err = newVerifier(t).Verify(t.Context(), e.u.src, e.img(), attRule(1, []*policy.Signer{a}, attestation(slsaV02, builderCEL)))
			must(t, err)
			if !got.Allowed || len(got.Evidence) != 2 || got.Evidence[0].Requirement != "" || got.Evidence[1].Requirement != slsaV02 {
				t.Errorf("signed and attested: %+v", got)
			}
		})
	}
}

// TestVerifyAttestationShorthands parses a policy for each cosign
// predicate shorthand and verifies an attestation of the URI it names
// (accepted) and of another type (denied).
func TestVerifyAttestationShorthands(t *testing.T) {
	t.Parallel()
	key := testKey(t, verifiertest.ECDSAP256, 0)
	for _, tt := range []struct{ short, uri string }{
		{"slsaprovenance", "https://slsa.dev/provenance/v0.2"},
		{"slsaprovenance02", "https://slsa.dev/provenance/v0.2"},
		{"slsaprovenance1", "https://slsa.dev/provenance/v1"},
		{"cyclonedx", "https://cyclonedx.org/bom"},
		{"spdx", "https://spdx.dev/Document"},
		{"spdxjson", "https://spdx.dev/Document"},
		{"vuln", "https://cosign.sigstore.dev/attestation/vuln/v1"},
		{"openvex", "https://openvex.dev/ns"},
		{"custom", "https://cosign.sigstore.dev/attestation/v1"},
		{"link", "https://in-toto.io/Link/v1"},
	} {
		t.Run(tt.short, func(t *testing.T) {
			t.Parallel()
			cfg, err := policy.Parse("/etc/pullgate/pullgate.yaml", strings.NewReader(`upstreams:
  - registry: registry.example.com
    endpoint: https://registry.example.com
policies:
  - name: apps
    images: [registry.example.com/apps/web]
    signers:
      - name: a
        key: {path: a.pub}
    signatures: {threshold: 0}
    attestations:
      - predicateType: `+tt.short+`
        condition: predicateType == "`+tt.uri+`"
`), policy.WithReadFile(func(string) ([]byte, error) { return key.PublicPEM, nil }))
			must(t, err)
			rule := cfg.Policies[0]
			if got := rule.Attestations[0].PredicateType; got != tt.uri {
				t.Fatalf("%s expands to %s, want %s", tt.short, got, tt.uri)
			}
			e := newEnv(t, false)
			other := "https://example.com/other/v1"
			must(t, verifiertest.AttestLegacy(t.Context(), e.u.repo, e.desc.Digest, key, other, nil))
			got, err := newVerifier(t).Verify(t.Context(), e.u.src, e.img(), rule)
			must(t, err)
			if want := []string{"no attestation of type " + tt.uri + " found (found: " + other + ")"}; got.Allowed || !cmp.Equal(want, got.Reasons) {
				t.Errorf("other type only: allowed=%v reasons=%q, want %q", got.Allowed, got.Reasons, want)
			}
			must(t, verifiertest.AttestLegacy(t.Context(), e.u.repo, e.desc.Digest, key, tt.uri, nil))
			got, err = newVerifier(t).Verify(t.Context(), e.u.src, e.img(), rule)
			must(t, err)
			if !got.Allowed || len(got.Evidence) != 1 || got.Evidence[0].Requirement != tt.uri {
				t.Errorf("attested %s: %+v", tt.uri, got)
			}
		})
	}
}

// TestVerifyAttestationDenials covers conditions (true, false,
// erroring), subjects, signers, limits and malformed statements, in
// every layout where it applies.
func TestVerifyAttestationDenials(t *testing.T) {
	t.Parallel()
	const vulnCEL = `now - timestamp(predicate.metadata.scanFinishedOn) < duration("168h") && ` +
		`predicate.scanner.result.vulnerabilities.all(v, v.severity != "CRITICAL")`
	vuln := func(finished time.Time, severities ...string) map[string]any {
		vs := []any{}
		for i, s := range severities {
			vs = append(vs, map[string]any{"id": fmt.Sprintf("CVE-2026-%04d", i), "severity": s})
		}
		return map[string]any{
			"scanner":  map[string]any{"uri": "pkg:github/aquasecurity/trivy@v0.60.0", "result": map[string]any{"vulnerabilities": vs}},
			"metadata": map[string]any{"scanStartedOn": finished.Add(-time.Minute).Format(time.RFC3339), "scanFinishedOn": finished.Format(time.RFC3339)},
		}
	}
	type tcase struct {
		name    string
		layouts []attLayout // nil: all
		setup   func(t *testing.T, e *env, l attLayout)
		limits  policy.Limits
		reqs    func(e *env) []*policy.Attestation
		allowed bool
		reasons func(e *env) []string
	}
	a := func(e *env) *policy.Signer { return e.a.PolicySigner("a") }
	tests := []tcase{{
		name: "condition true",
		setup: func(t *testing.T, e *env, l attLayout) {
			attest(t, e, l, e.a, vulnV1, vuln(epoch.Add(-48*time.Hour), "HIGH", "LOW"))
		},
		reqs:    func(e *env) []*policy.Attestation { return []*policy.Attestation{attestation(vulnV1, vulnCEL)} },
		allowed: true,
	}, {
		name: "condition false: too old",
		setup: func(t *testing.T, e *env, l attLayout) {
			attest(t, e, l, e.a, vulnV1, vuln(epoch.Add(-8*24*time.Hour), "LOW"))
		},
		reqs: func(e *env) []*policy.Attestation { return []*policy.Attestation{attestation(vulnV1, vulnCEL)} },
		reasons: func(e *env) []string {
			return []string{"attestation " + vulnV1 + " fails its condition " + vulnCEL + ": false"}
		},
	}, {
		name:  "condition false: critical finding",
		setup: func(t *testing.T, e *env, l attLayout) { attest(t, e, l, e.a, vulnV1, vuln(epoch, "LOW", "CRITICAL")) },
		reqs:  func(e *env) []*policy.Attestation { return []*policy.Attestation{attestation(vulnV1, vulnCEL)} },
		reasons: func(e *env) []string {
			return []string{"attestation " + vulnV1 + " fails its condition " + vulnCEL + ": false"}
		},
	}, {
		name:  "condition errors",
		setup: func(t *testing.T, e *env, l attLayout) { attest(t, e, l, e.a, slsaV02, provenance(builderID)) },
		reqs: func(e *env) []*policy.Attestation {
			return []*policy.Attestation{attestation(slsaV02, `predicate.materials[0].uri.startsWith("git+")`)}
		},
		reasons: func(e *env) []string {
			return []string{"attestation " + slsaV02 + ` fails its condition predicate.materials[0].uri.startsWith("git+"): error: no such key: materials`}
		},
	}, {
		name: "one statement of two satisfies",
		setup: func(t *testing.T, e *env, l attLayout) {
			attest(t, e, l, e.a, slsaV02, provenance("https://evil.example.com/builder"))
			attest(t, e, l, e.a, slsaV02, provenance(builderID))
		},
		reqs:    func(e *env) []*policy.Attestation { return []*policy.Attestation{attestation(slsaV02, builderCEL)} },
		allowed: true,
	}, {
		name: "two statements fail differently",
		setup: func(t *testing.T, e *env, l attLayout) {
			attest(t, e, l, e.a, slsaV02, provenance("https://evil.example.com/builder"))
			attest(t, e, l, e.a, slsaV02, map[string]any{"builder": "not an object"})
		},
		reqs: func(e *env) []*policy.Attestation { return []*policy.Attestation{attestation(slsaV02, builderCEL)} },
		// Referrers are read in digest order, which differs from run to
		// run: the outcomes are tallied in that order.
		reasons: func(e *env) []string {
			return []string{"attestation " + slsaV02 + " fails its condition " + builderCEL + ": 2 statements: 1 false; 1 error: no such key: id|" +
				"attestation " + slsaV02 + " fails its condition " + builderCEL + ": 2 statements: 1 error: no such key: id; 1 false"}
		},
	}, {
		name: "missing",
		setup: func(t *testing.T, e *env, l attLayout) {
			attest(t, e, l, e.a, cyclonedx, map[string]any{"bomFormat": "CycloneDX"})
		},
		reqs: func(e *env) []*policy.Attestation {
			return []*policy.Attestation{attestation(slsaV02, ""), attestation(cyclonedx, `predicate.bomFormat == "CycloneDX"`)}
		},
		reasons: func(e *env) []string {
			return []string{"no attestation of type " + slsaV02 + " found (found: " + cyclonedx + ")"}
		},
	}, {
		name:  "signer not listed",
		setup: func(t *testing.T, e *env, l attLayout) { attest(t, e, l, e.b, slsaV02, provenance(builderID)) },
		reqs: func(e *env) []*policy.Attestation {
			return []*policy.Attestation{attestation(slsaV02, builderCEL, a(e))}
		},
		reasons: func(e *env) []string {
			return []string{`no valid attestation of type ` + slsaV02 + ` from signer "a" (1 attestation found: signed by another key)`}
		},
	}, {
		name:    "subject mismatch",
		layouts: []attLayout{attTag},
		setup: func(t *testing.T, e *env, l attLayout) {
			stmt := verifiertest.LegacyStatement(e.u.repo, e.other.Digest, slsaV02, provenance(builderID))
			env, err := e.a.DSSEEnvelope(stmt)
			must(t, err)
			must(t, verifiertest.WriteAttestationLayer(t.Context(), e.u.repo, e.desc.Digest, env, verifiertest.AttestationAnnotations(slsaV02)))
		},
		reqs: func(e *env) []*policy.Attestation { return []*policy.Attestation{attestation(slsaV02, "")} },
		reasons: func(e *env) []string {
			return []string{`no valid attestation of type ` + slsaV02 + ` from signer "a" (1 attestation found: attestation statement does not name ` + e.desc.Digest.String() + `)`}
		},
	}, {
		name:    "subject mismatch in a bundle",
		layouts: []attLayout{attRefAPI, attRefTag},
		setup: func(t *testing.T, e *env, l attLayout) {
			stmt, err := verifiertest.Statement(e.other.Digest, slsaV02, provenance(builderID))
			must(t, err)
			must(t, verifiertest.SignBundleStatement(t.Context(), e.u.repo, e.desc, e.a, stmt))
		},
		reqs: func(e *env) []*policy.Attestation { return []*policy.Attestation{attestation(slsaV02, "")} },
		reasons: func(e *env) []string {
			return []string{`no valid attestation of type ` + slsaV02 + ` from signer "a" (1 attestation found: bundle statement does not name ` + e.desc.Digest.String() + `)`}
		},
	}, {
		name:    "predicate type from the statement, not the annotation",
		layouts: []attLayout{attTag},
		setup: func(t *testing.T, e *env, l attLayout) {
			env, err := e.a.DSSEEnvelope(verifiertest.LegacyStatement(e.u.repo, e.desc.Digest, cyclonedx, nil))
			must(t, err)
			must(t, verifiertest.WriteAttestationLayer(t.Context(), e.u.repo, e.desc.Digest, env, verifiertest.AttestationAnnotations(slsaV02)))
		},
		reqs: func(e *env) []*policy.Attestation { return []*policy.Attestation{attestation(slsaV02, "")} },
		reasons: func(e *env) []string {
			return []string{"no attestation of type " + slsaV02 + " found (found: " + cyclonedx + ")"}
		},
	}, {
		name:    "two DSSE signatures",
		layouts: []attLayout{attTag},
		setup: func(t *testing.T, e *env, l attLayout) {
			stmt := verifiertest.LegacyStatement(e.u.repo, e.desc.Digest, slsaV02, nil)
			pae := verifiertest.PAE(verifiertest.MediaTypeInToto, stmt)
			s1, err := e.a.LegacySignature(pae)
			must(t, err)
			s2, err := e.b.LegacySignature(pae)
			must(t, err)
			must(t, verifiertest.WriteAttestationLayer(t.Context(), e.u.repo, e.desc.Digest, verifiertest.Envelope(stmt, s1, s2), verifiertest.AttestationAnnotations(slsaV02)))
		},
		reqs: func(e *env) []*policy.Attestation { return []*policy.Attestation{attestation(slsaV02, "")} },
		reasons: func(e *env) []string {
			return []string{`no valid attestation of type ` + slsaV02 + ` from signer "a" (1 attestation found: DSSE envelope must have exactly one signature)`}
		},
	}, {
		name:    "duplicate keys in the statement",
		layouts: []attLayout{attTag},
		setup: func(t *testing.T, e *env, l attLayout) {
			stmt := verifiertest.LegacyStatement(e.u.repo, e.desc.Digest, slsaV02, provenance(builderID))
			stmt = bytes.Replace(stmt, []byte(`"predicate":{`), []byte(`"predicate":{"builder":{"id":"x"},`), 1)
			env, err := e.a.DSSEEnvelope(stmt)
			must(t, err)
			must(t, verifiertest.WriteAttestationLayer(t.Context(), e.u.repo, e.desc.Digest, env, verifiertest.AttestationAnnotations(slsaV02)))
		},
		reqs: func(e *env) []*policy.Attestation { return []*policy.Attestation{attestation(slsaV02, builderCEL)} },
		reasons: func(e *env) []string {
			return []string{`no valid attestation of type ` + slsaV02 + ` from signer "a" (1 attestation found: statement has the key "builder" twice in one object)`}
		},
	}, {
		name:    "oversize",
		layouts: []attLayout{attTag},
		setup: func(t *testing.T, e *env, l attLayout) {
			attest(t, e, l, e.a, slsaV02, provenance(strings.Repeat("x", 4096)))
		},
		limits: policy.Limits{MaxSignatureBytes: 4096},
		reqs:   func(e *env) []*policy.Attestation { return []*policy.Attestation{attestation(slsaV02, "")} },
		reasons: func(e *env) []string {
			return []string{`no valid attestation of type ` + slsaV02 + ` from signer "a" (1 attestation found: attestation envelope is larger than 4096 bytes)`}
		},
	}, {
		name:    "oversize bundle",
		layouts: []attLayout{attRefAPI, attRefTag},
		setup: func(t *testing.T, e *env, l attLayout) {
			attest(t, e, l, e.a, slsaV02, provenance(strings.Repeat("x", 4096)))
		},
		limits: policy.Limits{MaxSignatureBytes: 4096},
		reqs:   func(e *env) []*policy.Attestation { return []*policy.Attestation{attestation(slsaV02, "")} },
		reasons: func(e *env) []string {
			return []string{`no valid attestation of type ` + slsaV02 + ` from signer "a" (1 attestation found: bundle is larger than 4096 bytes)`}
		},
	}, {
		name:    "too many",
		layouts: []attLayout{attTag},
		setup: func(t *testing.T, e *env, l attLayout) {
			for range 3 {
				attest(t, e, l, e.a, cyclonedx, nil)
			}
			attest(t, e, l, e.a, slsaV02, provenance(builderID))
		},
		limits: policy.Limits{MaxSignatures: 3},
		reqs:   func(e *env) []*policy.Attestation { return []*policy.Attestation{attestation(slsaV02, "")} },
		reasons: func(e *env) []string {
			return []string{
				"no attestation of type " + slsaV02 + " found (found: " + cyclonedx + ")",
				"sha256-" + e.desc.Digest.Hex + ".att has 4 attestations; only the first 3 were read",
			}
		},
	}, {
		name:    "too many referrers",
		layouts: []attLayout{attRefAPI, attRefTag},
		setup: func(t *testing.T, e *env, l attLayout) {
			for range 4 {
				attest(t, e, l, e.a, cyclonedx, nil)
			}
		},
		limits: policy.Limits{MaxSignatures: 3},
		reqs:   func(e *env) []*policy.Attestation { return []*policy.Attestation{attestation(cyclonedx, "")} },
		// The first 3 (by digest) are read, and satisfy the requirement.
		allowed: true,
	}}
	for _, tt := range tests {
		layouts := tt.layouts
		if layouts == nil {
			layouts = allAttLayouts
		}
		for _, l := range layouts {
			t.Run(tt.name+"/"+string(l), func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, l == attRefAPI)
				tt.setup(t, e, l)
				signers := []*policy.Signer{e.a.PolicySigner("a"), e.b.PolicySigner("b")}
				reqs := tt.reqs(e)
				for _, r := range reqs {
					if len(r.Signers) == 0 {
						r.Signers = signers[:1]
					}
				}
				v := newVerifier(t, verifier.WithLimits(tt.limits))
				got, err := v.Verify(t.Context(), e.u.src, e.img(), attRule(0, signers, reqs...))
				must(t, err)
				var want []string
				if tt.reasons != nil {
					want = tt.reasons(e)
				}
				if len(want) == 1 && len(got.Reasons) == 1 && strings.Contains(want[0], "|") {
					if alts := strings.Split(want[0], "|"); slices.Contains(alts, got.Reasons[0]) {
						want = got.Reasons
					}
				}
				if got.Allowed != tt.allowed || !cmp.Equal(want, got.Reasons, cmpopts.EquateEmpty()) {
					t.Errorf("allowed=%v reasons:\n  %s\nwant allowed=%v reasons:\n  %s", got.Allowed, strings.Join(got.Reasons, "\n  "), tt.allowed, strings.Join(want, "\n  "))
				}
				if tt.allowed && (len(got.Evidence) == 0 || got.Evidence[0].Requirement == "") {
					t.Errorf("allowed without attestation evidence: %+v", got.Evidence)
				}
			})
		}
	}
}

// TestVerifyAttestationKeyless verifies keyless attestations from the
// virtual Sigstore in every layout: accepted under the signer's
// identity, denied under another, and (legacy .att) with a Rekor intoto
// v0.0.1 entry, which sigstore-go cannot verify.
func TestVerifyAttestationKeyless(t *testing.T) {
	t.Parallel()
	req := func(sg *policy.Signer) *policy.Attestation { return attestation(slsaV02, builderCEL, sg) }
	for _, l := range allStores {
		t.Run(string(l), func(t *testing.T) {
			t.Parallel()
			e := newKenv(t, l)
			if l == sigTag {
				must(t, e.ss.AttestLegacyKeyless(t.Context(), e.u.repo, e.desc.Digest, releaseID, verifiertest.KeylessOptions{}, slsaV02, provenance(builderID)))
			} else {
				must(t, e.ss.SignBundleKeylessWithPredicate(t.Context(), e.u.repo, e.desc, releaseID, verifiertest.KeylessOptions{}, slsaV02, provenance(builderID)))
			}
			v := newVerifier(t, verifier.WithTrustedMaterial("", e.ss.TrustedRoot()), verifier.WithoutSCTsUnsafe())
			img := imageOf(e.desc)
			ci := ciSigner(policy.TLogRequired)
			got, err := v.Verify(t.Context(), e.u.src, img, attRule(0, []*policy.Signer{ci}, req(ci)))
			must(t, err)
			if !got.Allowed || len(got.Evidence) != 1 {
				t.Fatalf("keyless attestation: %+v", got)
			}
			if ev := got.Evidence[0]; ev.Identity != releaseID.Subject || ev.Issuer != verifiertest.GitHubActionsIssuer || ev.LogIndex < 0 || ev.Requirement != slsaV02 {
				t.Errorf("evidence %+v", ev)
			}
			other := ciSigner(policy.TLogRequired, func(k *policy.Keyless) { k.Extensions = map[string]string{"githubWorkflowRepository": "myorg/other"} })
			other.Name = "other"
			got, err = v.Verify(t.Context(), e.u.src, img, attRule(0, []*policy.Signer{other}, req(other)))
			must(t, err)
			want := `no valid attestation of type ` + slsaV02 + ` from signer "other" (1 attestation found: certificate identity ` + releaseID.Subject +
				` (issuer https://token.actions.githubusercontent.com) has githubWorkflowRepository myorg/app, not myorg/other)`
			if got.Allowed || !cmp.Equal([]string{want}, got.Reasons) {
				t.Errorf("another identity: allowed=%v reasons=%q\nwant %q", got.Allowed, got.Reasons, want)
			}
		})
	}
}

// TestVerifyAttestationIntotoV001 checks the documented handling of
// legacy attestations logged as Rekor intoto v0.0.1 entries (cosign
// before v2.2): the entry cannot be verified, so signers that need it
// (keyless, or tlog: required) deny naming it, and key signers with
// tlog optional or skip accept the signature without it.
func TestVerifyAttestationIntotoV001(t *testing.T) {
	t.Parallel()
	e := newKenv(t, sigTag)
	key := testKey(t, verifiertest.ECDSAP256, 0)
	o := verifiertest.KeylessOptions{IntotoV001: true}
	must(t, e.ss.AttestLegacyKeyWithLog(t.Context(), e.u.repo, e.desc.Digest, key, o, slsaV02, provenance(builderID)))
	must(t, e.ss.AttestLegacyKeyless(t.Context(), e.u.repo, e.other.Digest, releaseID, o, slsaV02, provenance(builderID)))
	v := newVerifier(t, verifier.WithTrustedMaterial("", e.ss.TrustedRoot()), verifier.WithoutSCTsUnsafe())
	const why = "no transparency log entry (its Rekor entry is of type intoto v0.0.1 (cosign before v2.2), which pullgate cannot verify)"
	for _, tt := range []struct {
		name   string
		desc   v1.Descriptor
		signer *policy.Signer
		reason string
	}{
		{"key, tlog optional", e.desc, &policy.Signer{Name: "k", Key: &policy.Key{PEM: key.PublicPEM, PublicKey: key.Public()}, TLog: policy.TLogOptional}, ""},
		{"key, tlog skip", e.desc, &policy.Signer{Name: "k", Key: &policy.Key{PEM: key.PublicPEM, PublicKey: key.Public()}, TLog: policy.TLogSkip}, ""},
		{"key, tlog required", e.desc, &policy.Signer{Name: "k", Key: &policy.Key{PEM: key.PublicPEM, PublicKey: key.Public()}, TLog: policy.TLogRequired}, why},
		{"keyless", e.other, func() *policy.Signer { s := ciSigner(policy.TLogRequired); s.Name = "k"; return s }(), why},
	} {
		got, err := v.Verify(t.Context(), e.u.src, imageOf(tt.desc), attRule(0, []*policy.Signer{tt.signer}, attestation(slsaV02, builderCEL, tt.signer)))
		must(t, err)
		switch {
		case tt.reason == "" && !got.Allowed:
			t.Errorf("%s: denied: %q", tt.name, got.Reasons)
		case tt.reason != "" && (got.Allowed || !cmp.Equal([]string{`no valid attestation of type ` + slsaV02 + ` from signer "k" (1 attestation found: ` + tt.reason + `)`}, got.Reasons)):
			t.Errorf("%s: allowed=%v reasons=%q, want the intoto reason", tt.name, got.Allowed, got.Reasons)
		}
	}
}

// TestVerifyAttestationDiscovery checks that the .att tag is read only
// for rules with attestation requirements, and that the referrers are
// read once whatever the rule needs.
func TestVerifyAttestationDiscovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, e.a))
	must(t, verifiertest.AttestLegacy(t.Context(), e.u.repo, e.desc.Digest, e.a, slsaV02, provenance(builderID)))
	must(t, verifiertest.SignBundleWithPredicate(t.Context(), e.u.repo, e.desc, e.a, cyclonedx, nil))
	a := e.a.PolicySigner("a")
	for _, tt := range []struct {
		name     string
		rule     *policy.Rule
		wantTags []string
	}{
		{"signatures only", attRule(1, []*policy.Signer{a}), []string{".sig"}},
		{"attestations only", attRule(0, []*policy.Signer{a}, attestation(slsaV02, builderCEL), attestation(cyclonedx, "")), []string{".att"}},
		{"both", attRule(1, []*policy.Signer{a}, attestation(slsaV02, builderCEL), attestation(cyclonedx, "")), []string{".att", ".sig"}},
	} {
		var mu sync.Mutex
		var refs []string
		var referrerCalls int
		src := forward(e.u.src)
		src.ManifestFunc = func(ctx context.Context, ref string, max int64) ([]byte, string, error) {
			mu.Lock()
			refs = append(refs, ref)
			mu.Unlock()
			return e.u.src.Manifest(ctx, ref, max)
		}
		src.ReferrersFunc = func(ctx context.Context, d digest.Digest, max int64) ([]byte, error) {
			mu.Lock()
			referrerCalls++
			mu.Unlock()
			return e.u.src.Referrers(ctx, d, max)
		}
		got, err := newVerifier(t).Verify(t.Context(), src, e.img(), tt.rule)
		must(t, err)
		if !got.Allowed {
			t.Errorf("%s: denied: %q", tt.name, got.Reasons)
		}
		var tags []string
		for _, r := range refs {
			if strings.HasPrefix(r, "sha256-") {
				tags = append(tags, filepath.Ext(r))
			}
		}
		slices.Sort(tags)
		if !cmp.Equal(tt.wantTags, tags) || referrerCalls != 1 {
			t.Errorf("%s: fetched tags %q and %d referrers lists; want %q and 1", tt.name, tags, referrerCalls, tt.wantTags)
		}
	}
}

// TestVerifyAttestationUnsatisfiable denies without fetching when no
// signer of a requirement can be verified.
func TestVerifyAttestationUnsatisfiable(t *testing.T) {
	t.Parallel()
	src := &verifiertest.SourceFuncs{}
	img := verifier.Image{Name: imageName, Digest: digest.FromString("x")}
	ci := ciSigner(policy.TLogRequired)
	rule := attRule(0, []*policy.Signer{ci}, attestation(slsaV02, "", ci))
	got, err := newVerifier(t).Verify(t.Context(), src, img, rule)
	must(t, err)
	want := []string{
		"attestation " + slsaV02 + ": no signer whose attestations count can be verified",
		"attestation " + slsaV02 + `: signer "ci": keyless signer needs a trusted root (set trustedRoot or tuf), and none is configured`,
	}
	if got.Allowed || !cmp.Equal(want, got.Reasons) {
		t.Errorf("allowed=%v reasons=%q, want %q", got.Allowed, got.Reasons, want)
	}
	if m, b, r := src.Calls(); m+b+r != 0 {
		t.Errorf("source calls = %d manifests, %d blobs, %d referrers; want none", m, b, r)
	}
	// A condition that does not compile (a rule built without Parse).
	k := testKey(t, verifiertest.ECDSAP256, 0).PolicySigner("a")
	got, err = newVerifier(t).Verify(t.Context(), src, img, attRule(0, []*policy.Signer{k}, &policy.Attestation{PredicateType: slsaV02, Condition: "predicate.("}))
	must(t, err)
	if got.Allowed || len(got.Reasons) != 1 || !strings.HasPrefix(got.Reasons[0], "attestation "+slsaV02+": condition does not compile: ") {
		t.Errorf("bad condition: allowed=%v reasons=%q", got.Allowed, got.Reasons)
	}
	if err := verifier.Check(&policy.Config{Policies: []*policy.Rule{attRule(0, []*policy.Signer{k}, &policy.Attestation{PredicateType: slsaV02, Condition: "predicate.("})}}); err == nil ||
		!strings.Contains(err.Error(), `attestation https://slsa.dev/provenance/v0.2 in policy "apps": condition does not compile`) {
		t.Errorf("Check = %v", err)
	}
}

// TestVerifyGenuineSLSAAttestation verifies the genuine keyless .att of
// slsa-github-generator v2.1.0 (fixture C/D: a DSSE in-toto v0.1 SLSA
// v0.2 provenance statement about an image index, public-good Fulcio
// certificate with SCT and Rekor dsse entry), offline against the
// genuine trusted root, with a condition on the builder and the source
// repository; and denies it under another identity or condition.
func TestVerifyGenuineSLSAAttestation(t *testing.T) {
	t.Parallel()
	const (
		dir       = "legacy-keyless-slsa-provenance-attestation-slsa-verifier-v2.1.0"
		generator = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0"
		cond      = `predicate.builder.id == "` + generator + `" && predicate.invocation.configSource.uri.startsWith("git+https://github.com/slsa-framework/example-package@")`
	)
	idx := digest.Digest("sha256:234e2c830c2fb31ac5671789d22adfe44d30c3ee831d01beae5e237841a13122")
	u := newUpstream(t, false)
	att := pushCosignSave(t, u, dir, idx)
	img := verifier.Image{Name: "registry.example.com/slsa/container", Digest: idx}
	v := newVerifier(t, verifier.WithTrustedMaterial("", publicGoodRoot(t, currentRoot)))
	signer := &policy.Signer{Name: "slsa", TLog: policy.TLogRequired, Keyless: &policy.Keyless{
		Issuer: verifiertest.GitHubActionsIssuer, Subject: generator,
		Extensions: map[string]string{"githubWorkflowRepository": "slsa-framework/example-package"},
	}}
	got, err := v.Verify(t.Context(), u.src, img, attRule(0, []*policy.Signer{signer}, attestation("https://slsa.dev/provenance/v0.2", cond, signer)))
	must(t, err)
	want := &verifier.Verdict{Image: img, Policy: "apps", Allowed: true, Evidence: []verifier.Evidence{{
		Signer: "slsa", Layout: verifier.LayoutAttTag, Artifact: att,
		PredicateType: slsaV02, Requirement: slsaV02, Condition: cond,
		Identity: generator, Issuer: verifiertest.GitHubActionsIssuer,
		LogIndex: 174304112, IntegratedTime: time.Date(2025, 2, 25, 21, 58, 7, 0, time.UTC),
	}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verdict (-want +got):\n%s", diff)
	}

	other := *signer
	other.Keyless = &policy.Keyless{Issuer: verifiertest.GitHubActionsIssuer, SubjectRegExp: `^https://github\.com/myorg/.*$`}
	got, err = v.Verify(t.Context(), u.src, img, attRule(0, []*policy.Signer{&other}, attestation(slsaV02, cond, &other)))
	must(t, err)
	if got.Allowed || len(got.Reasons) != 1 || !strings.Contains(got.Reasons[0], "does not match subjectRegExp ^https://github\\.com/myorg/.*$") {
		t.Errorf("another identity: allowed=%v reasons=%q", got.Allowed, got.Reasons)
	}
	wrong := `predicate.invocation.configSource.uri.startsWith("git+https://github.com/myorg/")`
	got, err = v.Verify(t.Context(), u.src, img, attRule(0, []*policy.Signer{signer}, attestation(slsaV02, wrong, signer)))
	must(t, err)
	if w := []string{"attestation " + slsaV02 + " fails its condition " + wrong + ": false"}; got.Allowed || !cmp.Equal(w, got.Reasons) {
		t.Errorf("another source repository: allowed=%v reasons=%q, want %q", got.Allowed, got.Reasons, w)
	}
}

// pushCosignSave pushes a `cosign save` OCI layout fixture: the image
// (index) by digest, and its attestation image to the .att tag of
// subject. It returns the .att manifest's digest.
func pushCosignSave(t *testing.T, u *upstream, dir string, subject digest.Digest) digest.Digest {
	t.Helper()
	readFixture(t, filepath.Join(dir, "oci-layout", "index.json"))
	p, err := layout.FromPath(filepath.Join(fixtures, dir, "oci-layout"))
	must(t, err)
	ii, err := p.ImageIndex()
	must(t, err)
	im, err := ii.IndexManifest()
	must(t, err)
	var att digest.Digest
	for _, d := range im.Manifests {
		switch d.Annotations["kind"] {
		case "dev.cosignproject.cosign/imageIndex":
			child, err := ii.ImageIndex(d.Digest)
			must(t, err)
			must(t, remote.WriteIndex(u.repo.Digest(d.Digest.String()), child, remote.WithContext(t.Context())))
		case "dev.cosignproject.cosign/atts":
			img, err := ii.Image(d.Digest)
			must(t, err)
			h, err := v1Hash(subject)
			must(t, err)
			must(t, remote.Write(verifiertest.AttTag(u.repo, h), img, remote.WithContext(t.Context())))
			att = digest.Digest(d.Digest.String())
		}
	}
	if att == "" {
		t.Fatalf("%s: no attestation image in the layout", dir)
	}
	return att
}
