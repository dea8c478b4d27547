// Package verifiertest writes cosign-shaped signatures into OCI
// registries and provides Sources and an in-memory registry, for tests
// in every package and for demos.
//
// The layouts are byte-compatible with what cosign writes:
//
//   - [SignLegacy]: cosign v2's default, the sha256-<hex>.sig image with
//     one simple-signing layer per signature;
//   - [SignBundle]: cosign v3's default (and v2 --new-bundle-format), a
//     Sigstore bundle v0.3 with a DSSE in-toto statement, stored as an OCI
//     1.1 referrer (or in the sha256-<hex> referrers tag on registries
//     without the referrers API);
//   - [AttestLegacy]: cosign v2's `cosign attest`, a DSSE envelope of an
//     in-toto v0.1 statement appended to the sha256-<hex>.att image
//     ([SignBundleWithPredicate] is cosign v3's attest).
//
// Keyless signatures come from a [Sigstore], an in-process Fulcio CA,
// Rekor log and timestamp authority built on sigstore-go's
// VirtualSigstore: [Sigstore.SignLegacyKeyless] writes a legacy .sig
// layer with certificate, chain, Rekor bundle (SET) and RFC 3161
// timestamp annotations; [Sigstore.SignBundleKeyless] a keyless bundle
// v0.3 (with inclusion promise and proof) as a referrer;
// [Sigstore.SignLegacyKeyWithLog] a key signature logged in its Rekor;
// [Sigstore.AttestLegacyKeyless] and [Sigstore.AttestLegacyKeyWithLog]
// the same for .att attestations (with [KeylessOptions.IntotoV001], logged
// as cosign before v2.2 did).
// [Sigstore.TrustedRoot] and [Sigstore.TrustedRootJSON] are the matching
// trust material; [GitHubWorkflow] builds a GitHub Actions identity.
// Its certificates carry no SCT (verify with SCT checks off, or with a
// root without CT logs). [KeylessOptions] leave out or break parts
// (no log entry, a tampered SET, a timestamp) for negative tests.
//
// Lower-level knobs ([SignLegacyPayload], [WriteLegacyLayer],
// [SignBundleWithPredicate], [SignBundleStatement],
// [WriteBundleReferrer]) write deliberately wrong material for negative
// tests. [NewRegistry] starts an in-memory registry, [RemoteSource] reads
// it as the verifier would, and [SourceFuncs] injects faults.
//
// The core functions do not need package testing; [StartRegistry] and
// [MustGenerateKey] are thin testing.TB wrappers. Nothing here talks to
// any network but the registry it is given.
package verifiertest
