package verifier_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/verifier"
	"github.com/pullgate/pullgate/verifier/verifiertest"
)

// Genuine public-good Sigstore material (../../shared/fixtures, see its
// README): verified offline against the genuine trusted root, with SCTs
// required, as in production.
const (
	fixtureA = "legacy-keyless-containers-image-fulcio-rekor"
	fixtureB = "legacy-key-rekor-containers-image"
	fixtureE = "newbundle-keyless-dsse-attestation-cosign-testdata"
	// fixtureEImage is the image fixture E's bundle is about.
	fixtureEImage = digest.Digest("sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4")
	githubOAuth   = "https://github.com/login/oauth"
)

// publicGoodRoot parses a genuine trusted_root.json fixture.
func publicGoodRoot(t testing.TB, rel string) *root.TrustedRoot {
	t.Helper()
	tr, err := root.NewTrustedRootFromJSON(readFixture(t, rel))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return tr
}

const (
	currentRoot = "trust/trusted_root.json"
	oldRoot     = "trust/public-good-2023-06-sigstore-go-example/trusted_root.json"
)

func emailSigner(subject, issuer string) *policy.Signer {
	return &policy.Signer{Name: "dev", TLog: policy.TLogRequired, Keyless: &policy.Keyless{Issuer: issuer, Subject: subject}}
}

// TestVerifyGenuineLegacyKeyless verifies fixture A, a real cosign
// keyless .sig (Fulcio certificate with SCT, public-good Rekor SET),
// through the in-memory registry, against the current and the 2023
// public-good trusted roots, and rejects it under other identities.
func TestVerifyGenuineLegacyKeyless(t *testing.T) {
	t.Parallel()
	u := newUpstream(t, false)
	artifact := pushSigLayout(t, u, fixtureA)
	img := verifier.Image{Name: "registry.example.com/cimg/fulcio-rekor-1", Digest: fixtureImage}
	allowed := &verifier.Verdict{Image: img, Policy: "apps", Allowed: true, Evidence: []verifier.Evidence{{
		Signer: "dev", Layout: verifier.LayoutSigTag, Artifact: artifact,
		Identity: "mitr@redhat.com", Issuer: githubOAuth,
		LogIndex: 11605770, IntegratedTime: time.Date(2023, 1, 20, 20, 51, 33, 0, time.UTC),
	}}}
	denied := func(reason string) *verifier.Verdict {
		return &verifier.Verdict{Image: img, Policy: "apps", Reasons: []string{`no valid signature from signer "dev" (1 signature found: ` + reason + `)`}}
	}
	tests := []struct {
		name   string
		root   string
		signer *policy.Signer
		want   *verifier.Verdict
	}{
		{"current root", currentRoot, emailSigner("mitr@redhat.com", githubOAuth), allowed},
		{"2023 root", oldRoot, emailSigner("mitr@redhat.com", githubOAuth), allowed},
		{"regexps", currentRoot, &policy.Signer{Name: "dev", TLog: policy.TLogRequired,
			Keyless: &policy.Keyless{IssuerRegExp: `https://github\.com/login/oauth`, SubjectRegExp: `[^@]+@redhat\.com`}}, allowed},
		{"another identity", currentRoot, emailSigner("someone@example.com", githubOAuth),
			denied(`certificate identity mitr@redhat.com (issuer https://github.com/login/oauth) does not match subject someone@example.com`)},
		{"another issuer", currentRoot, emailSigner("mitr@redhat.com", "https://accounts.google.com"),
			denied(`certificate identity mitr@redhat.com (issuer https://github.com/login/oauth) does not match issuer https://accounts.google.com`)},
		{"unanchored regexp", currentRoot, &policy.Signer{Name: "dev", TLog: policy.TLogRequired,
			Keyless: &policy.Keyless{Issuer: githubOAuth, SubjectRegExp: `redhat\.com`}},
			denied(`certificate identity mitr@redhat.com (issuer https://github.com/login/oauth) does not match subjectRegExp redhat\.com (it matches only part of the value; patterns must match the whole value)`)},
		{"GitHub Actions identity", currentRoot, &policy.Signer{Name: "dev", TLog: policy.TLogRequired,
			Keyless: &policy.Keyless{Issuer: verifiertest.GitHubActionsIssuer, SubjectRegExp: releaseRegExp}},
			denied(`certificate identity mitr@redhat.com (issuer https://github.com/login/oauth) does not match subjectRegExp ` + releaseRegExp)},
		{"a root without its Fulcio CA", "", emailSigner("mitr@redhat.com", githubOAuth),
			denied(`certificate does not chain to a Fulcio CA of trusted root (issued by "sigstore-intermediate")`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var tm root.TrustedMaterial
			if tt.root != "" {
				tm = publicGoodRoot(t, tt.root)
			} else {
				// The genuine Rekor, CT logs and TSA, with an unrelated Fulcio CA.
				pg := publicGoodRoot(t, currentRoot)
				var err error
				tm, err = root.NewTrustedRoot(root.TrustedRootMediaType01, verifiertest.MustNewSigstore(t).TrustedRoot().FulcioCertificateAuthorities(),
					pg.CTLogs(), pg.TimestampingAuthorities(), pg.RekorLogs())
				must(t, err)
			}
			got, err := newVerifier(t, verifier.WithTrustedMaterial("", tm)).Verify(t.Context(), u.src, img, keyRule(1, tt.signer))
			must(t, err)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVerifyGenuineLegacyKeyRekor verifies fixture B, a real key-signed
// .sig logged in public-good Rekor, with tlog: required against the
// genuine root, and denies it when its SET is forged.
func TestVerifyGenuineLegacyKeyRekor(t *testing.T) {
	t.Parallel()
	pemBytes := readFixture(t, filepath.Join(fixtureB, "upstream", "cosign2.pub"))
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	must(t, err)
	signer := &policy.Signer{Name: "containers-image", Key: &policy.Key{PEM: pemBytes, PublicKey: pub}, TLog: policy.TLogRequired}
	img := verifier.Image{Name: "registry.example.com/cimg/key-1", Digest: fixtureImage}
	v := newVerifier(t, verifier.WithTrustedMaterial("", publicGoodRoot(t, currentRoot)))

	t.Run("genuine", func(t *testing.T) {
		t.Parallel()
		u := newUpstream(t, false)
		artifact := pushSigLayout(t, u, fixtureB)
		got, err := v.Verify(t.Context(), u.src, img, keyRule(1, signer))
		must(t, err)
		want := &verifier.Verdict{Image: img, Policy: "apps", Allowed: true, Evidence: []verifier.Evidence{{
			Signer: "containers-image", Layout: verifier.LayoutSigTag, Artifact: artifact,
			LogIndex: 11608800, IntegratedTime: time.Date(2023, 1, 20, 21, 57, 39, 0, time.UTC),
		}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("verdict (-want +got):\n%s", diff)
		}
	})
	t.Run("forged SET", func(t *testing.T) {
		t.Parallel()
		src := fixtureSource(t, fixtureB, forgeSET)
		got, err := v.Verify(t.Context(), src, img, keyRule(1, signer))
		must(t, err)
		want := &verifier.Verdict{Image: img, Policy: "apps", Reasons: []string{
			`no valid signature from signer "containers-image" (1 signature found: transparency log inclusion promise (SET) does not verify against the Rekor key of trusted root)`,
		}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("verdict (-want +got):\n%s", diff)
		}
	})
}

// forgeSET replaces the SET of a legacy layer's Rekor bundle annotation
// with a valid-looking signature over something else.
func forgeSET(t testing.TB, ann map[string]string) {
	t.Helper()
	var rb map[string]any
	must(t, json.Unmarshal([]byte(ann[verifiertest.AnnotationRekorBundle]), &rb))
	set, err := base64.StdEncoding.DecodeString(rb["SignedEntryTimestamp"].(string))
	must(t, err)
	set[len(set)-3] ^= 0x40
	rb["SignedEntryTimestamp"] = base64.StdEncoding.EncodeToString(set)
	b, err := json.Marshal(rb)
	must(t, err)
	ann[verifiertest.AnnotationRekorBundle] = string(b)
}

// TestVerifyGenuineBundleKeyless verifies fixture E, a real Sigstore
// bundle v0.3 (keyless DSSE, public-good Rekor entry with promise and
// proof) stored as an OCI 1.1 referrer, through both referrer layouts.
// Its predicate is https://cosign.sigstore.dev/attestation/v1: an
// attestation, which never counts as a signature. The reason proves the
// keyless verification itself passed (the predicate is only read from a
// verified statement); another identity fails before that.
func TestVerifyGenuineBundleKeyless(t *testing.T) {
	t.Parallel()
	for _, referrers := range []bool{true, false} {
		t.Run(fmt.Sprintf("referrers API %v", referrers), func(t *testing.T) {
			t.Parallel()
			u := newUpstream(t, referrers)
			for _, dir := range []string{"image-oci-layout", "referrer-oci-layout"} {
				pushLayout(t, u, filepath.Join(fixtureE, dir))
			}
			img := verifier.Image{Name: "registry.example.com/cosign-testdata/empty-image", Digest: fixtureEImage}
			v := newVerifier(t, verifier.WithTrustedMaterial("", publicGoodRoot(t, currentRoot)))
			for _, tt := range []struct {
				signer *policy.Signer
				reason string
			}{
				{emailSigner("cody@soyland.com", githubOAuth), `attestation of type https://cosign.sigstore.dev/attestation/v1, not a signature`},
				{emailSigner("mitr@redhat.com", githubOAuth), `certificate identity cody@soyland.com (issuer https://github.com/login/oauth) does not match subject mitr@redhat.com`},
			} {
				got, err := v.Verify(t.Context(), u.src, img, keyRule(1, tt.signer))
				must(t, err)
				want := []string{`no valid signature from signer "dev" (1 signature found: ` + tt.reason + `)`}
				if diff := cmp.Diff(want, got.Reasons); got.Allowed || diff != "" {
					t.Errorf("%s: allowed=%v reasons (-want +got):\n%s", tt.signer.Keyless.Subject, got.Allowed, diff)
				}
			}
		})
	}
}

// pushLayout pushes every manifest of an OCI layout fixture by digest.
func pushLayout(t testing.TB, u *upstream, dir string) {
	t.Helper()
	readFixture(t, filepath.Join(dir, "index.json"))
	idx, err := layout.ImageIndexFromPath(filepath.Join(fixtures, dir))
	must(t, err)
	im, err := idx.IndexManifest()
	must(t, err)
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		must(t, err)
		must(t, remote.Write(u.repo.Digest(d.Digest.String()), img, remote.WithContext(t.Context())))
	}
}

// fixtureSource serves a fixture from memory, with no HTTP at all: the
// blobs of its OCI layouts, its .sig tag (for legacy fixtures), and the
// referrers of fixture E through the referrers API. edit, when not nil,
// may change the .sig layer's annotations.
func fixtureSource(t testing.TB, dir string, edit func(testing.TB, map[string]string)) verifier.Source {
	t.Helper()
	blobs := map[digest.Digest][]byte{}
	tags := map[string]digest.Digest{}
	var referrers []byte
	load := func(layoutDir string) []byte {
		index := readFixture(t, filepath.Join(dir, layoutDir, "index.json"))
		entries, err := os.ReadDir(filepath.Join(fixtures, dir, layoutDir, "blobs", "sha256"))
		must(t, err)
		for _, e := range entries {
			blobs[digest.NewDigestFromEncoded(digest.SHA256, e.Name())] = readFixture(t, filepath.Join(dir, layoutDir, "blobs", "sha256", e.Name()))
		}
		return index
	}
	if dir == fixtureE {
		load("image-oci-layout")
		referrers = load("referrer-oci-layout")
	} else {
		var idx struct {
			Manifests []struct {
				Digest digest.Digest `json:"digest"`
			} `json:"manifests"`
		}
		must(t, json.Unmarshal(load("sig-oci-layout"), &idx))
		sig := idx.Manifests[0].Digest
		tags["sha256-"+fixtureImage.Encoded()+".sig"] = sig
		if edit != nil {
			var m map[string]any
			must(t, json.Unmarshal(blobs[sig], &m))
			l := m["layers"].([]any)[0].(map[string]any)
			ann := map[string]string{}
			for k, v := range l["annotations"].(map[string]any) {
				ann[k] = v.(string)
			}
			edit(t, ann)
			l["annotations"] = ann
			b, err := json.Marshal(m)
			must(t, err)
			blobs[digest.FromBytes(b)] = b
			tags["sha256-"+fixtureImage.Encoded()+".sig"] = digest.FromBytes(b)
		}
	}
	notFound := func(what string) error { return fmt.Errorf("%s: %w", what, verifier.ErrNotFound) }
	return &verifiertest.SourceFuncs{
		ManifestFunc: func(_ context.Context, ref string, _ int64) ([]byte, string, error) {
			d, ok := tags[ref]
			if !ok {
				d = digest.Digest(ref)
			}
			if b, ok := blobs[d]; ok {
				return b, "application/vnd.oci.image.manifest.v1+json", nil
			}
			return nil, "", notFound(ref)
		},
		BlobFunc: func(_ context.Context, d digest.Digest, _ int64) ([]byte, error) {
			if b, ok := blobs[d]; ok {
				return b, nil
			}
			return nil, notFound(d.String())
		},
		ReferrersFunc: func(_ context.Context, d digest.Digest, _ int64) ([]byte, error) {
			if referrers != nil && d == fixtureEImage {
				return referrers, nil
			}
			return nil, verifier.ErrReferrersUnsupported
		},
	}
}

// countingTransport fails every request and counts them.
type countingTransport struct{ n *atomic.Int64 }

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return nil, fmt.Errorf("no network in this test: %s %s", r.Method, r.URL.Redacted())
}

// TestVerifyGenuineOffline proves the verification path needs no
// network: with every outbound HTTP request and DNS lookup of the
// process failing and counted, the genuine fixtures verify (A keyless
// .sig, B key .sig with tlog: required, E keyless bundle), and nothing
// was attempted. No trusted root is fetched and no log is queried: all
// trust comes from the trusted_root.json given to the verifier.
//
// It swaps process-wide defaults, so it is not parallel (parallel tests
// of this package wait until it is done).
func TestVerifyGenuineOffline(t *testing.T) { //nolint:paralleltest // swaps http.DefaultTransport and net.DefaultResolver
	var attempts atomic.Int64
	origTransport, origResolver := http.DefaultTransport, net.DefaultResolver
	http.DefaultTransport = countingTransport{&attempts}
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		attempts.Add(1)
		return nil, errors.New("no network in this test")
	}}
	t.Cleanup(func() { http.DefaultTransport, net.DefaultResolver = origTransport, origResolver })

	tm := publicGoodRoot(t, currentRoot)
	v := newVerifier(t, verifier.WithTrustedMaterial("", tm))
	pemBytes := readFixture(t, filepath.Join(fixtureB, "upstream", "cosign2.pub"))
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	must(t, err)
	keySigner := &policy.Signer{Name: "dev", Key: &policy.Key{PEM: pemBytes, PublicKey: pub}, TLog: policy.TLogRequired}

	for _, tt := range []struct {
		dir     string
		img     digest.Digest
		signer  *policy.Signer
		allowed bool
		reason  string
	}{
		{fixtureA, fixtureImage, emailSigner("mitr@redhat.com", githubOAuth), true, ""},
		{fixtureA, fixtureImage, emailSigner("someone@example.com", githubOAuth), false, "does not match subject someone@example.com"},
		{fixtureB, fixtureImage, keySigner, true, ""},
		{fixtureE, fixtureEImage, emailSigner("cody@soyland.com", githubOAuth), false, "attestation of type https://cosign.sigstore.dev/attestation/v1, not a signature"},
	} {
		got, err := v.Verify(t.Context(), fixtureSource(t, tt.dir, nil), verifier.Image{Name: "registry.example.com/x", Digest: tt.img}, keyRule(1, tt.signer))
		must(t, err)
		if got.Allowed != tt.allowed || (tt.reason != "" && !strings.Contains(strings.Join(got.Reasons, "\n"), tt.reason)) {
			t.Errorf("%s: allowed=%v reasons=%q, want allowed=%v with %q", tt.dir, got.Allowed, got.Reasons, tt.allowed, tt.reason)
		}
		if tt.allowed && (got.Evidence[0].LogIndex < 0 || got.Evidence[0].IntegratedTime.IsZero()) {
			t.Errorf("%s: evidence %+v lacks the log entry", tt.dir, got.Evidence[0])
		}
	}
	if n := attempts.Load(); n != 0 {
		t.Errorf("verification attempted %d network connections, want 0", n)
	}
}

// BenchmarkVerifyGenuineLegacyKeyless measures one full verification
// of fixture A (keyless .sig: discovery from memory, conversion, SET,
// SCT, certificate chain, signature, identity), without caching.
func BenchmarkVerifyGenuineLegacyKeyless(b *testing.B) {
	v := newVerifier(b, verifier.WithTrustedMaterial("", publicGoodRoot(b, currentRoot)))
	src := fixtureSource(b, fixtureA, nil)
	img := verifier.Image{Name: "registry.example.com/x", Digest: fixtureImage}
	rule := keyRule(1, emailSigner("mitr@redhat.com", githubOAuth))
	for b.Loop() {
		got, err := v.Verify(b.Context(), src, img, rule)
		if err != nil || !got.Allowed {
			b.Fatalf("verdict %+v, %v", got, err)
		}
	}
}
