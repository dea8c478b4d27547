//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Genuine public-good Sigstore fixtures (shared/fixtures, see its
// README), read in place and never copied into the repository.
const (
	fixturesRel = "../../shared/fixtures" // from e2e/, the test's working directory

	fixtureA       = "legacy-keyless-containers-image-fulcio-rekor"
	fixtureAImage  = "sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a"
	fixtureE       = "newbundle-keyless-dsse-attestation-cosign-testdata"
	fixtureEImage  = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
	fixtureERefDgt = "sha256:9c222b6e467d7e8ffaf5725196521bfdd692aa43bd9f83f392bb1fbf9a230fac"
	fixtureC       = "legacy-keyless-slsa-provenance-attestation-slsa-verifier-v2.1.0"
	fixtureCIndex  = "sha256:234e2c830c2fb31ac5671789d22adfe44d30c3ee831d01beae5e237841a13122"

	githubOAuth    = "https://github.com/login/oauth"
	githubActions  = "https://token.actions.githubusercontent.com"
	slsaGenerator  = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0"
	slsaFixtureCEL = `predicate.builder.id == "` + slsaGenerator + `" && predicate.invocation.configSource.uri.startsWith("git+https://github.com/slsa-framework/example-package@")`
	customCEL      = `predicate.Data.contains("foo") && timestamp(predicate.Timestamp) < now`
)

// fixturesConfig trusts each fixture's real signer for one repository
// and someone else for a second copy of it.
const fixturesConfig = `upstreams:
  - registry: ` + upstreamName + `
    endpoint: http://%s
defaultRegistry: ` + upstreamName + `
trustedRoot: %s
policies:
  - name: fixture-a
    images: ["` + upstreamName + `/cimg/fulcio-rekor-1"]
    signers:
      - name: mitr
        keyless: {issuer: "` + githubOAuth + `", subject: mitr@redhat.com}
  - name: fixture-a-other
    images: ["` + upstreamName + `/cimg/fulcio-rekor-other"]
    signers:
      - name: someone
        keyless: {issuer: "` + githubOAuth + `", subject: someone@example.com}
  - name: fixture-e
    images: ["` + upstreamName + `/cosign-testdata/empty-image"]
    signers:
      - name: cody
        keyless: {issuer: "` + githubOAuth + `", subject: cody@soyland.com}
    signatures: {threshold: 0}
    attestations:
      - predicateType: custom
        condition: '` + customCEL + `'
  - name: fixture-e-other
    images: ["` + upstreamName + `/cosign-testdata/empty-image-other"]
    signers:
      - name: someone
        keyless: {issuer: "` + githubOAuth + `", subject: someone@example.com}
    signatures: {threshold: 0}
    attestations:
      - predicateType: custom
  - name: slsa
    images: ["` + upstreamName + `/slsa/container"]
    signers:
      - name: slsa-generator
        keyless:
          issuer: ` + githubActions + `
          subject: ` + slsaGenerator + `
          extensions: {githubWorkflowRepository: slsa-framework/example-package}
    signatures: {threshold: 0}
    attestations:
      - predicateType: slsaprovenance
        condition: '` + slsaFixtureCEL + `'
  - name: slsa-other
    images: ["` + upstreamName + `/slsa/container-other"]
    signers:
      - name: slsa-generator
        keyless:
          issuer: ` + githubActions + `
          subjectRegExp: '^https://github\.com/myorg/.+$'
    signatures: {threshold: 0}
    attestations:
      - predicateType: slsaprovenance
        condition: '` + slsaFixtureCEL + `'
unmatched: deny
`

// TestGenuineFixtures serves the genuine keyless fixtures from the real
// docker-registry through pullgate, verified offline against the genuine
// public-good trusted root: fixture A (a legacy keyless .sig; its image
// blobs were never published, so the manifest is checked, not pulled),
// fixture E (a keyless Sigstore bundle v0.3 attestation stored as an OCI
// 1.1 referrer, complete image) and fixture C (slsa-github-generator's
// keyless SLSA provenance .att, complete image index). Each is allowed
// under its real identity and denied under another.
func TestGenuineFixtures(t *testing.T) {
	fixtures, err := filepath.Abs(fixturesRel)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"trust/trusted_root.json", fixtureA, fixtureE, fixtureC} {
		if _, err := os.Stat(filepath.Join(fixtures, f)); err != nil {
			t.Fatalf("fixture %s is missing (%v): the genuine fixtures must be at /work/shared/fixtures; this test does not skip", f, err)
		}
	}
	bed := newTestbed(t)
	reg := bed.startRegistry(t)
	pg := bed.startPullgate(t, fmt.Sprintf(fixturesConfig, reg.Addr, filepath.Join(fixtures, "trust", "trusted_root.json")), nil)
	pgVerify := func(t *testing.T, ref string) (string, int) {
		t.Helper()
		out, code := bed.run(t, nil, bed.tools.pullgate, "verify", "--config", pg.Config, ref)
		t.Logf("pullgate verify %s:\n%s", ref, out)
		return out, code
	}

	t.Run("A legacy keyless .sig", func(t *testing.T) {
		t.Parallel()
		manifest := readFile(t, filepath.Join(fixtures, fixtureA, "image-manifest.json"))
		for _, repo := range []string{"cimg/fulcio-rekor-1", "cimg/fulcio-rekor-other"} {
			reg.putManifestRaw(t, repo, manifest, "v1")
			bed.mustCrane(t, "push", filepath.Join(fixtures, fixtureA, "sig-oci-layout"), reg.Ref(repo+":sha256-"+strings.TrimPrefix(fixtureAImage, "sha256:")+".sig"))
		}
		// The image's blobs do not exist: check the manifest through pullgate.
		if got := bed.craneDigest(t, pg.Ref("cimg/fulcio-rekor-1:v1")); got != fixtureAImage {
			t.Errorf("crane digest through pullgate = %s, want %s", got, fixtureAImage)
		}
		if got := sha256Digest([]byte(bed.mustCrane(t, "manifest", pg.Ref("cimg/fulcio-rekor-1:v1")))); got != fixtureAImage {
			t.Errorf("crane manifest through pullgate hashes to %s, want %s", got, fixtureAImage)
		}
		out, code := pgVerify(t, upstreamName+"/cimg/fulcio-rekor-1:v1")
		if want := `evidence:  signer "mitr" via sig-tag`; code != 0 || !strings.Contains(out, want) ||
			!strings.Contains(out, "identity mitr@redhat.com issuer "+githubOAuth+" logIndex 11605770 integratedTime 2023-01-20T20:51:33Z") {
			t.Errorf("pullgate verify: exit %d, want 0 with the keyless evidence", code)
		}

		reason := `no valid signature from signer "someone" (1 signature found: certificate identity mitr@redhat.com (issuer ` + githubOAuth + `) does not match subject someone@example.com)`
		out, code = bed.crane(t, "manifest", pg.Ref("cimg/fulcio-rekor-other:v1"))
		want := fmt.Sprintf(`DENIED: %s/cimg/fulcio-rekor-other@%s by policy "fixture-a-other": %s`, upstreamName, fixtureAImage, reason)
		if code == 0 || !strings.Contains(out, want) {
			t.Errorf("crane manifest under another identity: exit %d, want a failure showing\n  %s\ncrane printed:\n%s", code, want, out)
		}
		out, code = pgVerify(t, upstreamName+"/cimg/fulcio-rekor-other:v1")
		if code != 1 || !strings.Contains(out, "reason:    "+reason+"\n") {
			t.Errorf("pullgate verify under another identity: exit %d, want 1 with the reason", code)
		}
	})

	t.Run("E keyless bundle attestation", func(t *testing.T) {
		t.Parallel()
		for _, repo := range []string{"cosign-testdata/empty-image", "cosign-testdata/empty-image-other"} {
			bed.mustCrane(t, "push", filepath.Join(fixtures, fixtureE, "image-oci-layout"), reg.Ref(repo+":v1"))
			bed.mustCrane(t, "push", filepath.Join(fixtures, fixtureE, "referrer-oci-layout"), reg.Ref(repo+"@"+fixtureERefDgt))
		}
		pullThrough(t, bed, pg, "cosign-testdata/empty-image:v1", fixtureEImage)
		d := pg.WaitDecision(t, upstreamName+"/cosign-testdata/empty-image", fixtureEImage)
		if d.Verdict != "allow" || d.Policy != "fixture-e" || !d.hasEvidenceFrom("referrers-tag") {
			t.Errorf("decision = %s, want allow by fixture-e from the referrers tag", d.Raw)
		}
		out, code := pgVerify(t, upstreamName+"/cosign-testdata/empty-image:v1")
		if code != 0 || !strings.Contains(out, "identity cody@soyland.com issuer "+githubOAuth+" logIndex 175508996") ||
			!strings.Contains(out, "satisfies attestation https://cosign.sigstore.dev/attestation/v1 (condition "+customCEL+")") {
			t.Errorf("pullgate verify: exit %d, want 0 with the attestation evidence", code)
		}
		denyThrough(t, bed, pg, "cosign-testdata/empty-image-other:v1", upstreamName+"/cosign-testdata/empty-image-other", fixtureEImage, "fixture-e-other",
			`no valid attestation of type https://cosign.sigstore.dev/attestation/v1 from signer "someone" (1 attestation found: `+
				`certificate identity cody@soyland.com (issuer `+githubOAuth+`) does not match subject someone@example.com)`)
	})

	t.Run("C keyless SLSA provenance .att", func(t *testing.T) {
		t.Parallel()
		for _, repo := range []string{"slsa/container", "slsa/container-other"} {
			bed.cosign2.mustRun(t, "load", "--dir", filepath.Join(fixtures, fixtureC, "oci-layout"), reg.Ref(repo))
		}
		if tags := bed.mustCrane(t, "ls", reg.Ref("slsa/container")); !strings.Contains(tags, "sha256-"+strings.TrimPrefix(fixtureCIndex, "sha256:")+".att") {
			t.Fatalf("cosign load did not write the .att tag; tags:\n%s", tags)
		}
		// A full pull of the index: the index verifies by its attestation,
		// and covers its platform manifest and blobs.
		dir := filepath.Join(t.TempDir(), "oci")
		if out, code := bed.crane(t, "pull", "--format", "oci", pg.Ref("slsa/container@"+fixtureCIndex), dir); code != 0 {
			t.Fatalf("crane pull through pullgate: exit %d, want 0:\n%s", code, out)
		}
		// The platform manifest, its config and 13 layers (and the index,
		// when crane keeps it) came through pullgate, digests checked.
		if entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256")); err != nil || len(entries) < 15 {
			t.Errorf("crane pull through pullgate wrote %d blobs (%v), want at least the platform manifest, its config and 13 layers", len(entries), err)
		}
		d := pg.WaitDecision(t, upstreamName+"/slsa/container", fixtureCIndex)
		if d.Verdict != "allow" || d.Policy != "slsa" || !d.hasEvidenceFrom("att-tag") {
			t.Errorf("decision = %s, want allow by slsa from the .att tag", d.Raw)
		}
		out, code := pgVerify(t, upstreamName+"/slsa/container@"+fixtureCIndex)
		if code != 0 || !strings.Contains(out, `evidence:  signer "slsa-generator" via att-tag`) ||
			!strings.Contains(out, "identity "+slsaGenerator+" issuer "+githubActions+" logIndex 174304112 integratedTime 2025-02-25T21:58:07Z") ||
			!strings.Contains(out, "satisfies attestation https://slsa.dev/provenance/v0.2") {
			t.Errorf("pullgate verify: exit %d, want 0 with the keyless attestation evidence", code)
		}
		denyThrough(t, bed, pg, "slsa/container-other@"+fixtureCIndex, upstreamName+"/slsa/container-other", fixtureCIndex, "slsa-other",
			`no valid attestation of type https://slsa.dev/provenance/v0.2 from signer "slsa-generator" (1 attestation found: certificate identity `+
				slsaGenerator+` (issuer `+githubActions+`) does not match subjectRegExp ^https://github\.com/myorg/.+$)`)
	})
}

// putManifestRaw writes manifest straight into the registry's filesystem
// storage as repo's revision (and tag), bypassing distribution's check
// that the manifest's blobs exist: what the fixtures'
// tools/reg_put_manifest_raw.py does, for images whose blobs were never
// published. GET and HEAD then serve the bytes unchanged.
func (r *Registry) putManifestRaw(t testing.TB, repo string, manifest []byte, tag string) {
	t.Helper()
	sum := sha256.Sum256(manifest)
	h := hex.EncodeToString(sum[:])
	v2 := filepath.Join(r.dir, "data", "docker", "registry", "v2")
	write := func(path string, data []byte) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := []byte("sha256:" + h)
	write(filepath.Join(v2, "blobs", "sha256", h[:2], h, "data"), manifest)
	manifests := filepath.Join(v2, "repositories", repo, "_manifests")
	write(filepath.Join(manifests, "revisions", "sha256", h, "link"), link)
	if tag != "" {
		write(filepath.Join(manifests, "tags", tag, "current", "link"), link)
		write(filepath.Join(manifests, "tags", tag, "index", "sha256", h, "link"), link)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
