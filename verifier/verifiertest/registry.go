package verifiertest

import (
	"context"
	"fmt"
	"io"
	"log"       // only to silence ggcr's registry, whose option takes a *log.Logger
	"math/rand" //nolint:depguard // ggcr's random.WithSource takes a math/rand Source: deterministic fixtures
	"net/http/httptest"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// NewRegistry starts an in-memory OCI registry (go-containerregistry's
// pkg/registry) on a loopback httptest.Server. With referrers it also
// serves the OCI 1.1 referrers API; without, clients fall back to the
// referrers tag schema, as with distribution 2.8 or older Docker Hub.
// The caller closes the server.
//
// Quirk: the registry reports each referrer's artifactType as its config
// media type (application/vnd.oci.empty.v1+json for cosign bundles), like
// cosign v2 wrote into referrers tags.
func NewRegistry(referrers bool) *httptest.Server {
	return httptest.NewServer(registry.New(
		registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithReferrersSupport(referrers),
	))
}

// Repository names the repository repo on srv.
func Repository(srv *httptest.Server, repo string) (name.Repository, error) {
	host := strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://")
	r, err := name.NewRepository(host + "/" + repo)
	if err != nil {
		return name.Repository{}, fmt.Errorf("repository %q on %s: %w", repo, srv.URL, err)
	}
	return r, nil
}

// PushRandomImage pushes a small random image (seeded, so reproducible)
// to repo:tag and returns its manifest descriptor, the subject to sign.
func PushRandomImage(ctx context.Context, repo name.Repository, tag string, seed int64, opts ...remote.Option) (v1.Descriptor, error) {
	img, err := random.Image(256, 1, random.WithSource(rand.NewSource(seed)))
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("random image: %w", err)
	}
	ref := repo.Tag(tag)
	if err := remote.Write(ref, img, append([]remote.Option{remote.WithContext(ctx)}, opts...)...); err != nil {
		return v1.Descriptor{}, fmt.Errorf("push %s: %w", ref, err)
	}
	dgst, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := img.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: dgst, Size: size}, nil
}
