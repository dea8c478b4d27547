package verifier

// Keyless (Fulcio certificate) signers: the sigstore-go verifier and
// certificate identity built from a policy.Keyless, per trusted root.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/pullgate/pullgate/policy"
)

// keylessCheck builds (or reuses) the check for a keyless signer against
// the trusted root it names.
//
// The sigstore-go verifier requires, for every signature:
//   - a certificate chaining to a Fulcio CA of the root, valid at every
//     verified signing time (never at the current time);
//   - one observer timestamp proving that time: the integrated time of a
//     transparency log entry with a verified inclusion promise, or an
//     RFC 3161 timestamp from a timestamp authority of the root;
//   - one SCT from a CT log of the root, when the root has CT logs
//     (unless [WithoutSCTsUnsafe]);
//   - with tlog: required, one log entry verified against the root's
//     Rekor keys (inclusion promise or inclusion proof); with optional,
//     the same when the signature carries an entry of a log the root
//     knows; with skip, entries are ignored and only an RFC 3161
//     timestamp can prove the signing time;
//   - the certificate identity: issuer, subject and extensions, with
//     regular expressions anchored to match whole values.
func (s *Sigstore) keylessCheck(sg *policy.Signer, snap *trustSnapshot) *signerCheck {
	k := sg.Keyless
	id := keylessIdentity(k)
	st := snap.get(k.TrustRoot)
	label := rootLabel(k.TrustRoot)
	switch {
	case !st.configured && k.TrustRoot == "":
		return &signerCheck{identity: id, unsupported: "keyless signer needs a trusted root (set trustedRoot or tuf), and none is configured"}
	case !st.configured:
		return &signerCheck{identity: id, unsupported: label + " is not configured"}
	case st.tm == nil:
		return &signerCheck{identity: id, unsupported: label + " is not available yet"}
	case len(st.tm.FulcioCertificateAuthorities()) == 0:
		return &signerCheck{identity: id, unsupported: label + " has no Fulcio certificate authority"}
	case sg.TLog == policy.TLogRequired && len(st.tm.RekorLogs()) == 0:
		return &signerCheck{identity: id, unsupported: "tlog: required, but " + label + " has no transparency log (Rekor) key"}
	}
	sct := len(st.tm.CTLogs()) > 0 && !s.cfg.noSCT
	cacheKey := fmt.Sprintf("%s|%s|%t|%s", id, sg.TLog, sct, st.gen)
	return s.cached(cacheKey, func() *signerCheck {
		c, err := newKeylessCheck(k, sg.TLog, st, sct)
		if err != nil {
			return &signerCheck{identity: id, unsupported: firstLine(err)}
		}
		c.identity = id
		return c
	})
}

func newKeylessCheck(k *policy.Keyless, tlog policy.TLogPolicy, st trustState, sct bool) (*signerCheck, error) {
	certID, err := certificateIdentity(k)
	if err != nil {
		return nil, err
	}
	// The verifier parses verified statements itself (attestations), so
	// sigstore-go need not build the predicate.
	opts := []verify.VerifierOption{verify.WithObserverTimestamps(1), verify.WithoutStatementPredicate()}
	if sct {
		opts = append(opts, verify.WithSignedCertificateTimestamps(1))
	}
	c := &signerCheck{
		keyless: k, tlog: tlog, rootName: k.TrustRoot, gen: st.gen, tm: st.tm,
		policy: []verify.PolicyOption{verify.WithCertificateIdentity(certID)},
	}
	if tlog != policy.TLogSkip && len(st.tm.RekorLogs()) > 0 {
		if c.withLog, err = verify.NewVerifier(st.tm, append(slices.Clip(opts), verify.WithTransparencyLog(1))...); err != nil {
			return nil, fmt.Errorf("build verifier: %w", err)
		}
	}
	if tlog != policy.TLogRequired {
		if c.noLog, err = verify.NewVerifier(st.tm, opts...); err != nil {
			return nil, fmt.Errorf("build verifier: %w", err)
		}
	}
	return c, nil
}

// certificateIdentity returns the sigstore-go identity for k. Regular
// expressions are always the anchored forms ([policy.Keyless.SubjectPattern],
// [policy.Keyless.IssuerPattern]): sigstore-go matches unanchored, and a
// pattern written as myorg must not accept evil/myorg-lookalike.
func certificateIdentity(k *policy.Keyless) (verify.CertificateIdentity, error) {
	if k.Subject == "" && k.SubjectRegExp == "" {
		return verify.CertificateIdentity{}, fmt.Errorf("keyless signer has neither subject nor subjectRegExp")
	}
	if k.Issuer == "" && k.IssuerRegExp == "" {
		return verify.CertificateIdentity{}, fmt.Errorf("keyless signer has neither issuer nor issuerRegExp")
	}
	san, err := verify.NewSANMatcher(k.Subject, k.SubjectPattern())
	if err != nil {
		return verify.CertificateIdentity{}, fmt.Errorf("subjectRegExp: %w", err)
	}
	iss, err := verify.NewIssuerMatcher(k.Issuer, k.IssuerPattern())
	if err != nil {
		return verify.CertificateIdentity{}, fmt.Errorf("issuerRegExp: %w", err)
	}
	ext, err := certificateExtensions(k.Extensions)
	if err != nil {
		return verify.CertificateIdentity{}, err
	}
	return verify.NewCertificateIdentity(san, iss, ext)
}

// certificateExtensions converts the policy's extensions (keyed by the
// JSON names of certificate.Extensions) into the sigstore-go struct,
// refusing names it does not know rather than ignoring them.
func certificateExtensions(m map[string]string) (certificate.Extensions, error) {
	var ext certificate.Extensions
	if len(m) == 0 {
		return ext, nil
	}
	if _, ok := m["issuer"]; ok {
		return ext, fmt.Errorf("extension issuer: use issuer or issuerRegExp")
	}
	for name, v := range m {
		if v == "" {
			return ext, fmt.Errorf("extension %s has an empty value", name)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return ext, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ext); err != nil {
		return ext, fmt.Errorf("unknown certificate extension: %s", firstLine(err))
	}
	return ext, nil
}

// keylessIdentity identifies a keyless signer for threshold counting:
// two signers with the same trusted root, issuer, subject and
// extensions are one party.
func keylessIdentity(k *policy.Keyless) string {
	var b strings.Builder
	fmt.Fprintf(&b, "keyless:%q|%q|%q|%q|%q", k.TrustRoot, k.Issuer, k.IssuerRegExp, k.Subject, k.SubjectRegExp)
	names := make([]string, 0, len(k.Extensions))
	for n := range k.Extensions {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, "|%q=%q", n, k.Extensions[n])
	}
	return b.String()
}
