package verifier_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/verifier"
	"github.com/pullgate/pullgate/verifier/verifiertest"
)

// layoutCase signs an image in one storage layout.
type layoutCase struct {
	name      string
	referrers bool // registry offers the referrers API
	layout    verifier.Layout
	predicate string
	sign      func(ctx context.Context, u *upstream, desc v1.Descriptor, k *verifiertest.Key) error
}

var layoutCases = []layoutCase{
	{
		name: "sig-tag", layout: verifier.LayoutSigTag,
		sign: func(ctx context.Context, u *upstream, desc v1.Descriptor, k *verifiertest.Key) error {
			return verifiertest.SignLegacy(ctx, u.repo, desc.Digest, k)
		},
	},
	{
		name: "referrers-api", referrers: true, layout: verifier.LayoutReferrersAPI,
		predicate: verifiertest.CosignSignPredicateType,
		sign: func(ctx context.Context, u *upstream, desc v1.Descriptor, k *verifiertest.Key) error {
			return verifiertest.SignBundle(ctx, u.repo, desc, k)
		},
	},
	{
		name: "referrers-tag", layout: verifier.LayoutReferrersTag,
		predicate: verifiertest.CosignSignPredicateType,
		sign: func(ctx context.Context, u *upstream, desc v1.Descriptor, k *verifiertest.Key) error {
			return verifiertest.SignBundle(ctx, u.repo, desc, k)
		},
	},
}

var algs = []string{verifiertest.ECDSAP256, verifiertest.ECDSAP384, verifiertest.RSA2048, verifiertest.Ed25519}

// TestVerifyLayouts signs with each key type in each layout, and checks
// the right key is allowed with evidence and another key of the same
// type is denied.
func TestVerifyLayouts(t *testing.T) {
	t.Parallel()
	for _, lc := range layoutCases {
		for _, alg := range algs {
			t.Run(lc.name+"/"+alg, func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				u := newUpstream(t, lc.referrers)
				desc := u.push(t, 1)
				key, other := testKey(t, alg, 0), testKey(t, alg, 1)
				if err := lc.sign(ctx, u, desc, key); err != nil {
					t.Fatal(err)
				}
				var artifact digest.Digest
				if lc.layout == verifier.LayoutSigTag {
					artifact = u.sigArtifact(t, desc)
				} else {
					as := u.referrerArtifacts(t, desc)
					if len(as) != 1 {
						t.Fatalf("referrers = %v, want 1", as)
					}
					artifact = as[0]
				}
				img := imageOf(desc)
				v := newVerifier(t)

				got, err := v.Verify(ctx, u.src, img, keyRule(1, key.PolicySigner("release-key")))
				if err != nil {
					t.Fatal(err)
				}
				want := &verifier.Verdict{
					Image: img, Policy: "apps", Allowed: true,
					Evidence: []verifier.Evidence{{
						Signer: "release-key", Layout: lc.layout, Artifact: artifact,
						PredicateType: lc.predicate, LogIndex: -1,
					}},
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("right key: verdict (-want +got):\n%s", diff)
				}

				got, err = v.Verify(ctx, u.src, img, keyRule(1, other.PolicySigner("release-key")))
				if err != nil {
					t.Fatal(err)
				}
				want = &verifier.Verdict{
					Image: img, Policy: "apps",
					Reasons: []string{`no valid signature from signer "release-key" (1 signature found: signed by another key)`},
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("other key: verdict (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func sigTagName(d digest.Digest) string { return fmt.Sprintf("sha256-%s.sig", d.Encoded()) }
