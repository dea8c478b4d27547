package verifier

// Checking one candidate against one signer, and turning sigstore-go's
// failures into reasons a user can act on. Pure: no I/O.

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/pullgate/pullgate/policy"
)

// verified is what a successful check proves, for the evidence.
type verified struct {
	predicateType    string
	identity, issuer string
	logIndex         int64
	integratedTime   time.Time
	signedTime       time.Time
}

// Reasons a candidate fails a signer's check.
const (
	reasonOtherKey     = "signed by another key"
	reasonCertified    = "signed with a certificate (keyless), not this key"
	reasonKeySigned    = "signed with a key, not a Fulcio certificate (keyless)"
	reasonNoTlogEntry  = "no transparency log entry"
	reasonNoTimestamp  = "no transparency log entry or RFC 3161 timestamp proves when the certificate was used"
	reasonBadSignature = "signature does not verify with the certificate's key (signature or payload altered)"
	reasonLogMismatch  = "transparency log entry is for another signature or payload (signature or payload altered)"
)

// verify checks one prepared candidate against this signer as an image
// signature. It returns what the check proved, or a short reason why
// the candidate does not count as a signature by this signer, with the
// underlying error (for debug logs) when sigstore-go rejected it.
//
// Legacy signatures are verified over the exact fetched payload
// (WithArtifact); DSSE statements (bundles) are verified against the
// image digest (WithArtifactDigest), and count as a signature only when
// the verified statement's predicate type is cosign's signing predicate
// https://sigstore.dev/cosign/sign/v1. Any other predicate type is an
// attestation: it proves the signer said something about the image, not
// that the signer approved it for running, so it is not counted (it is
// evidence for attestation requirements, see [Sigstore.decideAttestations]).
func (sc *signerCheck) verify(c *candidate, dgst digest.Digest) (verified, string, error) {
	out, reason, err := sc.check(c, dgst)
	return asSignature(c, out, reason, err)
}

// asSignature classifies the outcome of [signerCheck.check] for an
// image signature requirement.
func asSignature(c *candidate, out verified, reason string, err error) (verified, string, error) {
	if reason != "" || c.payload != nil {
		return out, reason, err
	}
	if out.predicateType != cosignSignPredicateType {
		return out, fmt.Sprintf("attestation of type %s, not a signature", truncate(out.predicateType, 100)), nil
	}
	return out, "", nil
}

// check verifies one prepared candidate against this signer: the
// signature (over the exact payload, or the DSSE envelope whose
// statement must name dgst), the key or certificate identity, the log
// entry and timestamps the signer's policy asks for. It returns what
// the check proved (for DSSE statements, with the predicate type of the
// verified statement), or a reason it failed. It does not say what the
// candidate is good for: [signerCheck.verify] asks for a signature,
// attestation requirements for a statement of their predicate type.
func (sc *signerCheck) check(c *candidate, dgst digest.Digest) (verified, string, error) {
	out := verified{logIndex: -1}
	var artifact verify.ArtifactPolicyOption
	if c.payload != nil {
		artifact = verify.WithArtifact(bytes.NewReader(c.payload))
	} else {
		raw, err := hex.DecodeString(dgst.Encoded())
		if err != nil {
			return out, "invalid image digest", err
		}
		artifact = verify.WithArtifactDigest(string(digest.SHA256), raw)
	}
	entity := c.entity
	if sc.key && c.keyEntity != nil {
		entity = c.keyEntity
	}
	leaf := leafCertificate(entity)
	switch {
	case sc.keyless != nil && leaf == nil:
		return out, reasonKeySigned, nil
	case sc.key && leaf != nil:
		// A bundle signed with a certificate: key signers never accept
		// one (cosign verify --key does not either).
		return out, reasonCertified, nil
	}
	v, reason := sc.pick(entity)
	if reason != "" {
		return out, reason + c.tlogNote, nil
	}
	res, err := v.Verify(entity, verify.NewPolicy(artifact, sc.policy...))
	if err != nil {
		reason = sc.explain(entity, leaf, err)
		if sc.key && c.certified && (reason == reasonOtherKey || reason == reasonLogMismatch) {
			// Most likely a keyless signature: the certificate's key made
			// it, and the log entry names the certificate.
			reason = reasonCertified
		}
		if reason == reasonNoTlogEntry || reason == reasonNoTimestamp {
			reason += c.tlogNote
		}
		return out, reason, err
	}
	if res.Signature != nil && res.Signature.Certificate != nil {
		out.identity = res.Signature.Certificate.SubjectAlternativeName
		out.issuer = res.Signature.Certificate.Issuer
	}
	for _, ts := range res.VerifiedTimestamps {
		if ts.Type == "TimestampAuthority" && out.signedTime.IsZero() {
			out.signedTime = ts.Timestamp.UTC()
		}
	}
	if v == sc.withLog {
		out.logIndex, out.integratedTime = logEvidence(entity, sc.tm)
	}
	if c.payload != nil {
		return out, "", nil
	}
	if res.Statement == nil {
		return out, "bundle holds no in-toto statement", nil
	}
	out.predicateType = res.Statement.GetPredicateType()
	return out, "", nil
}

// pick chooses the sigstore-go verifier for entity by the tlog policy:
// required checks log entries, skip ignores them, and optional checks
// them when the entity carries an entry of a log the trusted root knows
// (entries of logs it does not know cannot be verified, and optional
// does not need one).
func (sc *signerCheck) pick(entity verify.SignedEntity) (*verify.Verifier, string) {
	switch sc.tlog {
	case policy.TLogRequired:
		return sc.withLog, ""
	case policy.TLogSkip:
		return sc.noLog, ""
	}
	if sc.withLog == nil {
		return sc.noLog, ""
	}
	entries, err := entity.TlogEntries()
	if err != nil {
		return nil, "transparency log entry cannot be read: " + firstLine(err)
	}
	logs := sc.tm.RekorLogs()
	for _, e := range entries {
		if _, ok := logs[logIDHex(e.LogKeyID())]; ok {
			return sc.withLog, ""
		}
	}
	return sc.noLog, ""
}

// explain turns a sigstore-go verification error into a reason a user
// can act on. sigstore-go's errors name the failing step but not what
// to do; the reasons name the certificate identity, the log, the time.
// The messages matched here are those of sigstore-go v1.3.0; an
// unmatched error is reported by its first line.
func (sc *signerCheck) explain(entity verify.SignedEntity, leaf *x509.Certificate, err error) string {
	msg := err.Error()
	var idErr *verify.ErrNoMatchingCertificateIdentity
	label := rootLabel(sc.rootName)
	switch {
	case errors.Is(err, verify.ErrDSSEInvalidSignatureCount):
		return "DSSE envelope must have exactly one signature"
	case strings.Contains(msg, "expected key signature, not certificate"),
		strings.Contains(msg, "must provide timestamp to verify certificate"):
		return reasonCertified
	case errors.As(err, &idErr) && leaf != nil && sc.keyless != nil:
		return identityReason(sc.keyless, leaf)
	case strings.Contains(msg, "integrated time outside certificate validity"):
		return expiredReason(leaf, entity, "logged")
	case strings.Contains(msg, "failed to verify log inclusion"):
		return sc.tlogReason(entity, msg)
	case strings.Contains(msg, "failed to verify timestamps"):
		return sc.timestampReason(entity)
	case strings.Contains(msg, "failed to verify leaf certificate"):
		return chainReason(leaf, sc.tm, label)
	case strings.Contains(msg, "failed to verify signed certificate timestamp"):
		return "certificate has no valid SCT from a CT log of " + label
	case strings.Contains(msg, "failed to verify signature"):
		if sc.key {
			return reasonOtherKey
		}
		return reasonBadSignature
	}
	return firstLine(err)
}

// tlogReason explains a failed transparency log check: sigstore-go
// skips entries whose log it does not know or whose inclusion promise
// fails, and then reports only that too few entries verified.
func (sc *signerCheck) tlogReason(entity verify.SignedEntity, msg string) string {
	switch {
	case strings.Contains(msg, "transparency log signature does not match"),
		strings.Contains(msg, "transparency log certificate does not match"),
		strings.Contains(msg, "does not match artifact"),
		strings.Contains(msg, "does not match envelope payload hash"):
		return reasonLogMismatch
	case strings.Contains(msg, "not enough verified log entries"):
		return diagnoseTlog(entity, sc.tm, rootLabel(sc.rootName))
	case strings.Contains(msg, "failed to retrieve transparency log entries"):
		return "transparency log entry cannot be read: " + truncate(msg[strings.LastIndex(msg, ": ")+2:], 120)
	}
	if strings.Contains(msg, "inclusion") || strings.Contains(msg, "checkpoint") {
		return "transparency log inclusion proof does not verify against the Rekor key of " + rootLabel(sc.rootName)
	}
	return "transparency log entry does not verify: " + truncate(msg, 160)
}

// diagnoseTlog says why no log entry of entity verified against tm.
func diagnoseTlog(entity verify.SignedEntity, tm root.TrustedMaterial, label string) string {
	entries, err := entity.TlogEntries()
	if err != nil {
		return "transparency log entry cannot be read: " + firstLine(err)
	}
	if len(entries) == 0 {
		return reasonNoTlogEntry
	}
	logs := tm.RekorLogs()
	for _, e := range entries {
		id := logIDHex(e.LogKeyID())
		if _, ok := logs[id]; !ok {
			return fmt.Sprintf("Rekor key not in %s (the entry's log ID is %s)", label, shortID(id))
		}
		if e.HasInclusionPromise() {
			if err := tlog.VerifySET(e, logs); err != nil {
				if strings.Contains(err.Error(), "not valid at payload integrated time") {
					return fmt.Sprintf("the Rekor key of %s was not valid at the entry's integrated time %s", label, e.IntegratedTime().UTC().Format(time.RFC3339))
				}
				return "transparency log inclusion promise (SET) does not verify against the Rekor key of " + label
			}
		}
	}
	return "transparency log entry does not verify against " + label
}

// timestampReason explains a missing or failed observer timestamp.
func (sc *signerCheck) timestampReason(entity verify.SignedEntity) string {
	ts, err := entity.Timestamps()
	if err == nil && len(ts) > 0 {
		return "RFC 3161 timestamp does not verify against the timestamp authorities of " + rootLabel(sc.rootName)
	}
	if sc.tlog != policy.TLogSkip && sc.tm != nil {
		if entries, err := entity.TlogEntries(); err == nil && len(entries) > 0 {
			why := diagnoseTlog(entity, sc.tm, rootLabel(sc.rootName))
			if !strings.HasPrefix(why, "transparency log entry does not verify") {
				// Optional log, with only entries of logs the root does not know.
				return why + ", and no RFC 3161 timestamp"
			}
			// The entry verified, but signs no time: an inclusion proof
			// without promise (Rekor v2 has no integrated time).
			return "the transparency log entry has no signed integrated time (inclusion proof only), and no RFC 3161 timestamp proves when the certificate was used"
		}
	}
	return reasonNoTimestamp
}

// identityReason says how the certificate's identity differs from the
// keyless signer's, e.g.
// `certificate identity https://github.com/evil/… (issuer https://token.actions.githubusercontent.com) does not match subjectRegExp ^https://github\.com/myorg/…$`.
func identityReason(k *policy.Keyless, leaf *x509.Certificate) string {
	sum, err := certificate.SummarizeCertificate(leaf)
	if err != nil {
		return "certificate has no usable identity: " + firstLine(err)
	}
	who := fmt.Sprintf("certificate identity %s (issuer %s)", truncate(sum.SubjectAlternativeName, 200), truncate(sum.Issuer, 120))
	switch {
	case k.Subject != "" && sum.SubjectAlternativeName != k.Subject:
		return fmt.Sprintf("%s does not match subject %s", who, k.Subject)
	case k.SubjectRegExp != "" && !fullMatch(k.SubjectPattern(), sum.SubjectAlternativeName):
		return fmt.Sprintf("%s does not match subjectRegExp %s%s", who, k.SubjectRegExp, partialHint(k.SubjectRegExp, sum.SubjectAlternativeName))
	case k.Issuer != "" && sum.Issuer != k.Issuer:
		return fmt.Sprintf("%s does not match issuer %s", who, k.Issuer)
	case k.IssuerRegExp != "" && !fullMatch(k.IssuerPattern(), sum.Issuer):
		return fmt.Sprintf("%s does not match issuerRegExp %s%s", who, k.IssuerRegExp, partialHint(k.IssuerRegExp, sum.Issuer))
	}
	if err := certificate.CompareExtensions(mustExtensions(k), sum.Extensions); err != nil {
		names := make([]string, 0, len(k.Extensions))
		for n := range k.Extensions {
			names = append(names, n)
		}
		slices.Sort(names)
		got := extensionValues(sum.Extensions)
		for _, n := range names {
			if got[n] != k.Extensions[n] {
				have := got[n]
				if have == "" {
					have = "none"
				}
				return fmt.Sprintf("%s has %s %s, not %s", who, n, truncate(have, 120), k.Extensions[n])
			}
		}
	}
	return who + " does not match the signer's identity"
}

// partialHint explains a pattern that matches part of the value but not
// all of it: identity patterns are anchored.
func partialHint(pattern, value string) string {
	re, err := regexp.Compile(pattern)
	if err == nil && re.MatchString(value) {
		return " (it matches only part of the value; patterns must match the whole value)"
	}
	return ""
}

func fullMatch(anchored, value string) bool {
	re, err := regexp.Compile(anchored)
	return err == nil && re.MatchString(value)
}

func mustExtensions(k *policy.Keyless) certificate.Extensions {
	ext, _ := certificateExtensions(k.Extensions)
	return ext
}

// extensionValues maps the JSON names of certificate.Extensions to the
// values in ext.
func extensionValues(ext certificate.Extensions) map[string]string {
	return map[string]string{
		"githubWorkflowTrigger":               ext.GithubWorkflowTrigger,
		"githubWorkflowSHA":                   ext.GithubWorkflowSHA,
		"githubWorkflowName":                  ext.GithubWorkflowName,
		"githubWorkflowRepository":            ext.GithubWorkflowRepository,
		"githubWorkflowRef":                   ext.GithubWorkflowRef,
		"buildSignerURI":                      ext.BuildSignerURI,
		"buildSignerDigest":                   ext.BuildSignerDigest,
		"runnerEnvironment":                   ext.RunnerEnvironment,
		"sourceRepositoryURI":                 ext.SourceRepositoryURI,
		"sourceRepositoryDigest":              ext.SourceRepositoryDigest,
		"sourceRepositoryRef":                 ext.SourceRepositoryRef,
		"sourceRepositoryIdentifier":          ext.SourceRepositoryIdentifier,
		"sourceRepositoryOwnerURI":            ext.SourceRepositoryOwnerURI,
		"sourceRepositoryOwnerIdentifier":     ext.SourceRepositoryOwnerIdentifier,
		"buildConfigURI":                      ext.BuildConfigURI,
		"buildConfigDigest":                   ext.BuildConfigDigest,
		"buildTrigger":                        ext.BuildTrigger,
		"runInvocationURI":                    ext.RunInvocationURI,
		"sourceRepositoryVisibilityAtSigning": ext.SourceRepositoryVisibilityAtSigning,
	}
}

// expiredReason explains a certificate that was not valid at the time a
// log entry (what = "logged") or timestamp proves.
func expiredReason(leaf *x509.Certificate, entity verify.SignedEntity, what string) string {
	if leaf == nil {
		return "certificate was not valid when the signature was " + what
	}
	at := ""
	if entries, err := entity.TlogEntries(); err == nil {
		for _, e := range entries {
			if t := e.IntegratedTime(); !t.IsZero() && (t.Before(leaf.NotBefore) || t.After(leaf.NotAfter)) {
				at = t.UTC().Format(time.RFC3339)
				break
			}
		}
	}
	valid := fmt.Sprintf("certificate valid %s to %s", leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	if at == "" {
		return fmt.Sprintf("certificate was not valid when the signature was %s (%s)", what, valid)
	}
	if t, _ := time.Parse(time.RFC3339, at); t.Before(leaf.NotBefore) {
		return fmt.Sprintf("certificate was not yet valid when the signature was %s at %s (%s)", what, at, valid)
	}
	return fmt.Sprintf("certificate expired before the signature was %s at %s (%s)", what, at, valid)
}

// chainReason explains a certificate that did not verify against the
// root's Fulcio CAs at the signing time: it chains at some time within
// its own validity (then the time was wrong), or it does not chain.
func chainReason(leaf *x509.Certificate, tm root.TrustedMaterial, label string) string {
	if leaf == nil {
		return "certificate does not verify"
	}
	c := *leaf
	// As sigstore-go does: Go does not handle the OtherName SAN that
	// Fulcio marks critical.
	c.UnhandledCriticalExtensions = slices.DeleteFunc(slices.Clone(c.UnhandledCriticalExtensions), func(o asn1.ObjectIdentifier) bool {
		return cryptoutils.SANOID.Equal(o)
	})
	mid := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	for _, ca := range tm.FulcioCertificateAuthorities() {
		if _, err := ca.Verify(&c, mid); err == nil {
			return fmt.Sprintf("certificate was not valid at the time an RFC 3161 timestamp proves (certificate valid %s to %s)",
				leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	issuer := leaf.Issuer.CommonName
	if issuer == "" {
		issuer = leaf.Issuer.String()
	}
	return fmt.Sprintf("certificate does not chain to a Fulcio CA of %s (issued by %q)", label, truncate(issuer, 120))
}

// logEvidence returns the index and integrated time of the first log
// entry of entity that tm's Rekor logs vouch for, after a verification
// that required one succeeded. The integrated time is zero when the
// entry has only an inclusion proof, which signs no time.
func logEvidence(entity verify.SignedEntity, tm root.TrustedMaterial) (int64, time.Time) {
	entries, err := entity.TlogEntries()
	if err != nil || tm == nil {
		return -1, time.Time{}
	}
	logs := tm.RekorLogs()
	for _, e := range entries {
		if _, ok := logs[logIDHex(e.LogKeyID())]; !ok {
			continue
		}
		if e.HasInclusionPromise() {
			if tlog.VerifySET(e, logs) == nil {
				return e.LogIndex(), e.IntegratedTime().UTC()
			}
			continue
		}
		if e.HasInclusionProof() {
			return e.LogIndex(), time.Time{}
		}
	}
	return -1, time.Time{}
}

// leafCertificate returns entity's certificate, or nil for keys.
func leafCertificate(entity verify.SignedEntity) *x509.Certificate {
	vc, err := entity.VerificationContent()
	if err != nil || vc == nil {
		return nil
	}
	return vc.Certificate()
}

// shortID shortens a hex log ID for messages.
func shortID(id string) string {
	if len(id) > 16 {
		return id[:16] + "…"
	}
	return id
}
