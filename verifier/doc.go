// Package verifier decides whether one image manifest digest is trusted
// under one [policy.Rule], by discovering and verifying its cosign
// signatures and attestations with sigstore-go.
//
// # Where it sits
//
// The proxy resolves a request to a digest over bytes it hashed itself,
// asks the policy which rule governs the image, and, on a cache miss,
// calls [Sigstore.Verify] with a [Source] for the image's repository (or
// the rule's signature repository). The verifier knows nothing about
// HTTP: the Source is its only contact with the network, and it returns
// a [Verdict] (allow or deny, with reasons and evidence) that the proxy
// serves, caches and logs.
//
// # What it reads
//
// For digest D = sha256:<hex>, concurrently and bounded by
// [policy.Limits]:
//
//   - the OCI 1.1 referrers of D (the referrers API, or, for registries
//     without it, the referrers tag sha256-<hex>): Sigstore bundles as
//     cosign v3 (and v2 --new-bundle-format) writes them, and cosign v2's
//     experimental simple-signing referrers;
//   - the legacy signature image sha256-<hex>.sig that cosign v2 writes
//     (for rules that require signatures);
//   - the legacy attestation image sha256-<hex>.att that cosign v2's
//     `cosign attest` writes, one DSSE envelope per layer (only for rules
//     with attestation requirements).
//
// Every manifest and blob is hashed by the verifier and compared with
// the digest that named it. Legacy signatures are converted into v0.1
// Sigstore bundles and verified over the exact fetched payload, whose
// simple-signing claims must name D. Legacy attestations are converted
// into v0.1 bundles holding their DSSE envelope. Bundles and attestations
// must be DSSE in-toto statements about D (exactly one DSSE signature,
// a subject naming D); one discovery pass serves both purposes, and what
// verified is sorted afterwards by the predicate type of the verified
// statement (never an annotation): https://sigstore.dev/cosign/sign/v1
// statements are signatures; every statement is evidence for the
// attestation requirements of its type.
//
// # Attestations
//
// Each [policy.Attestation] of a rule must be satisfied by at least one
// statement that one of its signers verified, whose predicate type is the
// requirement's, whose subject names D (checked by sigstore-go and again
// on the verified statement), and for which its CEL condition
// ([policy.Condition]) is true. The condition sees the statement parsed
// strictly from the DSSE payload that verified (duplicate keys, invalid
// UTF-8, trailing data and excessive nesting are refused), and now is the
// time Verify started ([WithClock]). A false or failing condition does not
// satisfy the requirement; the denial names the predicate type and the
// condition. Legacy attestations whose Rekor entry is of type intoto
// v0.0.1 (cosign before v2.2) have that entry left out, so they count
// only for signers that do not need it (keys with tlog optional or
// skip); cosign v2's RFC 3161 timestamps of .att envelopes cover the
// envelope rather than the signature, do not verify, and are ignored.
// The evidence lists each statement that satisfied a requirement
// ([Evidence.Requirement]).
//
// # Signers and trust
//
// Key signers verify with their public key. Keyless signers verify a
// Fulcio certificate: it must chain to a Fulcio CA of the trusted root
// the signer names (a trusted_root.json, injected with
// [WithTrustedRoot]; the verifier never fetches trust material itself),
// be valid at the signing time proven by a transparency log entry's
// inclusion promise or an RFC 3161 timestamp (never the current time),
// carry an SCT when the root has CT logs, and certify the signer's
// issuer, subject and Fulcio extensions, with regular expressions
// anchored to match whole values. Transparency log entries are checked
// against the root's Rekor keys per the signer's tlog policy (required,
// optional: entries of logs the root knows must verify, skip). The
// evidence names the certificate identity, issuer, log index and
// integrated time that satisfied the rule.
//
// # Guarantees
//
// Verify never returns a nil error with an allowed verdict that did not
// meet the rule: an allow means at least Threshold distinct signers
// (signers sharing a key or keyless identity count once) each have a
// signature that sigstore-go verified against that signer's key or
// identity and trusted root, and every attestation requirement has a
// statement as described above. An error means "could not decide" (a fetch
// failed, or the context ended), never "denied" and never "allowed"; the
// caller must not cache it as a denial. Broken, oversize or mismatched
// signature material is a rejected candidate, reported in the denial
// reasons, never an error and never an allow. Verification does no I/O
// but through the [Source]: no TUF, Rekor or other network call.
//
// What the verifier cannot enforce (signers whose trusted root is not
// configured or lacks what they need; attestation requirements without
// signers or with a condition that does not compile) is reported by
// [Check] and [Sigstore.Check] so the proxy can refuse to start; Verify
// fails closed on it.
//
// # Bounds
//
// [policy.Limits] bound what one verification reads: MaxSignatures
// layers of each of .sig and .att, MaxSignatures referrers (sorted by
// digest), MaxSignatureBytes per payload, envelope or bundle, and
// MaxManifestBytes per manifest; excess material is skipped with a note
// in the denial reasons. Conditions are bounded by
// [policy.ConditionCostLimit] and by the context.
package verifier
