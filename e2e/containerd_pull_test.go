//go:build e2e

package e2e

import (
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mirrorName is a second name for the same docker-registry, used by the
// hazard demonstration with the usual mirror layout.
const mirrorName = "mirror.local"

// ctrdConfig is pullgate's config for TestContainerd: the upstream under
// two names, each with an enforcing policy trusting the release key.
const ctrdConfig = `upstreams:
  - registry: ` + upstreamName + `
    endpoint: http://%[1]s
  - registry: ` + mirrorName + `
    endpoint: http://%[1]s
defaultRegistry: ` + upstreamName + `
policies:
  - name: ` + policyName + `
    images: ["` + upstreamName + `/e2e/**"]
    mode: enforce
    signers:
      - name: ` + signerName + `
        key: {path: keys/release.pub}
  - name: attested
    images: ["` + upstreamName + `/e2e/ctrd-att/**"]
    mode: enforce
    signers:
      - name: ` + signerName + `
        key: {path: keys/release.pub}
    attestations:
      - predicateType: slsaprovenance
        condition: 'predicate.builder.id == "` + builderID + `"'
  - name: mirror
    images: ["` + mirrorName + `/e2e/**"]
    mode: enforce
    signers:
      - name: ` + signerName + `
        key: {path: keys/release.pub}
unmatched: deny
# Tags are re-resolved on every request here, so the moved-tag cases see a
# move at once (the tag TTL itself is covered by proxy unit tests).
cache: {tagTTL: 0s}
`

// ctrdFixture is what the TestContainerd cases share: one docker-registry,
// one pullgate, one containerd whose hosts.toml for upstream.local is the
// fail-closed layout deploy/ ships. Each case uses its own repositories
// (fresh content, so nothing is in containerd's content store before the
// case pulls it) and its own ctr namespace, and removes what it pulled.
type ctrdFixture struct {
	bed     *testbed
	reg     *Registry
	pg      *Pullgate
	ctrd    *Containerd
	release keyPair
	rogue   keyPair
}

// TestContainerd pulls through pullgate with the real containerd, both
// with ctr (the client resolves and fetches) and crictl (the CRI plugin
// does, as for the kubelet).
func TestContainerd(t *testing.T) {
	bed := newTestbed(t)
	fx := &ctrdFixture{bed: bed, reg: bed.startRegistry(t)}
	fx.release = bed.cosign2.generateKeyPair(t, "release")
	fx.rogue = bed.cosign2.generateKeyPair(t, "rogue")
	fx.pg = bed.startPullgate(t, fmt.Sprintf(ctrdConfig, fx.reg.Addr), map[string][]byte{
		"keys/release.pub": fx.release.PubPEM,
	})
	fx.ctrd = bed.startContainerd(t)
	fx.ctrd.writeHosts(t, upstreamName, failClosedHosts(fx.pg.Addr))

	t.Run("cosign v2 .sig", func(t *testing.T) {
		t.Parallel()
		dgst := fx.pushSigned(t, bed.cosign2, fx.release, "e2e/ctrd-v2")
		fx.pullBothAllowed(t, "e2e/ctrd-v2:v1", dgst)
		wantAllow(t, fx.pg.WaitDecision(t, fx.image("e2e/ctrd-v2"), dgst), "sig-tag")
	})

	t.Run("cosign v3 bundle", func(t *testing.T) {
		t.Parallel()
		dgst := fx.pushSigned(t, bed.cosign3, fx.release, "e2e/ctrd-v3")
		fx.pullBothAllowed(t, "e2e/ctrd-v3:v1", dgst)
		wantAllow(t, fx.pg.WaitDecision(t, fx.image("e2e/ctrd-v3"), dgst), "referrers-tag")
	})

	t.Run("attestation required", func(t *testing.T) {
		t.Parallel()
		ns := namespace(t)
		ok := fx.pushSigned(t, bed.cosign2, fx.release, "e2e/ctrd-att/ok")
		bed.cosign2.attest(t, fx.release, fx.reg.Ref("e2e/ctrd-att/ok@"+ok), "slsaprovenance", provenancePredicate(builderID))
		evil := fx.pushSigned(t, bed.cosign2, fx.release, "e2e/ctrd-att/evil")
		bed.cosign2.attest(t, fx.release, fx.reg.Ref("e2e/ctrd-att/evil@"+evil), "slsaprovenance",
			provenancePredicate("https://github.com/evil/builder/.github/workflows/build.yml@refs/tags/v1"))

		mark := len(fx.pg.Requests())
		fx.wantPulled(t, fx.ctrd.ctrPull(t, ns, fx.ref("e2e/ctrd-att/ok:v1")), "e2e/ctrd-att/ok", ok)
		fx.waitServed(t, mark, "e2e/ctrd-att/ok", ok)
		fx.ctrd.ctrRemove(t, ns, fx.ref("e2e/ctrd-att/ok:v1"))

		saw := fx.wantDenied(t, fx.ctrd.ctrPull(t, ns, fx.ref("e2e/ctrd-att/evil:v1")), "e2e/ctrd-att/evil", evil, "attested", fx.pg)
		if want := `attestation https://slsa.dev/provenance/v0.2 fails its condition predicate.builder.id == "` + builderID + `": false)`; !strings.HasSuffix(saw, want) {
			t.Errorf("ctr showed\n  %s\nwant it to end with\n  %s", saw, want)
		}
		fx.noContent(t, ns, evil)
	})

	t.Run("untrusted key", func(t *testing.T) {
		t.Parallel()
		dgst := fx.pushSigned(t, bed.cosign2, fx.rogue, "e2e/ctrd-rogue")
		fx.pullAllDenied(t, "e2e/ctrd-rogue", dgst)
	})

	t.Run("unsigned", func(t *testing.T) {
		t.Parallel()
		dgst := bed.pushImage(t, fx.reg.Ref("e2e/ctrd-unsigned:v1"))
		fx.pullAllDenied(t, "e2e/ctrd-unsigned", dgst)
	})

	t.Run("index signed at the index only", func(t *testing.T) {
		t.Parallel()
		host := runtime.GOOS + "/" + runtime.GOARCH
		other := "linux/arm64"
		if runtime.GOARCH == "arm64" {
			other = "linux/amd64"
		}
		index, children := bed.pushIndex(t, fx.reg.Ref("e2e/ctrd-multi:v1"), host, other)
		bed.cosign2.sign(t, fx.release, fx.reg.Ref("e2e/ctrd-multi@"+index))
		ns := namespace(t)

		mark := len(fx.pg.Requests())
		p := fx.ctrd.ctrPull(t, ns, fx.ref("e2e/ctrd-multi:v1"))
		fx.wantPulled(t, p, "e2e/ctrd-multi", index)
		fx.waitServed(t, mark, "e2e/ctrd-multi", children[host])
		reqs := fx.settledRequests(mark, "e2e/ctrd-multi")
		for _, r := range reqs {
			if strings.Contains(r.Path, children[other]) {
				t.Errorf("containerd asked pullgate for the %s manifest when pulling on %s: %s", other, host, r)
			}
		}
		if !strings.Contains(p.Output, "unpacking "+host+" "+index) {
			t.Errorf("ctr did not unpack %s of the index:\n%s", host, p.Output)
		}
		if !fx.ctrd.ctrHasContent(t, ns, children[host]) || fx.ctrd.ctrHasContent(t, ns, children[other]) {
			t.Errorf("content store: want the %s manifest %s and not the %s manifest %s", host, children[host], other, children[other])
		}
		wantAllow(t, fx.pg.WaitDecision(t, fx.image("e2e/ctrd-multi"), index), "sig-tag")
		fx.ctrd.ctrRemove(t, ns, fx.ref("e2e/ctrd-multi:v1"))

		mark = len(fx.pg.Requests())
		p = fx.ctrd.crictlPull(t, fx.ref("e2e/ctrd-multi:v1"))
		fx.wantPulled(t, p, "e2e/ctrd-multi", index)
		fx.waitServed(t, mark, "e2e/ctrd-multi", children[host])
		fx.ctrd.crictlRemove(t, fx.ref("e2e/ctrd-multi:v1"))
	})

	t.Run("tag moved after signing", func(t *testing.T) {
		t.Parallel()
		signed := fx.pushSigned(t, bed.cosign2, fx.release, "e2e/ctrd-moved")
		ns := namespace(t)
		fx.wantPulled(t, fx.ctrd.ctrPull(t, ns, fx.ref("e2e/ctrd-moved:v1")), "e2e/ctrd-moved", signed)

		unsigned := bed.pushImage(t, fx.reg.Ref("e2e/ctrd-moved:candidate"))
		bed.mustCrane(t, "tag", fx.reg.Ref("e2e/ctrd-moved:candidate"), "v1")
		// The signed image stays in containerd (image and content): the
		// tag must still resolve through pullgate, to the new digest.
		fx.wantDenied(t, fx.ctrd.ctrPull(t, ns, fx.ref("e2e/ctrd-moved:v1")), "e2e/ctrd-moved", unsigned, policyName, fx.pg)
		fx.wantDenied(t, fx.ctrd.crictlPull(t, fx.ref("e2e/ctrd-moved:v1")), "e2e/ctrd-moved", unsigned, policyName, fx.pg)
		if got := fx.imageTarget(t, ns, fx.ref("e2e/ctrd-moved:v1")); got != signed {
			t.Errorf("after the denied pull, ctr's e2e/ctrd-moved:v1 points at %s, want the signed %s still", got, signed)
		}
		fx.noContent(t, ns, unsigned)
		// The signed image stays pullable by digest.
		fx.wantPulled(t, fx.ctrd.ctrPull(t, ns, fx.ref("e2e/ctrd-moved@"+signed)), "e2e/ctrd-moved", signed)
		fx.ctrd.ctrRemove(t, ns, fx.ctrd.ctrImages(t, ns)...)
	})

	t.Run("key revoked after a pull: containerd's cached copy is not reused", func(t *testing.T) {
		t.Parallel()
		fx.revoked(t)
	})

	t.Run("HAZARD usual mirror layout falls back to upstream and pulls an unsigned image", func(t *testing.T) {
		t.Parallel()
		fx.mirrorHazard(t)
	})

	t.Run("hosts.toml without a host table is ignored by containerd 1.6", func(t *testing.T) {
		t.Parallel()
		// server only, no [host]: containerd logs "invalid `host` tree",
		// ignores the file and goes to https://<registry> itself (here
		// caught by the egress trap before any DNS lookup).
		const name = "hostless.local"
		fx.ctrd.writeHosts(t, name, fmt.Sprintf("server = %q\n", "http://"+fx.pg.Addr))
		mark := len(fx.pg.Requests())
		ns := namespace(t)
		for _, p := range []pull{
			fx.ctrd.ctrPull(t, ns, name+"/e2e/hostless:v1"),
			fx.ctrd.crictlPull(t, name+"/e2e/hostless:v1"),
		} {
			if p.OK() {
				t.Fatalf("%s pull %s succeeded", p.Client, p.Ref)
			}
			t.Logf("%s saw: %s", p.Client, p.ErrorText())
		}
		// Parallel cases must not lose their own stray requests: take only these.
		got := bed.egress.takeWhere(func(a string) bool { return strings.Contains(a, name) })
		if len(got) == 0 || slices.ContainsFunc(got, func(a string) bool { return a != "CONNECT "+name+":443" }) {
			t.Errorf("egress trap saw %q, want only CONNECT %s:443 (containerd going to the registry itself)", got, name)
		}
		if reqs := fx.settledRequests(mark, "e2e/hostless"); len(reqs) > 0 {
			t.Errorf("pullgate was asked although the hosts.toml names it: %v", reqs)
		}
		if !strings.Contains(fx.ctrd.proc.output(), "invalid `host` tree") {
			t.Errorf("containerd did not log that it ignored the hosts.toml (invalid `host` tree)")
		}
	})
}

// image is the name pullgate and its policies give repo.
func (fx *ctrdFixture) image(repo string) string { return upstreamName + "/" + repo }

// ref is the image reference containerd pulls for repoRef.
func (fx *ctrdFixture) ref(repoRef string) string { return upstreamName + "/" + repoRef }

func (fx *ctrdFixture) pushSigned(t testing.TB, c *cosign, key keyPair, repo string) string {
	t.Helper()
	dgst := fx.bed.pushImage(t, fx.reg.Ref(repo+":v1"))
	c.sign(t, key, fx.reg.Ref(repo+"@"+dgst))
	return dgst
}

// namespace is a containerd namespace of ctr's for the calling test.
func namespace(t testing.TB) string {
	s := strings.ToLower(t.Name())
	s = regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(s, "-")
	if len(s) > 60 {
		s = s[len(s)-60:]
	}
	return "e2e-" + strings.Trim(s, "-")
}

// pullBothAllowed pulls repoRef with ctr, removes it (--sync: content
// gone), then pulls it with crictl, so both pulls fetch through pullgate.
func (fx *ctrdFixture) pullBothAllowed(t testing.TB, repoRef, dgst string) {
	t.Helper()
	repo := repoOf(repoRef)
	ns := namespace(t)
	mark := len(fx.pg.Requests())
	fx.wantPulled(t, fx.ctrd.ctrPull(t, ns, fx.ref(repoRef)), repo, dgst)
	fx.waitServed(t, mark, repo, dgst)
	fx.ctrd.ctrRemove(t, ns, fx.ref(repoRef))
	if fx.ctrd.ctrHasContent(t, ns, dgst) {
		t.Fatalf("manifest %s still in containerd's content store after ctr image rm --sync", dgst)
	}

	mark = len(fx.pg.Requests())
	fx.wantPulled(t, fx.ctrd.crictlPull(t, fx.ref(repoRef)), repo, dgst)
	fx.waitServed(t, mark, repo, dgst)
	fx.ctrd.crictlRemove(t, fx.ref(repoRef))
}

// pullAllDenied pulls repo by tag v1 and by digest with ctr and crictl;
// all four must fail showing pullgate's reason, and leave nothing behind.
func (fx *ctrdFixture) pullAllDenied(t testing.TB, repo, dgst string) {
	t.Helper()
	ns := namespace(t)
	for _, p := range []func(ref string) pull{
		func(ref string) pull { return fx.ctrd.ctrPull(t, ns, ref) },
		func(ref string) pull { return fx.ctrd.crictlPull(t, ref) },
	} {
		for _, ref := range []string{fx.ref(repo + ":v1"), fx.ref(repo + "@" + dgst)} {
			fx.wantDenied(t, p(ref), repo, dgst, policyName, fx.pg)
		}
	}
	if imgs := fx.ctrd.ctrImages(t, ns); len(imgs) > 0 {
		t.Errorf("denied pulls left images in namespace %s: %v", ns, imgs)
	}
	fx.noContent(t, ns, dgst)
}

// wantPulled checks that a pull of repo succeeded with manifest dgst.
func (fx *ctrdFixture) wantPulled(t testing.TB, p pull, repo, dgst string) {
	t.Helper()
	if !p.OK() {
		t.Fatalf("%s pull %s through pullgate: exit %d, want success:\n%s", p.Client, p.Ref, p.Code, p.Output)
	}
	switch p.Client {
	case "ctr":
		if !regexp.MustCompile(`(?m)^unpacking \S+ ` + regexp.QuoteMeta(dgst)).MatchString(p.Output) {
			t.Errorf("ctr pull %s did not unpack %s:\n%s", p.Ref, dgst, p.Output)
		}
	case "crictl":
		if !strings.Contains(p.Output, "Image is up to date for sha256:") {
			t.Errorf("crictl pull %s did not report the image:\n%s", p.Ref, p.Output)
		}
	}
	t.Logf("%s pulled %s (%s) in %v", p.Client, p.Ref, dgst, p.Duration.Round(time.Millisecond))
}

// waitServed waits for pullgate's access log to show that, after mark,
// containerd fetched manifest dgst of repo (GET, 200): the content came
// through pullgate, not from containerd's store.
func (fx *ctrdFixture) waitServed(t testing.TB, mark int, repo, dgst string) {
	t.Helper()
	path := "/v2/" + repo + "/manifests/" + dgst
	deadline := time.Now().Add(5 * time.Second)
	for {
		reqs := fx.pg.Requests()
		for _, r := range reqs[min(mark, len(reqs)):] {
			if r.Method == "GET" && r.Path == path && r.Status == 200 && strings.HasPrefix(r.UserAgent, "containerd/") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pullgate never served GET %s to containerd; its requests for %s:\n%v", path, repo, fx.settledRequests(mark, repo))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settledRequests are pullgate's access log lines after mark for repo,
// once the log has been quiet for a moment.
func (fx *ctrdFixture) settledRequests(mark int, repo string) []Request {
	n := -1
	for range 50 {
		if m := len(fx.pg.Requests()); m == n {
			break
		} else {
			n = m
		}
		time.Sleep(50 * time.Millisecond)
	}
	var out []Request
	reqs := fx.pg.Requests()
	for _, r := range reqs[min(mark, len(reqs)):] {
		if strings.HasPrefix(r.Path, "/v2/"+repo+"/") {
			out = append(out, r)
		}
	}
	return out
}

// wantDenied checks that a pull of repo at dgst failed and that what the
// user saw is containerd's resolve error carrying pullgate's denial, in
// full:
//
//	... pulling from host <pullgate> failed with status code [manifests <ref>]:
//	403 Forbidden (denied: <image>@<digest> by policy "<policy>": <reasons>)
//
// It returns that text.
func (fx *ctrdFixture) wantDenied(t testing.TB, p pull, repo, dgst, policy string, pg *Pullgate) string {
	t.Helper()
	if p.OK() {
		t.Fatalf("%s pull %s through pullgate succeeded, want a denial:\n%s", p.Client, p.Ref, p.Output)
	}
	image := strings.SplitN(p.Ref, "/", 2)[0] + "/" + repo
	d := pg.WaitDecision(t, image, dgst)
	if d.Verdict != "deny" || d.Policy != policy || len(d.Reasons) == 0 {
		t.Fatalf("decision for %s@%s = %s, want a denial by policy %q with reasons", image, dgst, d.Raw, policy)
	}
	object := "v1"
	if _, after, ok := strings.Cut(p.Ref, "@"); ok {
		object = after
	} else if i := strings.LastIndex(p.Ref, ":"); i > 0 {
		object = p.Ref[i+1:]
	}
	denial := fmt.Sprintf("denied: %s@%s by policy %q: %s", image, dgst, policy, strings.Join(d.Reasons, "; "))
	resolve := fmt.Sprintf("failed to resolve reference %q: pulling from host %s failed with status code [manifests %s]: 403 Forbidden (%s)",
		p.Ref, pg.Addr, object, denial)
	var want, got string
	switch p.Client {
	case "ctr":
		want, got = "ctr: "+resolve, p.ErrorText()
	case "crictl":
		want = fmt.Sprintf("pulling image: failed to pull and unpack image %q: %s", p.Ref, resolve)
		got = logfmtMsg(p.ErrorText())
	}
	if got != want {
		t.Errorf("%s pull %s: the user saw\n  %s\nwant\n  %s\nfull output:\n%s", p.Client, p.Ref, got, want, p.Output)
	} else {
		t.Logf("%s pull %s was denied; the user saw:\n  %s", p.Client, p.Ref, got)
	}
	return got
}

// logfmtMsg is the msg="…" value of a logrus text line (crictl's).
func logfmtMsg(line string) string {
	_, rest, ok := strings.Cut(line, ` msg=`)
	if !ok {
		return line
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return line
	}
	s, err := strconv.Unquote(q)
	if err != nil {
		return line
	}
	return s
}

// noContent checks that dgst is in containerd's content store neither for
// ns nor for the CRI's namespace.
func (fx *ctrdFixture) noContent(t testing.TB, ns, dgst string) {
	t.Helper()
	for _, n := range []string{ns, "k8s.io"} {
		if fx.ctrd.ctrHasContent(t, n, dgst) {
			t.Errorf("denied manifest %s is in containerd's content store (namespace %s)", dgst, n)
		}
	}
}

// imageTarget is the manifest digest ctr's image ref in ns points at.
func (fx *ctrdFixture) imageTarget(t testing.TB, ns, ref string) string {
	t.Helper()
	for _, l := range strings.Split(fx.ctrd.mustCtr(t, ns, "image", "ls"), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == ref {
			return f[2]
		}
	}
	return ""
}

// repoOf is the repository of a repo:tag or repo@digest reference.
func repoOf(repoRef string) string {
	if r, _, ok := strings.Cut(repoRef, "@"); ok {
		return r
	}
	if i := strings.LastIndex(repoRef, ":"); i > strings.LastIndex(repoRef, "/") {
		return repoRef[:i]
	}
	return repoRef
}

// revokeConfig is the config of the revocation case's own pullgate,
// trusting the key in keys/<key>.pub as signer <signer>.
const revokeConfig = `upstreams:
  - registry: revoke.local
    endpoint: http://%s
policies:
  - name: revocable
    images: ["revoke.local/e2e/**"]
    mode: enforce
    signers:
      - name: %s
        key: {path: keys/%s.pub}
unmatched: deny
`

// revoked is the content-store case: an image pulled while allowed stays
// in containerd (image and content); the policy then stops trusting its
// key (pullgate restarted with the new policy). Pulling it again, by tag
// and by digest, with ctr and crictl, must fail with the reason: the
// HEAD must not let containerd reuse the manifest it already holds (this
// is what AlwaysPullImages relies on).
func (fx *ctrdFixture) revoked(t *testing.T) {
	const name = "revoke.local"
	pg := fx.bed.startPullgate(t, fmt.Sprintf(revokeConfig, fx.reg.Addr, "release-key", "release"), map[string][]byte{
		"keys/release.pub": fx.release.PubPEM,
	})
	fx.ctrd.writeHosts(t, name, failClosedHosts(pg.Addr))
	dgst := fx.pushSigned(t, fx.bed.cosign2, fx.release, "e2e/ctrd-revoked")
	ns := namespace(t)
	tagRef, digestRef := name+"/e2e/ctrd-revoked:v1", name+"/e2e/ctrd-revoked@"+dgst

	fx.wantPulled(t, fx.ctrd.ctrPull(t, ns, tagRef), "e2e/ctrd-revoked", dgst)
	fx.wantPulled(t, fx.ctrd.crictlPull(t, tagRef), "e2e/ctrd-revoked", dgst)

	pg.Restart(t, fmt.Sprintf(revokeConfig, fx.reg.Addr, "rotated-key", "rotated"), map[string][]byte{
		"keys/rotated.pub": fx.rogue.PubPEM,
	})
	for _, n := range []string{ns, "k8s.io"} {
		if !fx.ctrd.ctrHasContent(t, n, dgst) {
			t.Fatalf("precondition: manifest %s is not in containerd's content store (namespace %s)", dgst, n)
		}
	}
	for _, ref := range []string{tagRef, digestRef} {
		fx.wantDenied(t, fx.ctrd.ctrPull(t, ns, ref), "e2e/ctrd-revoked", dgst, "revocable", pg)
		fx.wantDenied(t, fx.ctrd.crictlPull(t, ref), "e2e/ctrd-revoked", dgst, "revocable", pg)
	}
	fx.ctrd.ctrRemove(t, ns, tagRef)
	fx.ctrd.crictlRemove(t, tagRef)
}

// mirrorHazard demonstrates why deploy/ ships the fail-closed layout:
// with the usual mirror layout (pullgate as [host], the registry as
// server) containerd takes pullgate's 403 as "try the next host" and
// pulls the unsigned image from the registry. Nothing is enforced.
func (fx *ctrdFixture) mirrorHazard(t *testing.T) {
	fx.ctrd.writeHosts(t, mirrorName, mirrorHosts(fx.pg.Addr, fx.reg.Addr))
	dgst := fx.bed.pushImage(t, fx.reg.Ref("e2e/ctrd-hazard:v1"))
	ns := namespace(t)
	ref := mirrorName + "/e2e/ctrd-hazard:v1"

	for _, p := range []pull{fx.ctrd.ctrPull(t, ns, ref), fx.ctrd.crictlPull(t, ref)} {
		if !p.OK() {
			t.Fatalf("%s pull %s with the usual mirror layout failed; the hazard this case documents is gone?\n%s", p.Client, p.Ref, p.Output)
		}
		t.Logf("HAZARD: %s pulled the UNSIGNED %s (%s) although pullgate denied it", p.Client, p.Ref, dgst)
		fx.ctrd.ctrRemove(t, ns, fx.ctrd.ctrImages(t, ns)...)
	}
	d := fx.pg.WaitDecision(t, mirrorName+"/e2e/ctrd-hazard", dgst)
	if d.Verdict != "deny" {
		t.Errorf("pullgate's decision for the unsigned image = %s, want deny", d.Raw)
	}
	direct := false
	for _, l := range strings.Split(fx.reg.Logs(), "\n") {
		if strings.Contains(l, `"GET /v2/e2e/ctrd-hazard/manifests/`+dgst) && strings.Contains(l, "containerd/") {
			direct = true
			t.Logf("docker-registry: %s", l)
			break
		}
	}
	if !direct {
		t.Errorf("docker-registry's access log does not show containerd fetching %s directly:\n%s", dgst, tail(fx.reg.Logs(), 20))
	}
	fx.ctrd.crictlRemove(t, ref)

	// The same image under the fail-closed layout is refused.
	fx.wantDenied(t, fx.ctrd.ctrPull(t, ns, fx.ref("e2e/ctrd-hazard:v1")), "e2e/ctrd-hazard", dgst, policyName, fx.pg)
}
