package verifier_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/verifier"
	"github.com/pullgate/pullgate/verifier/verifiertest"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	good := testKey(t, verifiertest.ECDSAP256, 0).PolicySigner("release-key")
	ed := testKey(t, verifiertest.Ed25519, 0).PolicySigner("ed")
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	must(t, err)
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	must(t, err)
	keyless := &policy.Signer{Name: "ci", Keyless: &policy.Keyless{Issuer: "https://token.actions.githubusercontent.com", SubjectRegExp: "^x$"}, TLog: policy.TLogRequired}
	tests := []struct {
		name string
		cfg  *policy.Config
		want []string // error lines; nil for no error
	}{{
		name: "nil",
	}, {
		name: "keys only",
		cfg: &policy.Config{Policies: []*policy.Rule{
			keyRule(1, good, ed),
			{Name: "skip-tlog", Signers: []*policy.Signer{{Name: "k", Key: good.Key, TLog: policy.TLogSkip}}},
		}},
	}, {
		name: "everything unsupported",
		cfg: &policy.Config{Policies: []*policy.Rule{
			{
				Name:         "apps",
				Signers:      []*policy.Signer{good, keyless},
				Attestations: []*policy.Attestation{{PredicateType: "https://slsa.dev/provenance/v1"}},
			},
			{Name: "strict", Signers: []*policy.Signer{{Name: "k", Key: good.Key, TLog: policy.TLogRequired}}},
			{Name: "weak", Signers: []*policy.Signer{
				{Name: "rsa", Key: &policy.Key{PublicKey: &weak.PublicKey}},
				{Name: "p224", Key: &policy.Key{PublicKey: &p224.PublicKey}},
				{Name: "pem", Key: &policy.Key{PEM: []byte("not a key")}},
			}},
		}},
		want: []string{
			`signer "ci" in policy "apps": keyless signer needs a trusted root (set trustedRoot or tuf), and none is configured`,
			`signer "k" in policy "strict": tlog: required needs a trusted root with the transparency log's key (set trustedRoot or tuf), and none is configured`,
			`signer "rsa" in policy "weak": RSA key of 1024 bits is too short (need 2048 or more)`,
			`signer "p224" in policy "weak": unsupported ECDSA curve P-224`,
			`signer "pem" in policy "weak": key signer's PEM is not a public key`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := verifier.Check(tt.cfg)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Check errors (-want +got):\n%s", diff)
			}
		})
	}
}
