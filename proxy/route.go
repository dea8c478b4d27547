package proxy

import (
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/policy"
)

var (
	// repoPattern is the distribution-spec repository name grammar.
	repoPattern = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	// tagPattern is the distribution-spec tag grammar.
	tagPattern = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	// hostPattern is a registry host name with an optional port.
	hostPattern = regexp.MustCompile(`^(?:localhost|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$`)
)

// maxNameLength bounds a repository name (registry included).
const maxNameLength = 255

// target is a routed request: the upstream registry and repository a
// request name resolves to.
type target struct {
	registry string // configured registry name, e.g. docker.io
	repo     string // repository on that registry, e.g. library/nginx
	image    string // registry/repo, the name policies match
	ns       string // the ns parameter as sent, echoed in OCI-Namespace
}

// route resolves the repository name of a request path and its ns query
// parameter to a configured upstream. configured reports whether a
// (normalised) registry name is an upstream. Only configured registries
// are ever returned: an unknown ns or path prefix is refused (no SSRF).
func route(name, ns, defaultRegistry string, configured func(string) bool) (target, error) {
	if name == "" || len(name) > maxNameLength {
		return target{}, newError("NAME_INVALID", "invalid repository name %q", clip(name))
	}
	var t target
	switch {
	case ns != "":
		reg := policy.NormalizeRegistry(ns)
		if !hostPattern.MatchString(reg) {
			return target{}, newError("NAME_INVALID", "invalid ns parameter %q", clip(ns))
		}
		if !configured(reg) {
			if trimmed, ok := strings.CutSuffix(reg, ":443"); ok && configured(trimmed) {
				reg = trimmed
			} else {
				return target{}, newError("NAME_UNKNOWN", "registry %q (from ns) is not an upstream of this pullgate", clip(ns))
			}
		}
		t = target{registry: reg, repo: name, ns: ns}
	default:
		first, rest, hasRest := strings.Cut(name, "/")
		if hasRest && looksLikeHost(first) {
			reg := policy.NormalizeRegistry(first)
			if !hostPattern.MatchString(first) {
				return target{}, newError("NAME_INVALID", "invalid registry %q in repository name", clip(first))
			}
			if !configured(reg) {
				return target{}, newError("NAME_UNKNOWN", "registry %q is not an upstream of this pullgate", clip(first))
			}
			t = target{registry: reg, repo: rest}
			break
		}
		if defaultRegistry == "" {
			return target{}, newError("NAME_UNKNOWN", "%q names no registry and no defaultRegistry is configured: use <registry>/<repository> or the ns parameter", clip(name))
		}
		t = target{registry: defaultRegistry, repo: name}
	}
	if t.registry == "docker.io" && !strings.Contains(t.repo, "/") {
		t.repo = "library/" + t.repo
	}
	if !repoPattern.MatchString(t.repo) {
		return target{}, newError("NAME_INVALID", "invalid repository name %q", clip(t.repo))
	}
	t.image = t.registry + "/" + t.repo
	if len(t.image) > maxNameLength {
		return target{}, newError("NAME_INVALID", "repository name %q is too long", clip(t.image))
	}
	return t, nil
}

// looksLikeHost reports whether the first path segment of a name is a
// registry host, by the rule docker and containerd use: it contains a dot
// or a colon, or is localhost.
func looksLikeHost(seg string) bool {
	return strings.ContainsAny(seg, ".:") || seg == "localhost"
}

// reference is a parsed manifest reference: a tag or a digest.
type reference struct {
	tag    string
	digest digest.Digest
}

func (r reference) String() string {
	if r.digest != "" {
		return r.digest.String()
	}
	return r.tag
}

// parseReference parses the <reference> of /manifests/<reference>.
func parseReference(s string) (reference, error) {
	if strings.Contains(s, ":") {
		d, err := parseDigest(s)
		if err != nil {
			return reference{}, err
		}
		return reference{digest: d}, nil
	}
	if !tagPattern.MatchString(s) {
		return reference{}, newError("TAG_INVALID", "invalid tag %q", clip(s))
	}
	return reference{tag: s}, nil
}

// parseDigest parses a digest, accepting only sha256 (the algorithm
// pullgate hashes with).
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", newError("DIGEST_INVALID", "invalid digest %q", clip(s))
	}
	if d.Algorithm() != digest.SHA256 {
		return "", newError("DIGEST_INVALID", "unsupported digest algorithm %q: pullgate verifies sha256 digests", d.Algorithm())
	}
	return d, nil
}

// clip bounds client-provided text before it goes into a message.
func clip(s string) string {
	const n = 128
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
