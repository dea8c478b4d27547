// Package verifier decides whether one image manifest digest is trusted
// under one [policy.Rule], by discovering and verifying its cosign
// signatures with sigstore-go.
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
//   - the legacy signature image sha256-<hex>.sig that cosign v2 writes.
//
// Every manifest and blob is hashed by the verifier and compared with
// the digest that named it. Legacy signatures are converted into v0.1
// Sigstore bundles and verified over the exact fetched payload, whose
// simple-signing claims must name D. Bundles must be DSSE in-toto
// statements about D; they count as signatures only when the verified
// statement's predicate type is https://sigstore.dev/cosign/sign/v1
// (other predicate types are attestations).
//
// # Guarantees
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
// identity and trusted root. An error means "could not decide" (a fetch
// failed, or the context ended), never "denied" and never "allowed"; the
// caller must not cache it as a denial. Broken, oversize or mismatched
// signature material is a rejected candidate, reported in the denial
// reasons, never an error and never an allow. Verification does no I/O
// but through the [Source]: no TUF, Rekor or other network call.
//
// What the verifier cannot enforce (attestation requirements; signers
// whose trusted root is not configured or lacks what they need) is
// reported by [Check] and [Sigstore.Check] so the proxy can refuse to
// start; Verify fails closed on it.
package verifier
