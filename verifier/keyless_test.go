package verifier_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/verifier"
	"github.com/pullgate/pullgate/verifier/verifiertest"
)

// releaseID is the identity GitHub Actions gives myorg/app's release
// workflow on a tag, and releaseRegExp the README's example policy for it.
var releaseID = verifiertest.GitHubWorkflow("myorg/app", ".github/workflows/release.yml", "refs/tags/v1.0.0")

const releaseRegExp = `^https://github\.com/myorg/[^/]+/\.github/workflows/release\.yml@refs/tags/v.*$`

// ciSigner is the keyless signer "ci" for releaseID, with tlog.
func ciSigner(tlog policy.TLogPolicy, mod ...func(*policy.Keyless)) *policy.Signer {
	k := &policy.Keyless{
		Issuer:        verifiertest.GitHubActionsIssuer,
		SubjectRegExp: releaseRegExp,
		Extensions:    map[string]string{"githubWorkflowRepository": "myorg/app"},
	}
	for _, m := range mod {
		m(k)
	}
	return &policy.Signer{Name: "ci", Keyless: k, TLog: tlog}
}

// store is where a keyless signature is stored.
type store string

const (
	sigTag       store = "sig-tag"
	referrersAPI store = "referrers-api"
	referrersTag store = "referrers-tag"
)

var allStores = []store{sigTag, referrersAPI, referrersTag}

// kenv is a keyless test environment: an upstream with the image to
// verify and another image, the Sigstore the signatures come from, and a
// second, unrelated Sigstore.
type kenv struct {
	store       store
	u           *upstream
	desc, other v1.Descriptor
	ss, alien   *verifiertest.Sigstore
}

func newKenv(t *testing.T, l store) *kenv {
	t.Helper()
	u := newUpstream(t, l == referrersAPI)
	return &kenv{
		store: l, u: u, desc: u.push(t, 1), other: u.push(t, 2),
		ss: verifiertest.MustNewSigstore(t), alien: verifiertest.MustNewSigstore(t),
	}
}

// sign signs e.desc with id from ss in e's store.
func (e *kenv) sign(t *testing.T, ss *verifiertest.Sigstore, id verifiertest.Identity, o verifiertest.KeylessOptions) {
	t.Helper()
	if e.store == sigTag {
		must(t, ss.SignLegacyKeyless(t.Context(), e.u.repo, e.desc.Digest, id, o))
		return
	}
	must(t, ss.SignBundleKeyless(t.Context(), e.u.repo, e.desc, id, o))
}

// mixedRoot is a trusted root with the Fulcio CA and timestamp
// authority of ca and the Rekor log of rekor.
func mixedRoot(t *testing.T, ca, rekor *verifiertest.Sigstore) *root.TrustedRoot {
	t.Helper()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, ca.TrustedRoot().FulcioCertificateAuthorities(),
		ca.TrustedRoot().CTLogs(), ca.TrustedRoot().TimestampingAuthorities(), rekor.TrustedRoot().RekorLogs())
	must(t, err)
	return tr
}

// outcome is what a keyless verification must give.
type outcome struct {
	// reason is a regular expression for the one failure reason of the
	// one signature; empty means allowed.
	reason string
	// logged and timestamped say what the evidence of an allow holds;
	// proofOnly, a log entry without integrated time.
	logged, timestamped, proofOnly bool
}

var q = regexp.QuoteMeta

// TestVerifyKeyless covers keyless signers in every store (legacy .sig
// with certificate, chain and Rekor bundle annotations; bundles v0.3 via
// the referrers API and the referrers tag) against an in-process
// Sigstore: what is accepted, with which evidence, and every must-reject
// case of the issue with its reason.
func TestVerifyKeyless(t *testing.T) {
	t.Parallel()
	expired := releaseID
	expired.NotBefore, expired.NotAfter = time.Now().Add(-40*time.Minute), time.Now().Add(-30*time.Minute)
	tests := []struct {
		name   string
		stores []store // nil: all
		setup  func(t *testing.T, e *kenv)
		signer *policy.Signer
		root   func(t *testing.T, e *kenv) root.TrustedMaterial // nil: e.ss's
		sct    bool                                             // require SCTs (VirtualSigstore certificates have none)
		want   outcome
	}{{
		name:   "logged and timestamped",
		setup:  func(t *testing.T, e *kenv) { e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{Timestamp: true}) },
		signer: ciSigner(policy.TLogRequired),
		want:   outcome{logged: true, timestamped: true},
	}, {
		name:   "logged only",
		setup:  func(t *testing.T, e *kenv) { e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{}) },
		signer: ciSigner(policy.TLogRequired),
		want:   outcome{logged: true},
	}, {
		name: "exact subject and issuer, e-mail identity",
		setup: func(t *testing.T, e *kenv) {
			e.sign(t, e.ss, verifiertest.Identity{Subject: "dev@example.com", Issuer: "https://accounts.example.com"}, verifiertest.KeylessOptions{})
		},
		signer: &policy.Signer{Name: "ci", TLog: policy.TLogRequired,
			Keyless: &policy.Keyless{Issuer: "https://accounts.example.com", Subject: "dev@example.com"}},
		want: outcome{logged: true},
	}, {
		name:  "issuerRegExp",
		setup: func(t *testing.T, e *kenv) { e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{}) },
		signer: ciSigner(policy.TLogRequired, func(k *policy.Keyless) {
			k.Issuer, k.IssuerRegExp = "", `https://token\.actions\.githubusercontent\.com`
		}),
		want: outcome{logged: true},
	}, {
		name:  "GitHub extensions",
		setup: func(t *testing.T, e *kenv) { e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{}) },
		signer: ciSigner(policy.TLogRequired, func(k *policy.Keyless) {
			k.Extensions["githubWorkflowRef"] = "refs/tags/v1.0.0"
			k.Extensions["githubWorkflowTrigger"] = "push"
		}),
		want: outcome{logged: true},
	}, {
		name: "wrong identity",
		setup: func(t *testing.T, e *kenv) {
			e.sign(t, e.ss, verifiertest.GitHubWorkflow("evil/app", ".github/workflows/release.yml", "refs/tags/v1.0.0"), verifiertest.KeylessOptions{})
		},
		signer: ciSigner(policy.TLogRequired),
		want: outcome{reason: q(`certificate identity https://github.com/evil/app/.github/workflows/release.yml@refs/tags/v1.0.0 (issuer https://token.actions.githubusercontent.com) does not match subjectRegExp ` +
			releaseRegExp)},
	}, {
		name:   "wrong issuer",
		setup:  func(t *testing.T, e *kenv) { e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{}) },
		signer: ciSigner(policy.TLogRequired, func(k *policy.Keyless) { k.Issuer = "https://gitlab.com" }),
		want:   outcome{reason: q(`certificate identity ` + releaseID.Subject + ` (issuer https://token.actions.githubusercontent.com) does not match issuer https://gitlab.com`)},
	}, {
		name:   "wrong issuer by regexp",
		setup:  func(t *testing.T, e *kenv) { e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{}) },
		signer: ciSigner(policy.TLogRequired, func(k *policy.Keyless) { k.Issuer, k.IssuerRegExp = "", `https://gitlab\.com` }),
		want:   outcome{reason: q(`does not match issuerRegExp https://gitlab\.com`)},
	}, {
		// sigstore-go matches regular expressions unanchored: a pattern
		// meant as a prefix would accept any subject containing it.
		name: "unanchored regexp attempt",
		setup: func(t *testing.T, e *kenv) {
			e.sign(t, e.ss, verifiertest.GitHubWorkflow("evil/myorg-app", ".github/workflows/release.yml", "refs/tags/v1.0.0"), verifiertest.KeylessOptions{})
		},
		signer: ciSigner(policy.TLogRequired, func(k *policy.Keyless) { k.SubjectRegExp, k.Extensions = `myorg`, nil }),
		want: outcome{reason: q(`certificate identity https://github.com/evil/myorg-app/.github/workflows/release.yml@refs/tags/v1.0.0 (issuer https://token.actions.githubusercontent.com) does not match subjectRegExp myorg ` +
			`(it matches only part of the value; patterns must match the whole value)`)},
	}, {
		name: "unanchored regexp attempt on the issuer",
		setup: func(t *testing.T, e *kenv) {
			e.sign(t, e.ss, verifiertest.Identity{Subject: "dev@example.com", Issuer: "https://evil.example/token.actions.githubusercontent.com"}, verifiertest.KeylessOptions{})
		},
		signer: &policy.Signer{Name: "ci", TLog: policy.TLogRequired, Keyless: &policy.Keyless{IssuerRegExp: `token\.actions\.githubusercontent\.com`, SubjectRegExp: `.*`}},
		want:   outcome{reason: q(`does not match issuerRegExp token\.actions\.githubusercontent\.com (it matches only part of the value; patterns must match the whole value)`)},
	}, {
		name:   "extension mismatch",
		setup:  func(t *testing.T, e *kenv) { e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{}) },
		signer: ciSigner(policy.TLogRequired, func(k *policy.Keyless) { k.Extensions["githubWorkflowRef"] = "refs/heads/main" }),
		want:   outcome{reason: q(`certificate identity ` + releaseID.Subject + ` (issuer https://token.actions.githubusercontent.com) has githubWorkflowRef refs/tags/v1.0.0, not refs/heads/main`)},
	}, {
		name:   "extension the certificate lacks",
		setup:  func(t *testing.T, e *kenv) { e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{}) },
		signer: ciSigner(policy.TLogRequired, func(k *policy.Keyless) { k.Extensions["runnerEnvironment"] = "github-hosted" }),
		want:   outcome{reason: q(`has runnerEnvironment none, not github-hosted`)},
	}, {
		name:   "certificate expired before the signature was logged",
		setup:  func(t *testing.T, e *kenv) { e.sign(t, e.ss, expired, verifiertest.KeylessOptions{}) },
		signer: ciSigner(policy.TLogRequired),
		want:   outcome{reason: `^certificate expired before the signature was logged at \S+ \(certificate valid \S+ to \S+\)$`},
	}, {
		name: "certificate logged before it was valid",
		setup: func(t *testing.T, e *kenv) {
			e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{IntegratedTime: time.Now().Add(-30 * time.Minute)})
		},
		signer: ciSigner(policy.TLogRequired),
		want:   outcome{reason: `^certificate was not yet valid when the signature was logged at `},
	}, {
		name:   "expired certificate without timestamp",
		setup:  func(t *testing.T, e *kenv) { e.sign(t, e.ss, expired, verifiertest.KeylessOptions{NoTlog: true}) },
		signer: ciSigner(policy.TLogOptional),
		want:   outcome{reason: q(`no transparency log entry or RFC 3161 timestamp proves when the certificate was used`)},
	}, {
		name: "expired certificate, timestamped after expiry",
		setup: func(t *testing.T, e *kenv) {
			e.sign(t, e.ss, expired, verifiertest.KeylessOptions{NoTlog: true, Timestamp: true})
		},
		signer: ciSigner(policy.TLogSkip),
		want:   outcome{reason: `^certificate was not valid at the time an RFC 3161 timestamp proves \(certificate valid \S+ to \S+\)$`},
	}, {
		name: "missing transparency log entry when required",
		setup: func(t *testing.T, e *kenv) {
			e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{NoTlog: true, Timestamp: true})
		},
		signer: ciSigner(policy.TLogRequired),
		want:   outcome{reason: `^no transparency log entry$`},
	}, {
		name: "no log entry, tlog optional: the timestamp proves the time",
		setup: func(t *testing.T, e *kenv) {
			e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{NoTlog: true, Timestamp: true})
		},
		signer: ciSigner(policy.TLogOptional),
		want:   outcome{timestamped: true},
	}, {
		name: "no log entry, tlog skip",
		setup: func(t *testing.T, e *kenv) {
			e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{NoTlog: true, Timestamp: true})
		},
		signer: ciSigner(policy.TLogSkip),
		want:   outcome{timestamped: true},
	}, {
		name:   "log entry, tlog optional: the entry is verified",
		setup:  func(t *testing.T, e *kenv) { e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{}) },
		signer: ciSigner(policy.TLogOptional),
		want:   outcome{logged: true},
	}, {
		name:   "log entry, tlog skip: the entry is ignored, so a timestamp is needed",
		setup:  func(t *testing.T, e *kenv) { e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{}) },
		signer: ciSigner(policy.TLogSkip),
		want:   outcome{reason: q(`no transparency log entry or RFC 3161 timestamp proves when the certificate was used`)},
	}, {
		name: "tampered SET",
		setup: func(t *testing.T, e *kenv) {
			e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{TamperSET: true, Timestamp: true})
		},
		signer: ciSigner(policy.TLogRequired),
		want:   outcome{reason: q(`transparency log inclusion promise (SET) does not verify against the Rekor key of trusted root`)},
	}, {
		name: "tampered SET, tlog optional: present entries must verify",
		setup: func(t *testing.T, e *kenv) {
			e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{TamperSET: true, Timestamp: true})
		},
		signer: ciSigner(policy.TLogOptional),
		want:   outcome{reason: q(`transparency log inclusion promise (SET) does not verify against the Rekor key of trusted root`)},
	}, {
		name: "tampered SET, tlog skip",
		setup: func(t *testing.T, e *kenv) {
			e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{TamperSET: true, Timestamp: true})
		},
		signer: ciSigner(policy.TLogSkip),
		want:   outcome{timestamped: true},
	}, {
		name: "Rekor key not in the trusted root",
		setup: func(t *testing.T, e *kenv) {
			e.sign(t, e.alien, releaseID, verifiertest.KeylessOptions{Timestamp: true})
		},
		signer: ciSigner(policy.TLogRequired),
		root:   func(t *testing.T, e *kenv) root.TrustedMaterial { return mixedRoot(t, e.alien, e.ss) },
		want:   outcome{reason: `^Rekor key not in trusted root \(the entry's log ID is [0-9a-f]{16}…\)$`},
	}, {
		name: "entry of an unknown log, tlog optional: the timestamp proves the time",
		setup: func(t *testing.T, e *kenv) {
			e.sign(t, e.alien, releaseID, verifiertest.KeylessOptions{Timestamp: true})
		},
		signer: ciSigner(policy.TLogOptional),
		root:   func(t *testing.T, e *kenv) root.TrustedMaterial { return mixedRoot(t, e.alien, e.ss) },
		want:   outcome{timestamped: true},
	}, {
		name:   "entry of an unknown log and no timestamp, tlog optional",
		setup:  func(t *testing.T, e *kenv) { e.sign(t, e.alien, releaseID, verifiertest.KeylessOptions{}) },
		signer: ciSigner(policy.TLogOptional),
		root:   func(t *testing.T, e *kenv) root.TrustedMaterial { return mixedRoot(t, e.alien, e.ss) },
		want:   outcome{reason: `^Rekor key not in trusted root \(the entry's log ID is [0-9a-f]{16}…\), and no RFC 3161 timestamp$`},
	}, {
		name:   "chain to an unknown CA",
		setup:  func(t *testing.T, e *kenv) { e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{}) },
		signer: ciSigner(policy.TLogRequired),
		root:   func(t *testing.T, e *kenv) root.TrustedMaterial { return mixedRoot(t, e.alien, e.ss) },
		want:   outcome{reason: q(`certificate does not chain to a Fulcio CA of trusted root (issued by "sigstore-intermediate")`)},
	}, {
		name:   "SCT required",
		setup:  func(t *testing.T, e *kenv) { e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{}) },
		signer: ciSigner(policy.TLogRequired),
		sct:    true,
		want:   outcome{reason: q(`certificate has no valid SCT from a CT log of trusted root`)},
	}, {
		name: "digest mismatch",
		setup: func(t *testing.T, e *kenv) {
			if e.store == sigTag {
				payload := verifiertest.SimpleSigningPayload(e.u.repo, e.other.Digest)
				ann, err := e.ss.LegacyKeylessAnnotations(payload, releaseID, verifiertest.KeylessOptions{})
				must(t, err)
				must(t, verifiertest.WriteLegacyLayer(t.Context(), e.u.repo, e.desc.Digest, payload, ann))
				return
			}
			stmt, err := verifiertest.Statement(e.other.Digest, verifiertest.CosignSignPredicateType, nil)
			must(t, err)
			b, err := e.ss.KeylessBundle(stmt, releaseID, verifiertest.KeylessOptions{})
			must(t, err)
			must(t, verifiertest.WriteBundleReferrer(t.Context(), e.u.repo, e.desc, b, verifiertest.CosignSignPredicateType))
		},
		signer: ciSigner(policy.TLogRequired),
		want:   outcome{reason: `^(signature payload names digest sha256:[0-9a-f]{64} not sha256:[0-9a-f]{64}|bundle statement does not name sha256:[0-9a-f]{64})$`},
	}, {
		name: "tampered payload",
		setup: func(t *testing.T, e *kenv) {
			if e.store == sigTag {
				payload := verifiertest.SimpleSigningPayload(e.u.repo, e.desc.Digest)
				ann, err := e.ss.LegacyKeylessAnnotations(payload, releaseID, verifiertest.KeylessOptions{})
				must(t, err)
				tampered := []byte(strings.Replace(string(payload), `"optional":null`, `"optional":{"approved":"yes"}`, 1))
				must(t, verifiertest.WriteLegacyLayer(t.Context(), e.u.repo, e.desc.Digest, tampered, ann))
				return
			}
			stmt, err := verifiertest.Statement(e.desc.Digest, verifiertest.CosignSignPredicateType, nil)
			must(t, err)
			b, err := e.ss.KeylessBundle(stmt, releaseID, verifiertest.KeylessOptions{})
			must(t, err)
			must(t, verifiertest.WriteBundleReferrer(t.Context(), e.u.repo, e.desc, tamperStatement(t, b), verifiertest.CosignSignPredicateType))
		},
		signer: ciSigner(policy.TLogRequired),
		want:   outcome{reason: q(`transparency log entry is for another signature or payload (signature or payload altered)`)},
	}, {
		name:   "tampered payload, tlog skip",
		stores: []store{sigTag},
		setup: func(t *testing.T, e *kenv) {
			payload := verifiertest.SimpleSigningPayload(e.u.repo, e.desc.Digest)
			ann, err := e.ss.LegacyKeylessAnnotations(payload, releaseID, verifiertest.KeylessOptions{Timestamp: true})
			must(t, err)
			tampered := []byte(strings.Replace(string(payload), `"optional":null`, `"optional":{"approved":"yes"}`, 1))
			must(t, verifiertest.WriteLegacyLayer(t.Context(), e.u.repo, e.desc.Digest, tampered, ann))
		},
		signer: ciSigner(policy.TLogSkip),
		want:   outcome{reason: q(reasonBadSignature)},
	}, {
		name:   "tampered statement, tlog skip",
		stores: []store{referrersAPI, referrersTag},
		setup: func(t *testing.T, e *kenv) {
			stmt, err := verifiertest.Statement(e.desc.Digest, verifiertest.CosignSignPredicateType, nil)
			must(t, err)
			b, err := e.ss.KeylessBundle(stmt, releaseID, verifiertest.KeylessOptions{Timestamp: true})
			must(t, err)
			must(t, verifiertest.WriteBundleReferrer(t.Context(), e.u.repo, e.desc, tamperStatement(t, b), verifiertest.CosignSignPredicateType))
		},
		signer: ciSigner(policy.TLogSkip),
		want:   outcome{reason: q(reasonBadSignature)},
	}, {
		name:   "key signature under a keyless signer",
		setup:  func(t *testing.T, e *kenv) { signWithKey(t, e, testKey(t, verifiertest.ECDSAP256, 0)) },
		signer: ciSigner(policy.TLogRequired),
		want:   outcome{reason: q(`signed with a key, not a Fulcio certificate (keyless)`)},
	}, {
		name:   "inclusion proof without promise, timestamped",
		stores: []store{referrersAPI, referrersTag},
		setup: func(t *testing.T, e *kenv) {
			e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{NoInclusionPromise: true, Timestamp: true})
		},
		signer: ciSigner(policy.TLogRequired),
		want:   outcome{proofOnly: true, timestamped: true},
	}, {
		name:   "inclusion proof without promise, no timestamp",
		stores: []store{referrersAPI, referrersTag},
		setup: func(t *testing.T, e *kenv) {
			e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{NoInclusionPromise: true})
		},
		signer: ciSigner(policy.TLogRequired),
		want:   outcome{reason: q(`the transparency log entry has no signed integrated time (inclusion proof only), and no RFC 3161 timestamp proves when the certificate was used`)},
	}, {
		name:   "keyless signature under a key signer",
		setup:  func(t *testing.T, e *kenv) { e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{Timestamp: true}) },
		signer: testKey(t, verifiertest.ECDSAP256, 0).PolicySigner("ci"),
		want:   outcome{reason: q(`signed with a certificate (keyless), not this key`)},
	}, {
		name:   "Rekor intoto v0.0.1 entry",
		stores: []store{sigTag},
		setup: func(t *testing.T, e *kenv) {
			payload := verifiertest.SimpleSigningPayload(e.u.repo, e.desc.Digest)
			ann, err := e.ss.LegacyKeylessAnnotations(payload, releaseID, verifiertest.KeylessOptions{Timestamp: true})
			must(t, err)
			ann[verifiertest.AnnotationRekorBundle] = intotoV001Bundle(t)
			must(t, verifiertest.WriteLegacyLayer(t.Context(), e.u.repo, e.desc.Digest, payload, ann))
		},
		signer: ciSigner(policy.TLogRequired),
		want:   outcome{reason: q(`no transparency log entry (its Rekor entry is of type intoto v0.0.1 (cosign before v2.2), which pullgate cannot verify)`)},
	}, {
		name:   "Rekor intoto v0.0.1 entry, tlog skip",
		stores: []store{sigTag},
		setup: func(t *testing.T, e *kenv) {
			payload := verifiertest.SimpleSigningPayload(e.u.repo, e.desc.Digest)
			ann, err := e.ss.LegacyKeylessAnnotations(payload, releaseID, verifiertest.KeylessOptions{Timestamp: true})
			must(t, err)
			ann[verifiertest.AnnotationRekorBundle] = intotoV001Bundle(t)
			must(t, verifiertest.WriteLegacyLayer(t.Context(), e.u.repo, e.desc.Digest, payload, ann))
		},
		signer: ciSigner(policy.TLogSkip),
		want:   outcome{timestamped: true},
	}}
	for _, tt := range tests {
		stores := tt.stores
		if stores == nil {
			stores = allStores
		}
		for _, l := range stores {
			t.Run(tt.name+"/"+string(l), func(t *testing.T) {
				t.Parallel()
				e := newKenv(t, l)
				tt.setup(t, e)
				var tm root.TrustedMaterial = e.ss.TrustedRoot()
				if tt.root != nil {
					tm = tt.root(t, e)
				}
				opts := []verifier.Option{verifier.WithTrustedMaterial("", tm)}
				if !tt.sct {
					opts = append(opts, verifier.WithoutSCTsUnsafe())
				}
				got, err := newVerifier(t, opts...).Verify(t.Context(), e.u.src, imageOf(e.desc), keyRule(1, tt.signer))
				must(t, err)
				checkOutcome(t, got, tt.want, "ci", tt.signer)
			})
		}
	}
}

// reasonBadSignature is the reason for a signature that does not verify
// with its certificate's key.
const reasonBadSignature = "signature does not verify with the certificate's key (signature or payload altered)"

// checkOutcome checks a one-signer, one-signature verdict.
func checkOutcome(t *testing.T, got *verifier.Verdict, want outcome, signer string, sg *policy.Signer) {
	t.Helper()
	if want.reason != "" {
		if got.Allowed || len(got.Reasons) != 1 {
			t.Fatalf("verdict allowed=%v reasons=%q, want one denial reason matching %s", got.Allowed, got.Reasons, want.reason)
		}
		prefix := fmt.Sprintf("no valid signature from signer %q (1 signature found: ", signer)
		r, ok := strings.CutPrefix(got.Reasons[0], prefix)
		r, ok2 := strings.CutSuffix(r, ")")
		if !ok || !ok2 || !regexp.MustCompile(want.reason).MatchString(r) {
			t.Errorf("reason = %q\nwant %s%s)", got.Reasons[0], prefix, want.reason)
		}
		if len(got.Evidence) != 0 {
			t.Errorf("denial with evidence %+v", got.Evidence)
		}
		return
	}
	if !got.Allowed || len(got.Evidence) != 1 {
		t.Fatalf("verdict allowed=%v reasons=%q evidence=%+v, want allowed with one piece of evidence", got.Allowed, got.Reasons, got.Evidence)
	}
	ev := got.Evidence[0]
	if ev.Signer != signer || ev.Identity == "" || ev.Issuer == "" {
		t.Errorf("evidence %+v: want signer %q with identity and issuer", ev, signer)
	}
	if sg.Keyless.Subject != "" && ev.Identity != sg.Keyless.Subject {
		t.Errorf("evidence identity %q, want %q", ev.Identity, sg.Keyless.Subject)
	}
	if want.proofOnly {
		if ev.LogIndex <= 1000 || !ev.IntegratedTime.IsZero() {
			t.Errorf("evidence logIndex %d integratedTime %v, want an entry without integrated time", ev.LogIndex, ev.IntegratedTime)
		}
	} else if want.logged != (ev.LogIndex > 1000) || want.logged != !ev.IntegratedTime.IsZero() {
		t.Errorf("evidence logIndex %d integratedTime %v, want logged=%v", ev.LogIndex, ev.IntegratedTime, want.logged)
	}
	if !want.logged && !want.proofOnly && ev.LogIndex != -1 {
		t.Errorf("evidence logIndex %d, want -1", ev.LogIndex)
	}
	if want.timestamped == ev.SignedTimestamp.IsZero() {
		t.Errorf("evidence signed timestamp %v, want timestamped=%v", ev.SignedTimestamp, want.timestamped)
	}
	if d := time.Since(ev.IntegratedTime); want.logged && (d < -time.Minute || d > time.Hour) {
		t.Errorf("integrated time %v is not about now", ev.IntegratedTime)
	}
}

// signWithKey signs e.desc with key in e's store.
func signWithKey(t *testing.T, e *kenv, key *verifiertest.Key) {
	t.Helper()
	if e.store == sigTag {
		must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, key))
		return
	}
	must(t, verifiertest.SignBundle(t.Context(), e.u.repo, e.desc, key))
}

// tamperStatement changes the signed statement of a bundle, keeping its
// subject: the signature no longer covers it.
func tamperStatement(t *testing.T, bundleJSON []byte) []byte {
	t.Helper()
	var pb protobundle.Bundle
	must(t, protojson.Unmarshal(bundleJSON, &pb))
	env := pb.GetDsseEnvelope()
	var stmt map[string]any
	must(t, json.Unmarshal(env.Payload, &stmt))
	stmt["predicate"] = map[string]any{"approved": "yes"}
	var err error
	env.Payload, err = json.Marshal(stmt)
	must(t, err)
	b, err := protojson.Marshal(&pb)
	must(t, err)
	return b
}

// intotoV001Bundle is a Rekor bundle annotation whose entry is of type
// intoto v0.0.1, as cosign before v2.2 logged attestations.
func intotoV001Bundle(t *testing.T) string {
	t.Helper()
	body := base64.StdEncoding.EncodeToString([]byte(`{"apiVersion":"0.0.1","kind":"intoto","spec":{"content":{"hash":{"algorithm":"sha256","value":"00"}}}}`))
	b, err := json.Marshal(map[string]any{
		"SignedEntryTimestamp": base64.StdEncoding.EncodeToString([]byte("not a real SET")),
		"Payload":              map[string]any{"body": body, "integratedTime": time.Now().Unix(), "logIndex": 1, "logID": strings.Repeat("ab", 32)},
	})
	must(t, err)
	return string(b)
}
