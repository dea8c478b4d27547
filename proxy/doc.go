// Package proxy is pullgate's HTTP surface: a read-only OCI distribution
// server that fronts the configured upstream registries and serves only
// what verified.
//
// For every manifest request the proxy routes the name to a configured
// upstream (the ns query parameter, a registry path prefix, or the default
// registry: nothing else is ever contacted), resolves a tag to a digest
// itself, hashes the bytes it fetched, asks the policy which rule governs
// the image, and has the verifier decide on that digest — once per
// (policy generation, image, digest), shared by concurrent requests and
// cached. It then serves exactly the bytes whose digest was verified, or a
// 403 DENIED naming the image, digest, rule and reason.
//
// Invariants, each covered by a test:
//   - Fail closed: an error anywhere on the verification path is a denial
//     or a 5xx, never an allow; only an audit rule or unmatched: allow
//     serves unverified content, and the decision log says so.
//   - Serve what you verified: bytes are fetched once per request, hashed
//     locally, and served as hashed; upstream digest headers are hints.
//   - Blobs follow manifests: a blob is served only when a manifest of the
//     same image that was served references it, and a full blob is hashed
//     while it streams (a mismatch aborts the response).
//   - An index that verified covers its child manifests.
//   - Signature material (.sig/.att tags, referrer manifests, the referrers
//     tag index) is served when its subject verified, so cosign verify
//     works through pullgate; it never covers runnable content.
//   - Credentials never reach logs, errors or responses; handlers never
//     panic (a recover middleware turns a bug into a 500).
package proxy
