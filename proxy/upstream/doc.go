// Package upstream is pullgate's client for the registries it fronts.
//
// A [Client] talks to exactly one configured upstream. It authenticates
// the way registries expect (anonymous or Basic credentials turned into
// bearer tokens per repository, reused across requests and refreshed on
// 401), pins the configured URL scheme (an https upstream is never
// downgraded to http), and turns every non-2xx answer into a typed
// [*StatusError] with the registry's own error code. It never hashes,
// trusts or caches content: the proxy does that.
//
// Credentials are read from their files when a token is needed, never
// logged, and never part of an error.
package upstream
