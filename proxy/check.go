package proxy

import (
	"context"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/verifier"
)

// Decision is the outcome of checking an image reference the way a pull
// through pullgate would check it.
type Decision struct {
	// Image is the routed, normalised image name (registry/repository).
	Image string
	// Reference is the tag or digest checked.
	Reference string
	// Digest is the manifest digest, computed over the bytes fetched.
	Digest digest.Digest
	// MediaType is the manifest media type.
	MediaType string
	// Verdict is the verifier's verdict (or the unmatched verdict).
	Verdict *verifier.Verdict
	// Served reports whether a pull would be served: allowed, or denied
	// under an audit rule.
	Served bool
}

// Check resolves and verifies an image reference such as
// "registry.example.com/apps/web:1.2", "docker.io/library/nginx@sha256:…"
// or "nginx:1.27" (on the default registry), exactly as a manifest request
// would, without serving anything. The error is for references that
// cannot be routed or resolved, and for verifications that could not
// decide.
func (s *Server) Check(ctx context.Context, image string) (*Decision, error) {
	name, ref := splitReference(image)
	t, err := route(name, "", s.cfg.DefaultRegistry, func(reg string) bool {
		_, ok := s.upstreams[reg]
		return ok
	})
	if err != nil {
		return nil, err
	}
	r, err := parseReference(ref)
	if err != nil {
		return nil, err
	}
	m, err := s.resolve(ctx, t, r)
	if err != nil {
		return nil, err
	}
	d, err := s.decide(ctx, t, r, m)
	if err != nil {
		return nil, err
	}
	return &Decision{
		Image:     t.image,
		Reference: r.String(),
		Digest:    m.digest,
		MediaType: m.mediaType,
		Verdict:   d.verdict,
		Served:    d.serve,
	}, nil
}

// splitReference splits "name[:tag][@digest]" into the name and the
// reference (the digest when present, else the tag, else "latest").
func splitReference(s string) (name, ref string) {
	if n, d, ok := strings.Cut(s, "@"); ok {
		// A tag next to a digest is informational; the digest decides.
		if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") {
			n = n[:i]
		}
		return n, d
	}
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		return s[:i], s[i+1:]
	}
	return s, "latest"
}
