// Package cache holds pullgate's caches and request coalescing.
//
// In the request flow it sits behind the proxy: the proxy asks a [Map]
// for a verdict keyed by (policy generation, image, digest) before it
// verifies, runs verification through a [Group] so that concurrent
// requests for the same digest share one verification, keeps manifests
// by digest in a [Memory] (ristretto, cost = bytes), and keeps blobs in a
// [Disk].
//
// The package knows nothing about signatures or HTTP. Its guarantees:
//   - [Memory.Set] returns only once the entry is visible to [Memory.Get]
//     (or reports that the cache refused it); [Map.Set] is visible at once.
//     Entries expire after their TTL.
//   - A [Map] holds a keyed 128-bit hash of each key, never the key, so
//     100,000 verdicts take a few MiB.
//   - [Disk] serves only content whose digest this process verified: a
//     blob is written to a temporary file, hashed as it is written, and
//     renamed into place only after it matched; files found at start are
//     hashed on first use; a corrupt one is removed, never served. Its
//     size stays within its bound (least recently used first), and it
//     survives restarts.
//   - A [Writer] can be followed while it writes: readers get the bytes
//     as they arrive and learn whether they verified.
//   - A panic inside coalesced work becomes an error instead of crashing
//     the process.
package cache
