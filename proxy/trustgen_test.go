package proxy

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/verifier"
)

// generationVerifier is a Verifier whose trust generation the test moves,
// as a reloaded trusted_root.json does.
type generationVerifier struct {
	Verifier
	gen atomic.Value // string
}

func (g *generationVerifier) Generation() string { return g.gen.Load().(string) }

// TestTrustGenerationKeysVerdicts: a verdict is reused while the trusted
// roots stay the same, and verified again once they change, so a rotated
// or revoked root never keeps serving what it allowed.
func TestTrustGenerationKeysVerdicts(t *testing.T) {
	t.Parallel()
	var gv *generationVerifier
	e := newEnv(t, envConfig{wrap: func(v Verifier) Verifier {
		gv = &generationVerifier{Verifier: v}
		gv.gen.Store("root-1")
		return gv
	}})
	f := e.push(t, "signed/web", "v1")
	e.signLegacy(t, f, e.key)
	path := manifestPath("signed/web", "v1")

	wantStatus(t, e.get(t, path), http.StatusOK)
	wantStatus(t, e.get(t, path), http.StatusOK)
	if n := e.verifies.Load(); n != 1 {
		t.Fatalf("verifications with an unchanged trust generation = %d, want 1", n)
	}
	gv.gen.Store("root-2")
	wantStatus(t, e.get(t, path), http.StatusOK)
	if n := e.verifies.Load(); n != 2 {
		t.Errorf("verifications after the trust generation changed = %d, want 2", n)
	}
	lines := e.logs.lines(t, "decision")
	if got := lines[len(lines)-1]["trustGeneration"]; got != "root-2" {
		t.Errorf("decision line trustGeneration = %v, want root-2", got)
	}
}

// TestDecisionLogEvidence: the decision line names, for each piece of
// evidence, the certificate identity and issuer, the log index and
// integrated time, the timestamp, the trusted root, and the attestation
// requirement it met.
func TestDecisionLogEvidence(t *testing.T) {
	t.Parallel()
	logged := time.Date(2023, 1, 20, 20, 51, 33, 0, time.UTC)
	e := newEnv(t, envConfig{wrap: func(Verifier) Verifier {
		return verifierFunc(func(_ context.Context, _ verifier.Source, img verifier.Image, rule *policy.Rule) (*verifier.Verdict, error) {
			return &verifier.Verdict{Image: img, Policy: rule.Name, Allowed: true, Evidence: []verifier.Evidence{
				{Signer: "ci", Layout: verifier.LayoutSigTag, Artifact: digest.FromString("sig"), Identity: "https://github.com/myorg/app/.github/workflows/release.yml@refs/tags/v1", Issuer: "https://token.actions.githubusercontent.com", LogIndex: 11605770, IntegratedTime: logged, TrustRoot: "public-good"},
				{Signer: "ci", Layout: verifier.LayoutReferrersTag, Artifact: digest.FromString("att"), PredicateType: "https://slsa.dev/provenance/v0.2", Requirement: "https://slsa.dev/provenance/v0.2", Condition: "predicate.builder.id != \"\"", LogIndex: -1},
			}}, nil
		})
	}})
	e.push(t, "signed/web", "v1")
	wantStatus(t, e.get(t, manifestPath("signed/web", "v1")), http.StatusOK)
	lines := e.logs.lines(t, "decision")
	if len(lines) != 1 {
		t.Fatalf("decision lines = %d, want 1", len(lines))
	}
	d := lines[0]
	if got, _ := d["signers"].([]any); len(got) != 1 || got[0] != "ci" {
		t.Errorf("signers = %v, want [ci] (the attestation is listed apart)", d["signers"])
	}
	if got, _ := d["attestations"].([]any); len(got) != 1 {
		t.Errorf("attestations = %v, want one entry", d["attestations"])
	}
	ev, _ := d["evidence"].([]any)
	if len(ev) != 2 {
		t.Fatalf("evidence = %v, want 2 entries", d["evidence"])
	}
	sig, _ := ev[0].(map[string]any)
	for k, want := range map[string]any{
		"identity":       "https://github.com/myorg/app/.github/workflows/release.yml@refs/tags/v1",
		"issuer":         "https://token.actions.githubusercontent.com",
		"logIndex":       float64(11605770),
		"integratedTime": "2023-01-20T20:51:33Z",
		"trustRoot":      "public-good",
	} {
		if sig[k] != want {
			t.Errorf("signature evidence %s = %v, want %v", k, sig[k], want)
		}
	}
	att, _ := ev[1].(map[string]any)
	if att["requirement"] != "https://slsa.dev/provenance/v0.2" || att["condition"] == nil {
		t.Errorf("attestation evidence = %v, want its requirement and condition", att)
	}
	if _, ok := att["logIndex"]; ok {
		t.Errorf("attestation evidence without a log entry has logIndex %v", att["logIndex"])
	}
}
