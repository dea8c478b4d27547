package verifier_test

import (
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/verifier"
	"github.com/pullgate/pullgate/verifier/verifiertest"
)

// TestVerifyKeyTLog covers the transparency-log policy of key signers:
// required (a key signature without a verified entry fails), optional
// (entries of logs the trusted root knows are verified; none is fine),
// and skip (entries are ignored).
func TestVerifyKeyTLog(t *testing.T) {
	t.Parallel()
	key := testKey(t, verifiertest.ECDSAP256, 0)
	signer := func(tlog policy.TLogPolicy) *policy.Signer {
		s := key.PolicySigner("release")
		s.TLog = tlog
		return s
	}
	logged := func(o verifiertest.KeylessOptions) func(t *testing.T, e *kenv) {
		return func(t *testing.T, e *kenv) {
			must(t, e.ss.SignLegacyKeyWithLog(t.Context(), e.u.repo, e.desc.Digest, key, o))
		}
	}
	alienLogged := func(t *testing.T, e *kenv) {
		must(t, e.alien.SignLegacyKeyWithLog(t.Context(), e.u.repo, e.desc.Digest, key, verifiertest.KeylessOptions{}))
	}
	unlogged := func(t *testing.T, e *kenv) {
		must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, key))
	}
	tests := []struct {
		name   string
		setup  func(t *testing.T, e *kenv)
		tlog   policy.TLogPolicy
		noRoot bool
		want   string // reason regexp; empty: allowed
		logged bool
	}{
		{name: "required, logged", setup: logged(verifiertest.KeylessOptions{}), tlog: policy.TLogRequired, logged: true},
		{name: "required, not logged", setup: unlogged, tlog: policy.TLogRequired, want: `^no transparency log entry$`},
		{name: "required, tampered SET", setup: logged(verifiertest.KeylessOptions{TamperSET: true}), tlog: policy.TLogRequired,
			want: `^` + q(`transparency log inclusion promise (SET) does not verify against the Rekor key of trusted root`) + `$`},
		{name: "required, unknown log", setup: alienLogged, tlog: policy.TLogRequired, want: `^Rekor key not in trusted root \(the entry's log ID is [0-9a-f]{16}…\)$`},
		{name: "optional, logged", setup: logged(verifiertest.KeylessOptions{}), tlog: policy.TLogOptional, logged: true},
		{name: "optional, not logged", setup: unlogged, tlog: policy.TLogOptional},
		{name: "optional, tampered SET", setup: logged(verifiertest.KeylessOptions{TamperSET: true}), tlog: policy.TLogOptional,
			want: q(`transparency log inclusion promise (SET) does not verify`)},
		{name: "optional, unknown log", setup: alienLogged, tlog: policy.TLogOptional},
		{name: "optional, no trusted root: entries are not checked", setup: logged(verifiertest.KeylessOptions{TamperSET: true}), tlog: policy.TLogOptional, noRoot: true},
		{name: "skip, tampered SET", setup: logged(verifiertest.KeylessOptions{TamperSET: true}), tlog: policy.TLogSkip},
		{name: "skip, logged: the entry is ignored", setup: logged(verifiertest.KeylessOptions{}), tlog: policy.TLogSkip},
		{name: "logged entry does not match the payload", tlog: policy.TLogRequired, setup: func(t *testing.T, e *kenv) {
			// The Rekor bundle of another signature by the same key.
			otherPayload := verifiertest.SimpleSigningPayload(e.u.repo, e.other.Digest)
			otherAnn, err := e.ss.LegacyKeyAnnotations(otherPayload, key, verifiertest.KeylessOptions{})
			must(t, err)
			payload := verifiertest.SimpleSigningPayload(e.u.repo, e.desc.Digest)
			ann, err := e.ss.LegacyKeyAnnotations(payload, key, verifiertest.KeylessOptions{NoTlog: true})
			must(t, err)
			ann[verifiertest.AnnotationRekorBundle] = otherAnn[verifiertest.AnnotationRekorBundle]
			must(t, verifiertest.WriteLegacyLayer(t.Context(), e.u.repo, e.desc.Digest, payload, ann))
		}, want: q(`transparency log entry is for another signature or payload (signature or payload altered)`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newKenv(t, sigTag)
			tt.setup(t, e)
			var opts []verifier.Option
			if !tt.noRoot {
				opts = append(opts, verifier.WithTrustedMaterial("", e.ss.TrustedRoot()))
			}
			got, err := newVerifier(t, opts...).Verify(t.Context(), e.u.src, imageOf(e.desc), keyRule(1, signer(tt.tlog)))
			must(t, err)
			if tt.want != "" {
				if got.Allowed || len(got.Reasons) != 1 || !regexp.MustCompile(tt.want).MatchString(strings.TrimSuffix(strings.TrimPrefix(got.Reasons[0], `no valid signature from signer "release" (1 signature found: `), ")")) {
					t.Fatalf("verdict allowed=%v reasons=%q, want a denial matching %s", got.Allowed, got.Reasons, tt.want)
				}
				return
			}
			if !got.Allowed || len(got.Evidence) != 1 {
				t.Fatalf("verdict allowed=%v reasons=%q, want allowed", got.Allowed, got.Reasons)
			}
			ev := got.Evidence[0]
			if tt.logged != (ev.LogIndex > 1000) || tt.logged == ev.IntegratedTime.IsZero() || ev.Identity != "" {
				t.Errorf("evidence %+v, want logged=%v and no identity", ev, tt.logged)
			}
		})
	}
}

// TestCheckTrust checks that configurations needing trusted material
// are refused without it, and accepted with it, both from the
// configuration alone (Check) and against a verifier's roots
// (Sigstore.Check).
func TestCheckTrust(t *testing.T) {
	t.Parallel()
	ss := verifiertest.MustNewSigstore(t)
	key := testKey(t, verifiertest.ECDSAP256, 0)
	keyRequired := key.PolicySigner("k")
	keyRequired.TLog = policy.TLogRequired
	ci := ciSigner(policy.TLogRequired)
	corp := ciSigner(policy.TLogRequired, func(k *policy.Keyless) { k.TrustRoot = "corp" })
	corp.Name = "corp-ci"
	badRE := ciSigner(policy.TLogRequired, func(k *policy.Keyless) { k.SubjectRegExp = "(" })
	badRE.Name = "bad"
	badExt := ciSigner(policy.TLogRequired, func(k *policy.Keyless) { k.Extensions = map[string]string{"nope": "x"} })
	badExt.Name = "ext"
	rule := func(signers ...*policy.Signer) []*policy.Rule {
		return []*policy.Rule{{Name: "apps", Signers: signers}}
	}
	noFulcio, err := root.NewTrustedRoot(root.TrustedRootMediaType01, nil, nil, nil, ss.TrustedRoot().RekorLogs())
	must(t, err)
	noRekor, err := root.NewTrustedRoot(root.TrustedRootMediaType01, ss.TrustedRoot().FulcioCertificateAuthorities(), nil, nil, nil)
	must(t, err)

	tests := []struct {
		name     string
		cfg      *policy.Config
		opts     []verifier.Option
		want     []string // Check
		wantSelf []string // Sigstore.Check
	}{{
		name: "no roots",
		cfg:  &policy.Config{Policies: rule(ci, keyRequired, corp)},
		want: []string{
			`signer "ci" in policy "apps": keyless signer needs a trusted root (set trustedRoot or tuf), and none is configured`,
			`signer "k" in policy "apps": tlog: required needs a trusted root with the transparency log's key (set trustedRoot or tuf), and none is configured`,
			`signer "corp-ci" in policy "apps": trusted root "corp" is not defined in trustRoots`,
		},
	}, {
		name: "roots configured and loaded",
		cfg:  &policy.Config{TrustedRoot: "/trusted_root.json", TrustRoots: map[string]string{"corp": "/corp.json"}, Policies: rule(ci, keyRequired, corp)},
		opts: []verifier.Option{verifier.WithTrustedMaterial("", ss.TrustedRoot()), verifier.WithTrustedMaterial("corp", ss.TrustedRoot())},
	}, {
		name: "tuf counts as the default root; not available yet is not an error",
		cfg:  &policy.Config{TUF: &policy.TUF{Mirror: "https://tuf.example"}, Policies: rule(ci, keyRequired)},
		opts: []verifier.Option{verifier.WithTrustedRoot("", func() (root.TrustedMaterial, string) { return nil, "" })},
	}, {
		name:     "configured but not given to the verifier",
		cfg:      &policy.Config{TrustedRoot: "/trusted_root.json", TrustRoots: map[string]string{"corp": "/corp.json"}, Policies: rule(ci, corp)},
		opts:     []verifier.Option{verifier.WithTrustedMaterial("", ss.TrustedRoot())},
		wantSelf: []string{`signer "corp-ci" in policy "apps": trusted root "corp" is not configured`},
	}, {
		name: "roots lacking what signers need",
		cfg:  &policy.Config{TrustedRoot: "/trusted_root.json", TrustRoots: map[string]string{"corp": "/corp.json"}, Policies: rule(keyRequired, corp)},
		opts: []verifier.Option{verifier.WithTrustedMaterial("", noRekor), verifier.WithTrustedMaterial("corp", noFulcio)},
		wantSelf: []string{
			`signer "k" in policy "apps": tlog: required, but the trusted root has no transparency log (Rekor) key`,
			`signer "corp-ci" in policy "apps": trusted root "corp" has no Fulcio certificate authority`,
		},
	}, {
		name: "identities that cannot be built",
		cfg:  &policy.Config{TrustedRoot: "/trusted_root.json", Policies: rule(badRE, badExt)},
		opts: []verifier.Option{verifier.WithTrustedMaterial("", ss.TrustedRoot())},
		want: []string{
			"signer \"bad\" in policy \"apps\": subjectRegExp: error parsing regexp: missing closing ): `^(?:()$`",
			`signer "ext" in policy "apps": unknown certificate extension: json: unknown field "nope"`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, errLines(verifier.Check(tt.cfg))); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
			wantSelf := append(append([]string(nil), tt.want...), tt.wantSelf...)
			if len(wantSelf) == 0 {
				wantSelf = nil
			}
			v := newVerifier(t, tt.opts...)
			if diff := cmp.Diff(wantSelf, errLines(v.Check(tt.cfg))); diff != "" {
				t.Errorf("Sigstore.Check (-want +got):\n%s", diff)
			}
		})
	}
}

func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

// TestVerifyNamedTrustRoots checks that a keyless signer verifies only
// against the trusted root it names: a signature from the other root's
// Sigstore is rejected, and the evidence names the root.
func TestVerifyNamedTrustRoots(t *testing.T) {
	t.Parallel()
	corpSigner := ciSigner(policy.TLogRequired, func(k *policy.Keyless) { k.TrustRoot = "corp" })
	publicSigner := ciSigner(policy.TLogRequired)
	tests := []struct {
		name   string
		corp   bool // sign with the corp Sigstore
		signer *policy.Signer
		want   string
	}{
		{name: "corp signature, corp signer", corp: true, signer: corpSigner},
		{name: "public signature, corp signer", signer: corpSigner, want: `^Rekor key not in trusted root "corp" \(the entry's log ID is [0-9a-f]{16}…\)$`},
		{name: "public signature, default signer", signer: publicSigner},
		{name: "corp signature, default signer", corp: true, signer: publicSigner, want: `^Rekor key not in trusted root \(`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newKenv(t, sigTag)
			corp := e.alien
			signer := e.ss
			if tt.corp {
				signer = corp
			}
			e.sign(t, signer, releaseID, verifiertest.KeylessOptions{})
			v := newVerifier(t, verifier.WithTrustedMaterial("", e.ss.TrustedRoot()), verifier.WithTrustedMaterial("corp", corp.TrustedRoot()), verifier.WithoutSCTsUnsafe())
			got, err := v.Verify(t.Context(), e.u.src, imageOf(e.desc), keyRule(1, tt.signer))
			must(t, err)
			if tt.want != "" {
				checkOutcome(t, got, outcome{reason: tt.want}, "ci", tt.signer)
				return
			}
			checkOutcome(t, got, outcome{logged: true}, "ci", tt.signer)
			if want := tt.signer.Keyless.TrustRoot; got.Evidence[0].TrustRoot != want {
				t.Errorf("evidence trust root %q, want %q", got.Evidence[0].TrustRoot, want)
			}
		})
	}
}

// TestTrustedRootReload swaps the trusted material behind a
// TrustedMaterialFunc, as cmd's file watcher does: the generation
// changes, the new root takes effect on the next verification without
// rebuilding the verifier, and a root that becomes unavailable fails
// closed.
func TestTrustedRootReload(t *testing.T) {
	t.Parallel()
	e := newKenv(t, sigTag)
	e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{})
	type state struct {
		tm  root.TrustedMaterial
		gen string
	}
	var cur atomic.Pointer[state]
	cur.Store(&state{tm: e.alien.TrustedRoot(), gen: "alien"})
	v := newVerifier(t, verifier.WithTrustedRoot("", func() (root.TrustedMaterial, string) {
		s := cur.Load()
		return s.tm, s.gen
	}), verifier.WithoutSCTsUnsafe())
	rule := keyRule(1, ciSigner(policy.TLogRequired))
	verify := func() *verifier.Verdict {
		t.Helper()
		got, err := v.Verify(t.Context(), e.u.src, imageOf(e.desc), rule)
		must(t, err)
		return got
	}

	g1 := v.Generation()
	if g1 == "" || g1 != v.Generation() {
		t.Fatalf("Generation() = %q, then %q: want a stable non-empty value", g1, v.Generation())
	}
	if got := verify(); got.Allowed {
		t.Fatalf("allowed under a root that does not know the signer: %+v", got)
	}

	cur.Store(&state{tm: e.ss.TrustedRoot(), gen: "ss"})
	g2 := v.Generation()
	if g2 == g1 {
		t.Errorf("Generation() did not change after the root changed: %q", g2)
	}
	if got := verify(); !got.Allowed {
		t.Errorf("denied after the signer's root was loaded: %q", got.Reasons)
	}

	cur.Store(&state{})
	if g3 := v.Generation(); g3 == g2 || g3 == g1 {
		t.Errorf("Generation() = %q for an unavailable root, want a new value", g3)
	}
	got := verify()
	want := []string{"1 distinct signer(s) required but only 0 can be verified", `signer "ci": trusted root is not available yet`}
	if diff := cmp.Diff(want, got.Reasons); got.Allowed || diff != "" {
		t.Errorf("unavailable root: allowed=%v, reasons (-want +got):\n%s", got.Allowed, diff)
	}
}

func TestGenerationWithoutRoots(t *testing.T) {
	t.Parallel()
	if g := newVerifier(t).Generation(); g != "" {
		t.Errorf("Generation() without trusted roots = %q, want empty", g)
	}
	ss := verifiertest.MustNewSigstore(t)
	a := newVerifier(t, verifier.WithTrustedMaterial("", ss.TrustedRoot())).Generation()
	b := newVerifier(t, verifier.WithTrustedMaterial("", ss.TrustedRoot())).Generation()
	c := newVerifier(t, verifier.WithTrustedMaterial("corp", ss.TrustedRoot())).Generation()
	if a == "" || a != b || a == c {
		t.Errorf("Generation() of the same root = %q and %q (want equal), under another name %q (want different)", a, b, c)
	}
}

// TestThresholdKeylessAndKey requires a keyless and a key signature.
func TestThresholdKeylessAndKey(t *testing.T) {
	t.Parallel()
	e := newKenv(t, sigTag)
	key := testKey(t, verifiertest.ECDSAP256, 0)
	e.sign(t, e.ss, releaseID, verifiertest.KeylessOptions{})
	must(t, verifiertest.SignLegacy(t.Context(), e.u.repo, e.desc.Digest, key))
	ci, again := ciSigner(policy.TLogRequired), ciSigner(policy.TLogRequired)
	again.Name = "ci-again"
	v := newVerifier(t, verifier.WithTrustedMaterial("", e.ss.TrustedRoot()), verifier.WithoutSCTsUnsafe())

	got, err := v.Verify(t.Context(), e.u.src, imageOf(e.desc), keyRule(2, ci, key.PolicySigner("release")))
	must(t, err)
	if !got.Allowed || len(got.Evidence) != 2 {
		t.Errorf("keyless + key, threshold 2: allowed=%v reasons=%q evidence=%d", got.Allowed, got.Reasons, len(got.Evidence))
	}
	got, err = v.Verify(t.Context(), e.u.src, imageOf(e.desc), keyRule(2, ci, again))
	must(t, err)
	want := []string{"2 distinct signer(s) required but only 1 can be verified", `signers "ci", "ci-again" share one keyless identity and count once`}
	if diff := cmp.Diff(want, got.Reasons); got.Allowed || diff != "" {
		t.Errorf("two signers with one keyless identity, threshold 2: allowed=%v, reasons (-want +got):\n%s", got.Allowed, diff)
	}
}
