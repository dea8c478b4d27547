//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Names in the pull-through config.
const (
	upstreamName = "upstream.local" // the registry name images use; defaultRegistry
	policyName   = "e2e"
	signerName   = "release-key"
)

// pullConfig is pullgate's config for TestPullThrough: one loopback
// upstream, reached by default (crane pull <pullgate>/e2e/x:v1) and by
// path prefix (<pullgate>/upstream.local/e2e/x:v1); one enforcing policy
// trusting one cosign key; everything else denied.
const pullConfig = `upstreams:
  - registry: ` + upstreamName + `
    endpoint: http://%s
defaultRegistry: ` + upstreamName + `
policies:
  - name: ` + policyName + `
    images: ["` + upstreamName + `/e2e/**"]
    mode: enforce
    signers:
      - name: ` + signerName + `
        key: {path: keys/release.pub}
unmatched: deny
# Tags are re-resolved on every request here, so the moved-tag cases see a
# move at once (the tag TTL itself is covered by proxy unit tests).
cache: {tagTTL: 0s}
`

// pullFixture is what the TestPullThrough cases share: one registry, one
// pullgate, two cosign keys. Each case uses its own repositories, so the
// cases run in parallel and any one runs alone with -run.
type pullFixture struct {
	bed     *testbed
	reg     *Registry
	pg      *Pullgate
	release keyPair // trusted by the policy
	rogue   keyPair // a valid cosign key the policy does not trust
}

func TestPullThrough(t *testing.T) {
	bed := newTestbed(t)
	fx := &pullFixture{bed: bed, reg: bed.startRegistry(t)}
	fx.release = bed.cosign2.generateKeyPair(t, "release")
	fx.rogue = bed.cosign2.generateKeyPair(t, "rogue")
	fx.pg = bed.startPullgate(t, fmt.Sprintf(pullConfig, fx.reg.Addr), map[string][]byte{
		"keys/release.pub": fx.release.PubPEM,
	})

	t.Run("cosign v2 .sig", func(t *testing.T) {
		t.Parallel()
		dgst := fx.pushSigned(t, bed.cosign2, fx.release, "e2e/v2")

		if got := bed.craneDigest(t, fx.pg.Ref("e2e/v2:v1")); got != dgst {
			t.Errorf("crane digest through pullgate = %s, want upstream digest %s", got, dgst)
		}
		manifest := bed.mustCrane(t, "manifest", fx.pg.Ref("e2e/v2:v1"))
		if got := sha256Digest([]byte(manifest)); got != dgst {
			t.Errorf("crane manifest through pullgate hashes to %s, want %s", got, dgst)
		}
		fx.pullAllowed(t, "e2e/v2:v1", dgst)
		fx.pullAllowed(t, upstreamName+"/e2e/v2:v1", dgst) // path-prefix routing

		d := fx.pg.WaitDecision(t, fx.image("e2e/v2"), dgst)
		wantAllow(t, d, "sig-tag")
	})

	t.Run("cosign v3 bundle", func(t *testing.T) {
		t.Parallel()
		dgst := fx.pushSigned(t, bed.cosign3, fx.release, "e2e/v3")
		// cosign v3 stores a bundle behind the referrers tag, no .sig.
		tags := bed.mustCrane(t, "ls", fx.reg.Ref("e2e/v3"))
		if strings.Contains(tags, ".sig") || !strings.Contains(tags, "sha256-"+strings.TrimPrefix(dgst, "sha256:")) {
			t.Fatalf("cosign %s did not store the layout this case is about; upstream tags:\n%s", cosign3Version, tags)
		}

		if got := bed.craneDigest(t, fx.pg.Ref("e2e/v3:v1")); got != dgst {
			t.Errorf("crane digest through pullgate = %s, want upstream digest %s", got, dgst)
		}
		fx.pullAllowed(t, "e2e/v3:v1", dgst)

		d := fx.pg.WaitDecision(t, fx.image("e2e/v3"), dgst)
		wantAllow(t, d, "referrers-tag") // distribution 2.8 has no referrers API
	})

	t.Run("unsigned", func(t *testing.T) {
		t.Parallel()
		dgst := bed.pushImage(t, fx.reg.Ref("e2e/unsigned:v1"))
		fx.pullDenied(t, "e2e/unsigned:v1", dgst)
		wantDeny(t, fx.pg.WaitDecision(t, fx.image("e2e/unsigned"), dgst))
		fx.pullDenied(t, "e2e/unsigned@"+dgst, dgst)
		fx.blobsDenied(t, "e2e/unsigned", dgst)
	})

	t.Run("untrusted key", func(t *testing.T) {
		t.Parallel()
		dgst := fx.pushSigned(t, bed.cosign2, fx.rogue, "e2e/rogue")
		// The signature is real: cosign accepts it with the rogue key.
		if out, code := bed.cosign2.verify(t, fx.rogue, fx.reg.Ref("e2e/rogue@"+dgst)); code != 0 {
			t.Fatalf("cosign verify with the rogue key directly upstream: exit %d:\n%s", code, out)
		}
		fx.pullDenied(t, "e2e/rogue:v1", dgst)
		wantDeny(t, fx.pg.WaitDecision(t, fx.image("e2e/rogue"), dgst))
	})

	t.Run("moved tag", func(t *testing.T) {
		t.Parallel()
		signed := fx.pushSigned(t, bed.cosign2, fx.release, "e2e/moved")
		fx.pullAllowed(t, "e2e/moved:v1", signed)

		unsigned := bed.pushImage(t, fx.reg.Ref("e2e/moved:candidate"))
		bed.mustCrane(t, "tag", fx.reg.Ref("e2e/moved:candidate"), "v1")
		if got := bed.craneDigest(t, fx.reg.Ref("e2e/moved:v1")); got != unsigned {
			t.Fatalf("upstream e2e/moved:v1 = %s after crane tag, want %s", got, unsigned)
		}

		fx.pullDenied(t, "e2e/moved:v1", unsigned)
		wantDeny(t, fx.pg.WaitDecision(t, fx.image("e2e/moved"), unsigned))
		fx.blobsDenied(t, "e2e/moved", unsigned)
		// The signed image is still served by digest.
		fx.pullAllowed(t, "e2e/moved@"+signed, signed)
	})

	t.Run("pullgate verify CLI", func(t *testing.T) {
		t.Parallel()
		signed := fx.pushSigned(t, bed.cosign2, fx.release, "e2e/cli-signed")
		unsigned := bed.pushImage(t, fx.reg.Ref("e2e/cli-unsigned:v1"))

		for _, ref := range []string{fx.image("e2e/cli-signed") + ":v1", "e2e/cli-signed:v1"} {
			out, code := bed.run(t, nil, bed.tools.pullgate, "verify", "--config", fx.pg.Config, ref)
			t.Logf("pullgate verify %s:\n%s", ref, out)
			if code != 0 {
				t.Errorf("pullgate verify %s: exit %d, want 0", ref, code)
			}
			for _, want := range []string{
				"image:     " + fx.image("e2e/cli-signed") + "\n",
				"digest:    " + signed + "\n",
				"policy:    " + policyName + "\n",
				"verdict:   ALLOWED\n",
				`evidence:  signer "` + signerName + `" via sig-tag`,
			} {
				if !strings.Contains(out, want) {
					t.Errorf("pullgate verify %s output lacks %q", ref, want)
				}
			}
		}

		ref := fx.image("e2e/cli-unsigned") + ":v1"
		out, code := bed.run(t, nil, bed.tools.pullgate, "verify", "--config", fx.pg.Config, ref)
		t.Logf("pullgate verify %s:\n%s", ref, out)
		if code != 1 {
			t.Errorf("pullgate verify %s: exit %d, want 1 (denied)", ref, code)
		}
		for _, want := range []string{"digest:    " + unsigned + "\n", "verdict:   DENIED\n", "reason:    "} {
			if !strings.Contains(out, want) {
				t.Errorf("pullgate verify %s output lacks %q", ref, want)
			}
		}
		if strings.Contains(out, "evidence:") {
			t.Errorf("pullgate verify %s shows evidence for an unsigned image", ref)
		}
	})

	t.Run("cosign verify through pullgate", func(t *testing.T) {
		t.Parallel()
		v2 := fx.pushSigned(t, bed.cosign2, fx.release, "e2e/cv2")
		v3 := fx.pushSigned(t, bed.cosign3, fx.release, "e2e/cv3")
		for _, tc := range []struct {
			name   string
			cosign *cosign
			ref    string
		}{
			{"v2 signature by cosign v2", bed.cosign2, "e2e/cv2@" + v2},
			{"v2 signature by cosign v3", bed.cosign3, "e2e/cv2@" + v2},
			{"v3 bundle by cosign v2", bed.cosign2, "e2e/cv3@" + v3},
			{"v3 bundle by cosign v3", bed.cosign3, "e2e/cv3@" + v3},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out, code := tc.cosign.verify(t, fx.release, fx.pg.Ref(tc.ref))
				if code != 0 {
					t.Errorf("cosign %s verify %s through pullgate: exit %d, want 0:\n%s", tc.cosign.version, tc.ref, code, out)
				}
			})
		}
		// cosign really verifies what pullgate served: the wrong key fails.
		out, code := bed.cosign2.verify(t, fx.rogue, fx.pg.Ref("e2e/cv2@"+v2))
		if code == 0 {
			t.Errorf("cosign verify with the rogue key through pullgate succeeded:\n%s", out)
		}
	})
}

// image is the name pullgate gives repo (policies match it).
func (fx *pullFixture) image(repo string) string { return upstreamName + "/" + repo }

// pushSigned pushes a fresh image to <repo>:v1 upstream and signs it by
// digest with key using c. It returns the digest.
func (fx *pullFixture) pushSigned(t testing.TB, c *cosign, key keyPair, repo string) string {
	t.Helper()
	dgst := fx.bed.pushImage(t, fx.reg.Ref(repo+":v1"))
	c.sign(t, key, fx.reg.Ref(repo+"@"+dgst))
	return dgst
}

// pullAllowed pulls repoRef through pullgate with `crane pull --format
// oci`, which must succeed and yield the manifest with digest want and
// all its blobs.
func (fx *pullFixture) pullAllowed(t testing.TB, repoRef, want string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	if out, code := fx.bed.crane(t, "pull", "--format", "oci", fx.pg.Ref(repoRef), dir); code != 0 {
		t.Fatalf("crane pull %s through pullgate: exit %d, want 0:\n%s", repoRef, code, out)
	}
	if got := readOCILayout(t, dir).ManifestDigest; got != want {
		t.Errorf("crane pull %s through pullgate got manifest %s, want %s", repoRef, got, want)
	}
}

// pullDenied pulls repoRef through pullgate with crane, which must fail
// with pullgate's DENIED error naming the image, digest and policy. It
// logs and returns the denial line crane printed.
func (fx *pullFixture) pullDenied(t testing.TB, repoRef, dgst string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	out, code := fx.bed.crane(t, "pull", "--format", "oci", fx.pg.Ref(repoRef), dir)
	if code == 0 {
		t.Fatalf("crane pull %s through pullgate succeeded, want DENIED", repoRef)
	}
	repo, _, _ := strings.Cut(repoRef, ":")
	repo, _, _ = strings.Cut(repo, "@")
	for _, want := range []string{
		"DENIED",
		fx.image(repo) + "@" + dgst,
		fmt.Sprintf("by policy %q", policyName),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("crane pull %s output lacks %q:\n%s", repoRef, want, out)
		}
	}
	line := out
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "DENIED") {
			line = l
			break
		}
	}
	t.Logf("crane printed: %s", line)
	return line
}

// blobsDenied checks that pullgate refuses every blob of the upstream
// manifest repo@dgst (blobs follow verified manifests only).
func (fx *pullFixture) blobsDenied(t testing.TB, repo, dgst string) {
	t.Helper()
	var m struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	raw := fx.bed.mustCrane(t, "manifest", fx.reg.Ref(repo+"@"+dgst))
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("upstream manifest %s@%s: %v", repo, dgst, err)
	}
	blobs := []string{m.Config.Digest}
	for _, l := range m.Layers {
		blobs = append(blobs, l.Digest)
	}
	for _, b := range blobs {
		out, code := fx.bed.crane(t, "blob", fx.pg.Ref(repo+"@"+b))
		if code == 0 || !strings.Contains(out, "DENIED") {
			t.Errorf("crane blob %s@%s through pullgate: exit %d, want a DENIED failure:\n%s", repo, b, code, tail(out, 5))
		}
	}
}

func wantAllow(t testing.TB, d Decision, layout string) {
	t.Helper()
	t.Logf("decision log: %s", d.Raw)
	if d.Verdict != "allow" || d.Policy != policyName || !slices.Contains(d.Signers, signerName) || !slices.Contains(d.Layouts, layout) {
		t.Errorf("decision = %s\nwant verdict allow, policy %q, signer %q, layout %q", d.Raw, policyName, signerName, layout)
	}
}

func wantDeny(t testing.TB, d Decision) {
	t.Helper()
	t.Logf("decision log: %s", d.Raw)
	if d.Verdict != "deny" || d.Policy != policyName || len(d.Reasons) == 0 {
		t.Errorf("decision = %s\nwant verdict deny, policy %q, with reasons", d.Raw, policyName)
	}
}
