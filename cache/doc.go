// Package cache holds pullgate's in-memory caches and request coalescing.
//
// In the request flow it sits between the proxy and the verifier: the
// proxy asks a [Memory] for a verdict keyed by (policy generation, image,
// digest) before it verifies, and runs verification through a [Group] so
// that concurrent requests for the same digest share one verification.
//
// The package knows nothing about signatures or HTTP. Its guarantees:
// [Memory.Set] returns only once the entry is visible to [Memory.Get] (or
// reports that the cache refused it), entries expire after their TTL, and
// a panic inside coalesced work becomes an error instead of crashing the
// process.
package cache
