package verifier_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/verifier"
	"github.com/pullgate/pullgate/verifier/verifiertest"
)

// imageName is the name images are verified under; the proxy passes the
// name the user wrote, which differs from the upstream's host:port.
const imageName = "registry.example.com/apps/web"

// upstream is an in-memory registry with one repository.
type upstream struct {
	repo name.Repository
	src  verifier.Source
}

func newUpstream(t testing.TB, referrers bool) *upstream {
	t.Helper()
	repo := verifiertest.StartRegistry(t, referrers, "apps/web")
	return &upstream{repo: repo, src: verifiertest.RemoteSource(repo, nil)}
}

// push pushes a random image and returns its descriptor.
func (u *upstream) push(t testing.TB, seed int64) v1.Descriptor {
	t.Helper()
	desc, err := verifiertest.PushRandomImage(t.Context(), u.repo, fmt.Sprintf("v%d", seed), seed)
	if err != nil {
		t.Fatal(err)
	}
	return desc
}

// sigArtifact returns the digest of the .sig manifest for desc.
func (u *upstream) sigArtifact(t testing.TB, desc v1.Descriptor) digest.Digest {
	t.Helper()
	d, err := remote.Head(verifiertest.SigTag(u.repo, desc.Digest), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	return digest.Digest(d.Digest.String())
}

// referrerArtifacts returns the digests of desc's referrer manifests.
func (u *upstream) referrerArtifacts(t testing.TB, desc v1.Descriptor) []digest.Digest {
	t.Helper()
	idx, err := remote.Referrers(u.repo.Digest(desc.Digest.String()), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var ds []digest.Digest
	for _, m := range im.Manifests {
		ds = append(ds, digest.Digest(m.Digest.String()))
	}
	return ds
}

func imageOf(desc v1.Descriptor) verifier.Image {
	return verifier.Image{Name: imageName, Digest: digest.Digest(desc.Digest.String())}
}

// keyRule returns rule "apps" requiring threshold of signers.
func keyRule(threshold int, signers ...*policy.Signer) *policy.Rule {
	return &policy.Rule{
		Name:       "apps",
		Images:     []string{imageName},
		Mode:       policy.ModeEnforce,
		Signers:    signers,
		Signatures: policy.Signatures{Threshold: threshold, Signers: signers},
	}
}

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newVerifier returns a verifier with a frozen clock, so verdicts have
// Duration 0 and compare with cmp.Diff.
func newVerifier(t testing.TB, opts ...verifier.Option) *verifier.Sigstore {
	t.Helper()
	s, err := verifier.New(append([]verifier.Option{verifier.WithClock(func() time.Time { return epoch })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	keysMu sync.Mutex
	keys   = map[string][]*verifiertest.Key{}
)

// testKey returns the i-th shared test key of alg; generating RSA keys
// is slow, so tests share them (they are never mutated).
func testKey(t testing.TB, alg string, i int) *verifiertest.Key {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	for len(keys[alg]) <= i {
		keys[alg] = append(keys[alg], verifiertest.MustGenerateKey(t, alg))
	}
	return keys[alg][i]
}

func v1Hash(d digest.Digest) (v1.Hash, error) { return v1.NewHash(d.String()) }
