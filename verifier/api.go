package verifier

import (
	"context"
	"errors"
	"time"

	"github.com/opencontainers/go-digest"
)

// ErrNotFound is returned (wrapped) by a [Source] when the registry
// answers that the manifest, tag or blob does not exist.
var ErrNotFound = errors.New("not found")

// ErrReferrersUnsupported is returned (wrapped) by [Source.Referrers]
// when the registry has no OCI 1.1 referrers API (it answered 404, 400,
// 405 or 406, or with a Content-Type other than an OCI image index).
var ErrReferrersUnsupported = errors.New("referrers API not supported")

// ErrTooLarge is returned (wrapped) by a [Source] when a body is larger
// than the maxBytes the caller allowed. The verifier treats it as broken
// signature material (that candidate is rejected with a reason), not as
// a fault: an oversize signature is an upstream's permanent state, and
// retrying it would only repeat the failure. A Source that reports
// oversize bodies with some other error makes the verifier return an
// error instead, which is also safe (never an allow).
var ErrTooLarge = errors.New("body too large")

// Source fetches signature material from one repository of one
// registry. It is the verifier's only contact with the network; the
// proxy implements it over its upstream client.
//
// Every method returns an error wrapping [ErrNotFound] when the registry
// says the thing does not exist, an error wrapping [ErrTooLarge] when a
// body exceeds maxBytes, and any other error for faults (timeouts, 5xx,
// 429). The verifier treats ErrNotFound as "no signature here",
// ErrTooLarge as a rejected signature, and every other error as "cannot
// decide", never as an allow.
type Source interface {
	// Manifest returns the exact bytes and the media type of the manifest
	// that reference (a tag or a "sha256:…" digest) names. Bodies larger
	// than maxBytes are an error. The caller hashes the bytes itself.
	Manifest(ctx context.Context, reference string, maxBytes int64) (body []byte, mediaType string, err error)
	// Blob returns the bytes of blob dgst. Bodies larger than maxBytes
	// are an error. The caller hashes the bytes itself.
	Blob(ctx context.Context, dgst digest.Digest, maxBytes int64) ([]byte, error)
	// Referrers returns the raw OCI image index the registry's referrers
	// API gives for dgst, or an error wrapping [ErrReferrersUnsupported]
	// when the registry has no referrers API.
	Referrers(ctx context.Context, dgst digest.Digest, maxBytes int64) ([]byte, error)
}

// Image names the manifest being verified.
type Image struct {
	// Name is "<registry>/<repository>", normalised (docker.io/library/nginx).
	Name string
	// Digest is the manifest digest, computed by the caller over the
	// bytes it will serve.
	Digest digest.Digest
}

// String returns name@digest, or the name alone when there is no digest.
func (i Image) String() string {
	if i.Digest == "" {
		return i.Name
	}
	return i.Name + "@" + i.Digest.String()
}

// Layout names where a piece of signature material was found.
type Layout string

const (
	// LayoutSigTag is a legacy cosign signature image tagged sha256-<hex>.sig.
	LayoutSigTag Layout = "sig-tag"
	// LayoutAttTag is a legacy cosign attestation image tagged
	// sha256-<hex>.att (one DSSE envelope per layer). It is read only
	// for rules with attestation requirements.
	LayoutAttTag Layout = "att-tag"
	// LayoutReferrersAPI is a Sigstore bundle found through the OCI 1.1
	// referrers API.
	LayoutReferrersAPI Layout = "referrers-api"
	// LayoutReferrersTag is a Sigstore bundle found through the referrers
	// tag schema (the sha256-<hex> index), for registries without the API.
	LayoutReferrersTag Layout = "referrers-tag"
)

// Verdict is the outcome of verifying one image digest under one rule.
type Verdict struct {
	Image  Image
	Policy string
	// Allowed is true when the rule's requirements are met.
	Allowed bool
	// Reasons explain a denial in words a user can act on, e.g.
	// `no signature from signer "release-key"`. Empty when allowed.
	Reasons []string
	// Evidence lists the verified signatures and attestations that
	// satisfied the rule: first the signatures (by signer, in the rule's
	// order), then the statements that satisfied each attestation
	// requirement (Requirement set; in the rule's order). On a denial it
	// lists those that verified but were not enough (e.g. one signer of a
	// threshold of two, or the signatures of an image whose attestation
	// is missing).
	Evidence []Evidence
	// Duration is how long verification took.
	Duration time.Duration
}

// Evidence is one verified signature or attestation.
type Evidence struct {
	// Signer is the policy name of the signer whose signature verified.
	Signer string
	// Layout says where the material was found.
	Layout Layout
	// Artifact is the digest of the manifest that carried the material
	// (the .sig image, or the referrer manifest).
	Artifact digest.Digest
	// PredicateType is the in-toto predicate type, for DSSE material,
	// read from the verified statement.
	PredicateType string
	// Requirement is set on the evidence of an attestation requirement
	// (see [policy.Attestation]): it is the requirement's predicate type,
	// which the statement satisfied. It is empty on signature evidence.
	// A statement that satisfies several requirements is listed once for
	// each.
	Requirement string
	// Condition is the requirement's CEL condition that held for the
	// statement, on one line (runs of white space, such as the newlines
	// of a YAML block, collapsed into one space), or empty when the
	// requirement has none (and on signature evidence).
	Condition string
	// Identity and Issuer are the certificate identity (the subject
	// alternative name: an e-mail address or a URI such as a GitHub
	// workflow) and the OIDC issuer of keyless signatures, as the Fulcio
	// certificate that satisfied the rule states them. Empty for keys.
	Identity string
	Issuer   string
	// LogIndex and IntegratedTime identify the transparency log entry
	// that was verified, if any: LogIndex is -1 when no entry was
	// verified (the signer's tlog is skip, or optional and the signature
	// has none). IntegratedTime is the time the log promised (its signed
	// entry timestamp); it is zero when the entry has only an inclusion
	// proof, which carries no signed time.
	LogIndex       int64
	IntegratedTime time.Time
	// SignedTimestamp is the time an RFC 3161 timestamp authority of the
	// trusted root vouched for, when one was verified (keyless only).
	SignedTimestamp time.Time
	// TrustRoot names the trusted root the evidence was verified
	// against: a key of the configuration's trustRoots, or "" for the
	// default trustedRoot (and for key signatures checked without one).
	TrustRoot string
}
