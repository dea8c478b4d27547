//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The attestation policies of TestAttestations: the README's three
// examples (SLSA provenance from a builder and source repository; a
// fresh vulnerability scan without critical findings; a CycloneDX SBOM).
const (
	builderID     = "https://github.com/myorg/builder/.github/workflows/build.yml@refs/tags/v1"
	provenanceCEL = `predicate.builder.id == "` + builderID + `" && ` +
		`predicate.invocation.configSource.uri.startsWith("git+https://github.com/myorg/app@")`
	// scanCEL is written as a YAML block in the config; pullgate shows
	// it on one line.
	scanCEL = `now - timestamp(predicate.metadata.scanFinishedOn) < duration("168h") &&
  !predicate.scanner.result.Results.exists(r, has(r.Vulnerabilities) &&
      r.Vulnerabilities.exists(v, v.Severity == "CRITICAL"))`

	slsaType = "https://slsa.dev/provenance/v0.2"
	vulnType = "https://cosign.sigstore.dev/attestation/vuln/v1"
	bomType  = "https://cyclonedx.org/bom"
)

const attestConfig = `upstreams:
  - registry: ` + upstreamName + `
    endpoint: http://%s
defaultRegistry: ` + upstreamName + `
policies:
  - name: provenance
    images: ["` + upstreamName + `/e2e/prov/**"]
    signers:
      - name: ` + signerName + `
        key: {path: keys/release.pub}
    attestations:
      - predicateType: slsaprovenance
        condition: '` + provenanceCEL + `'
  - name: scanned
    images: ["` + upstreamName + `/e2e/scan/**"]
    signers:
      - name: ` + signerName + `
        key: {path: keys/release.pub}
    signatures: {threshold: 0}
    attestations:
      - predicateType: vuln
        condition: |
          %s
      - predicateType: cyclonedx
unmatched: deny
`

// attestFixture is what the TestAttestations cases share.
type attestFixture struct {
	bed     *testbed
	reg     *Registry
	pg      *Pullgate
	release keyPair
}

// TestAttestations attests images with the real cosign v2 (`cosign
// attest`: a DSSE layer in the sha256-<hex>.att tag) and v3 (a Sigstore
// bundle in the referrers tag) on the real docker-registry, and pulls
// them through pullgate with crane: allowed when the policy's
// conditions hold, denied with the reason when they do not.
func TestAttestations(t *testing.T) {
	bed := newTestbed(t)
	fx := &attestFixture{bed: bed, reg: bed.startRegistry(t)}
	fx.release = bed.cosign2.generateKeyPair(t, "release")
	fx.pg = bed.startPullgate(t, fmt.Sprintf(attestConfig, fx.reg.Addr, strings.ReplaceAll(scanCEL, "\n", "\n          ")), map[string][]byte{
		"keys/release.pub": fx.release.PubPEM,
	})
	good := provenancePredicate(builderID)
	evil := provenancePredicate("https://github.com/evil/builder/.github/workflows/build.yml@refs/tags/v1")
	badProvenance := "attestation " + slsaType + " fails its condition " + provenanceCEL + ": false"

	for _, c := range []*cosign{bed.cosign2, bed.cosign3} {
		layout := "att-tag"
		if c.v3() {
			layout = "referrers-tag" // distribution 2.8 has no referrers API
		}
		v := "v" + c.version[1:2]
		t.Run("cosign "+c.version+" provenance holds", func(t *testing.T) {
			t.Parallel()
			repo := "e2e/prov/" + v + "-ok"
			dgst := fx.pushSignedAttested(t, c, repo, "slsaprovenance", good)
			fx.pullAllowed(t, repo+":v1", dgst)
			d := fx.pg.WaitDecision(t, fx.image(repo), dgst)
			t.Logf("decision log: %s", d.Raw)
			if d.Verdict != "allow" || !d.hasEvidenceFrom(layout) {
				t.Errorf("decision = %s, want allow with evidence from %s", d.Raw, layout)
			}
			if c.v3() {
				return
			}
			// pullgate verify names the requirement the statement satisfied.
			out, code := bed.run(t, nil, bed.tools.pullgate, "verify", "--config", fx.pg.Config, fx.image(repo)+"@"+dgst)
			t.Logf("pullgate verify:\n%s", out)
			want := `evidence:  signer "` + signerName + `" via att-tag`
			if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, "predicateType "+slsaType+" satisfies attestation "+slsaType+" (condition "+provenanceCEL+")") {
				t.Errorf("pullgate verify: exit %d, want 0 and the attestation evidence", code)
			}
		})

		t.Run("cosign "+c.version+" provenance from another builder", func(t *testing.T) {
			t.Parallel()
			repo := "e2e/prov/" + v + "-evil"
			dgst := fx.pushSignedAttested(t, c, repo, "slsaprovenance", evil)
			fx.pullDenied(t, repo+":v1", dgst, "provenance", badProvenance)
		})
	}

	t.Run("signed without provenance", func(t *testing.T) {
		t.Parallel()
		repo := "e2e/prov/unattested"
		dgst := bed.pushImage(t, fx.reg.Ref(repo+":v1"))
		bed.cosign3.sign(t, fx.release, fx.reg.Ref(repo+"@"+dgst))
		// cosign v3's signature is a DSSE statement too: the denial says
		// which types were found.
		fx.pullDenied(t, repo+":v1", dgst, "provenance",
			"no attestation of type "+slsaType+" found (found: https://sigstore.dev/cosign/sign/v1)")
	})

	t.Run("fresh scan without critical findings and an SBOM", func(t *testing.T) {
		t.Parallel()
		repo := "e2e/scan/clean"
		dgst := bed.pushImage(t, fx.reg.Ref(repo+":v1"))
		bed.cosign3.attest(t, fx.release, fx.reg.Ref(repo+"@"+dgst), "vuln", vulnPredicate(time.Now().Add(-time.Hour), "HIGH", "LOW"))
		bed.cosign2.attest(t, fx.release, fx.reg.Ref(repo+"@"+dgst), "cyclonedx", bomPredicate())
		fx.pullAllowed(t, repo+":v1", dgst)
		d := fx.pg.WaitDecision(t, fx.image(repo), dgst)
		t.Logf("decision log: %s", d.Raw)
		if d.Verdict != "allow" || !d.hasEvidenceFrom("referrers-tag") || !d.hasEvidenceFrom("att-tag") {
			t.Errorf("decision = %s, want allow with the scan (referrers-tag) and the SBOM (att-tag)", d.Raw)
		}
	})

	t.Run("scan with a critical finding", func(t *testing.T) {
		t.Parallel()
		repo := "e2e/scan/critical"
		dgst := bed.pushImage(t, fx.reg.Ref(repo+":v1"))
		bed.cosign2.attest(t, fx.release, fx.reg.Ref(repo+"@"+dgst), "vuln", vulnPredicate(time.Now().Add(-time.Hour), "LOW", "CRITICAL"))
		bed.cosign2.attest(t, fx.release, fx.reg.Ref(repo+"@"+dgst), "cyclonedx", bomPredicate())
		fx.pullDenied(t, repo+":v1", dgst, "scanned", "attestation "+vulnType+" fails its condition "+oneLine(scanCEL)+": false")
	})

	t.Run("stale scan without SBOM", func(t *testing.T) {
		t.Parallel()
		repo := "e2e/scan/stale"
		dgst := bed.pushImage(t, fx.reg.Ref(repo+":v1"))
		bed.cosign3.attest(t, fx.release, fx.reg.Ref(repo+"@"+dgst), "vuln", vulnPredicate(time.Now().Add(-8*24*time.Hour), "LOW"))
		fx.pullDenied(t, repo+":v1", dgst, "scanned",
			"attestation "+vulnType+" fails its condition "+oneLine(scanCEL)+": false; no attestation of type "+bomType+" found (found: "+vulnType+")")
	})
}

func (fx *attestFixture) image(repo string) string { return upstreamName + "/" + repo }

// pushSignedAttested pushes a fresh image to <repo>:v1 upstream, signs
// it and attests it with predicate of type typ, all with cosign c, and
// returns its digest.
func (fx *attestFixture) pushSignedAttested(t testing.TB, c *cosign, repo, typ string, predicate []byte) string {
	t.Helper()
	dgst := fx.bed.pushImage(t, fx.reg.Ref(repo+":v1"))
	ref := fx.reg.Ref(repo + "@" + dgst)
	c.sign(t, fx.release, ref)
	c.attest(t, fx.release, ref, typ, predicate)
	return dgst
}

// pullAllowed pulls repoRef through pullgate with crane, which must
// yield manifest want and all its blobs.
func (fx *attestFixture) pullAllowed(t testing.TB, repoRef, want string) {
	t.Helper()
	pullThrough(t, fx.bed, fx.pg, repoRef, want)
}

// pullDenied pulls repoRef through pullgate with crane, which must fail
// showing pullgate's denial with exactly reasons; the decision log
// must carry the same reasons.
func (fx *attestFixture) pullDenied(t testing.TB, repoRef, dgst, policy, reasons string) {
	t.Helper()
	repo, _, _ := strings.Cut(repoRef, ":")
	denyThrough(t, fx.bed, fx.pg, repoRef, fx.image(repo), dgst, policy, reasons)
}

// pullThrough pulls repoRef through pg with `crane pull --format oci`,
// which must succeed with manifest want.
func pullThrough(t testing.TB, bed *testbed, pg *Pullgate, repoRef, want string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	if out, code := bed.crane(t, "pull", "--format", "oci", pg.Ref(repoRef), dir); code != 0 {
		t.Fatalf("crane pull %s through pullgate: exit %d, want 0:\n%s", repoRef, code, out)
	}
	if got := readOCILayout(t, dir).ManifestDigest; got != want {
		t.Errorf("crane pull %s through pullgate got manifest %s, want %s", repoRef, got, want)
	}
}

// denyThrough pulls repoRef through pg with crane, which must fail with
// `DENIED: <image>@<dgst> by policy "<policy>": <reasons>`; the
// decision log line must list the same reasons.
func denyThrough(t testing.TB, bed *testbed, pg *Pullgate, repoRef, image, dgst, policy, reasons string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	out, code := bed.crane(t, "pull", "--format", "oci", pg.Ref(repoRef), dir)
	want := fmt.Sprintf("DENIED: %s@%s by policy %q: %s", image, dgst, policy, reasons)
	if code == 0 || !strings.Contains(out, want) {
		t.Errorf("crane pull %s through pullgate: exit %d, want a failure showing\n  %s\ncrane printed:\n%s", repoRef, code, want, out)
	} else {
		t.Logf("crane pull %s was denied: %s", repoRef, want)
	}
	d := pg.WaitDecision(t, image, dgst)
	if d.Verdict != "deny" || d.Policy != policy || strings.Join(d.Reasons, "; ") != reasons {
		t.Errorf("decision = %s\nwant verdict deny, policy %q, reasons %q", d.Raw, policy, reasons)
	}
}

// hasEvidenceFrom reports whether the decision lists evidence found in
// layout, among the signatures or the attestations.
func (d Decision) hasEvidenceFrom(layout string) bool {
	if slices.Contains(d.Layouts, layout) {
		return true
	}
	return slices.ContainsFunc(d.Attestations, func(a string) bool { return strings.Contains(a, " via "+layout+" ") })
}

// oneLine is a condition as pullgate shows it: white space collapsed.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// provenancePredicate is a SLSA v0.2 provenance predicate by builder,
// built from myorg/app, as slsa-github-generator writes them.
func provenancePredicate(builder string) []byte {
	return mustJSON(map[string]any{
		"builder":   map[string]any{"id": builder},
		"buildType": "https://github.com/slsa-framework/slsa-github-generator/container@v1",
		"invocation": map[string]any{
			"configSource": map[string]any{
				"uri":        "git+https://github.com/myorg/app@refs/tags/v1.0.0",
				"digest":     map[string]any{"sha1": "4d329c75e7ec1725f7c9ce917a8799d408d06be3"},
				"entryPoint": ".github/workflows/release.yml",
			},
		},
		"metadata":  map[string]any{"buildInvocationID": "1-1", "completeness": map[string]any{"parameters": true}},
		"materials": []any{map[string]any{"uri": "git+https://github.com/myorg/app@refs/tags/v1.0.0"}},
	})
}

// vulnPredicate is cosign's vuln predicate (cosign attest --type vuln)
// holding a Trivy JSON report with one finding per severity, scanned at
// finished.
func vulnPredicate(finished time.Time, severities ...string) []byte {
	var vulns []any
	for i, s := range severities {
		vulns = append(vulns, map[string]any{"VulnerabilityID": fmt.Sprintf("CVE-2026-%04d", i+1), "PkgName": "openssl", "Severity": s})
	}
	return mustJSON(map[string]any{
		"invocation": map[string]any{"uri": "https://github.com/myorg/app/actions/runs/1", "event_id": "1", "builder.id": "github-actions"},
		"scanner": map[string]any{
			"uri":     "pkg:github/aquasecurity/trivy@v0.60.0",
			"version": "0.60.0",
			"db":      map[string]any{"uri": "pkg:github/aquasecurity/trivy-db", "version": "2"},
			"result": map[string]any{
				"SchemaVersion": 2,
				"Results":       []any{map[string]any{"Target": "app (debian 12)"}, map[string]any{"Target": "usr/lib", "Vulnerabilities": vulns}},
			},
		},
		"metadata": map[string]any{
			"scanStartedOn":  finished.Add(-time.Minute).UTC().Format(time.RFC3339),
			"scanFinishedOn": finished.UTC().Format(time.RFC3339),
		},
	})
}

// bomPredicate is a minimal CycloneDX SBOM.
func bomPredicate() []byte {
	return mustJSON(map[string]any{
		"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
		"components": []any{map[string]any{"type": "library", "name": "openssl", "version": "3.0.15"}},
	})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
