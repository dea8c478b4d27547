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
//   - No response completes with bytes that did not verify: the last byte
//     of every blob response (a range's too) is held back until the whole
//     blob hashed to its digest.
//   - With a disk cache (WithBlobCache), concurrent requests for a blob
//     share one upstream GET and get its bytes as they arrive; the cache
//     keeps only blobs that verified. Concurrent requests for a manifest,
//     a tag (within cache.tagTTL) and a verification share one upstream
//     fetch or one verification.
//   - An upstream 429 is honoured (Retry-After, backoff) and reaches the
//     client as TOOMANYREQUESTS; it is never cached as a denial.
//   - An index that verified covers its child manifests.
//   - Signature material (.sig/.att tags, referrer manifests, the referrers
//     tag index) is served when its subject verified, so cosign verify
//     works through pullgate; it never covers runnable content.
//   - Credentials never reach logs, errors or responses; handlers never
//     panic (a recover middleware turns a bug into a 500).
package proxy
