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
// Verify never returns a nil error with an allowed verdict that did not
// meet the rule: an allow means at least Threshold distinct signers
// (signers sharing a key count once) each have a signature that
// sigstore-go verified against that signer's key. An error means "could
// not decide" (a fetch failed, or the context ended), never "denied" and
// never "allowed"; the caller must not cache it as a denial. Broken,
// oversize or mismatched signature material is a rejected candidate,
// reported in the denial reasons, never an error and never an allow.
//
// Features the verifier cannot enforce yet (keyless signers, attestation
// requirements, tlog: required) are reported by [Check] so the proxy can
// refuse to start; Verify fails closed on them.
package verifier
