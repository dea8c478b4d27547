// Package policy is pullgate's configuration model: it parses and
// validates pullgate.yaml and decides which rule governs an image.
//
// In the request flow, policy comes right after the proxy has resolved a
// manifest to a digest: the proxy normalises the image name with
// [NormalizeImage] and asks [Config.Match] for the [Rule] that governs
// it; the cache and the verifier then work per (Config.Generation, image,
// digest) under that rule. [Config.Upstream] tells the proxy which
// registries it may contact at all.
//
// # Guarantees
//
//   - [Parse] is strict. Unknown keys (with a "did you mean" hint),
//     duplicate keys, values of the wrong YAML type, unknown enumeration
//     values, dangling references and credentials in URLs are errors, each
//     reported as file:line, all at once. A typo never weakens a policy.
//   - Zero configuration is safe. A nil or empty [Config] matches
//     nothing; [Config.Match] then returns an error wrapping [ErrNoRule],
//     which means deny unless the configuration says unmatched: allow.
//     Any other Match error, such as [ErrInvalidImage], means deny.
//   - Matching is deterministic. Parse rejects two rules whose patterns
//     have equal specificity and can match the same image, and Match
//     fails closed if it ever finds such a tie.
//   - A rule always requires something: a rule without signers must say
//     signatures.threshold: 0 explicitly.
//   - Attestation conditions are CEL expressions compiled by [Parse]
//     ([CompileCondition]): a condition that does not parse, does not
//     type-check or is not boolean is a configuration error at its line.
//     [Condition.Eval] is bounded by [ConditionCostLimit].
//   - The package does no network I/O and imports no HTTP code. The only
//     files it reads are public key files, through [WithReadFile].
//
// # Image patterns
//
// A pattern is "<registry>/<repository>" in which:
//
//   - "*" matches any run of characters other than "/" (possibly empty)
//     within one segment, in the registry as in the repository;
//   - "**" must be a whole repository segment and matches one or more
//     whole segments: "r/a/**" matches r/a/x and r/a/x/y but not r/a, and
//     "r/a/**/b" matches r/a/x/b and r/a/x/y/b but not r/a/b;
//   - the bare pattern "**" matches every image;
//   - the registry is normalised with [NormalizeRegistry] and must match
//     a configured upstream; on Docker Hub a single repository segment
//     other than "**" gets "library/" (docker.io/nginx means
//     docker.io/library/nginx, docker.io/* means docker.io/library/*);
//   - every other character must be valid in a name: lower-case letters,
//     digits, ".", "_" and "-"; the registry may add ":" and a port, and
//     may be an IPv6 address in brackets ("[fd00::1]:5000/apps/*").
//
// When several patterns match, the most specific wins: the one with the
// most literal characters (every character but "*", separators
// included), then the one with fewer "**" segments, then the one with
// fewer "*". So docker.io/library/nginx beats docker.io/library/* which
// beats docker.io/**, and an exact pattern beats every wildcard pattern
// that matches the same name.
package policy
