package verifiertest

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/verifier"
)

const (
	mediaTypeOCIIndex = "application/vnd.oci.image.index.v1+json"
	manifestAccept    = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " +
		"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"
)

// RemoteSource returns a [verifier.Source] for repo that speaks the OCI
// distribution API over plain HTTP(S) requests through rt (nil means
// http.DefaultTransport; wrap it with ggcr's transport.NewWithContext for
// registries that need auth). It is a reference implementation for
// tests and demos, not the proxy's: no retries, no caching.
//
// It maps 404 to [verifier.ErrNotFound], bodies over maxBytes to
// [verifier.ErrTooLarge], and, for Referrers, any answer but a 200 with
// Content-Type application/vnd.oci.image.index.v1+json from a 400, 404,
// 405 or 406 (or a 200 of another type) to
// [verifier.ErrReferrersUnsupported]. ggcr's pkg/registry answers
// referrers with exactly that Content-Type when referrers support is on,
// and 404 when it is off.
func RemoteSource(repo name.Repository, rt http.RoundTripper) verifier.Source {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &remoteSource{repo: repo, client: &http.Client{Transport: rt, Timeout: time.Minute}}
}

type remoteSource struct {
	repo   name.Repository
	client *http.Client
}

func (r *remoteSource) url(kind, ref string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", r.repo.Scheme(), r.repo.RegistryStr(), r.repo.RepositoryStr(), kind, ref)
}

// get fetches url. It returns the status and Content-Type; the body only
// for 200.
func (r *remoteSource) get(ctx context.Context, url, accept string, maxBytes int64) ([]byte, int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, "", err
	}
	req.Header.Set("Accept", accept)
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, 0, "", err
	}
	defer resp.Body.Close()
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, resp.StatusCode, ct, nil
	}
	if resp.ContentLength > maxBytes {
		return nil, resp.StatusCode, ct, fmt.Errorf("GET %s: %d bytes: %w", url, resp.ContentLength, verifier.ErrTooLarge)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, resp.StatusCode, ct, fmt.Errorf("GET %s: %w", url, err)
	}
	if int64(len(body)) > maxBytes {
		return nil, resp.StatusCode, ct, fmt.Errorf("GET %s: more than %d bytes: %w", url, maxBytes, verifier.ErrTooLarge)
	}
	return body, resp.StatusCode, ct, nil
}

func statusError(url string, status int) error {
	if status == http.StatusNotFound {
		return fmt.Errorf("GET %s: %w", url, verifier.ErrNotFound)
	}
	return fmt.Errorf("GET %s: unexpected status %d", url, status)
}

func (r *remoteSource) Manifest(ctx context.Context, reference string, maxBytes int64) ([]byte, string, error) {
	u := r.url("manifests", reference)
	body, status, ct, err := r.get(ctx, u, manifestAccept, maxBytes)
	if err != nil {
		return nil, "", err
	}
	if status != http.StatusOK {
		return nil, "", statusError(u, status)
	}
	return body, ct, nil
}

func (r *remoteSource) Blob(ctx context.Context, dgst digest.Digest, maxBytes int64) ([]byte, error) {
	u := r.url("blobs", dgst.String())
	body, status, _, err := r.get(ctx, u, "*/*", maxBytes)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, statusError(u, status)
	}
	return body, nil
}

func (r *remoteSource) Referrers(ctx context.Context, dgst digest.Digest, maxBytes int64) ([]byte, error) {
	u := r.url("referrers", dgst.String())
	body, status, ct, err := r.get(ctx, u, mediaTypeOCIIndex, maxBytes)
	if err != nil {
		return nil, err
	}
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case status == http.StatusOK && strings.EqualFold(mt, mediaTypeOCIIndex):
		return body, nil
	case status == http.StatusOK, status == http.StatusNotFound, status == http.StatusBadRequest,
		status == http.StatusMethodNotAllowed, status == http.StatusNotAcceptable:
		return nil, fmt.Errorf("GET %s: status %d, Content-Type %q: %w", u, status, ct, verifier.ErrReferrersUnsupported)
	}
	return nil, statusError(u, status)
}

// SourceFuncs is a [verifier.Source] whose methods call its function
// fields, for injecting faults and counting calls. A nil ManifestFunc or
// BlobFunc answers [verifier.ErrNotFound]; a nil ReferrersFunc answers
// [verifier.ErrReferrersUnsupported]. Forward to a real Source by
// setting the fields to its methods. Safe for concurrent use if the
// functions are.
type SourceFuncs struct {
	ManifestFunc  func(ctx context.Context, reference string, maxBytes int64) ([]byte, string, error)
	BlobFunc      func(ctx context.Context, dgst digest.Digest, maxBytes int64) ([]byte, error)
	ReferrersFunc func(ctx context.Context, dgst digest.Digest, maxBytes int64) ([]byte, error)

	manifests, blobs, referrers atomic.Int64
}

var _ verifier.Source = (*SourceFuncs)(nil)

// Manifest implements [verifier.Source].
func (f *SourceFuncs) Manifest(ctx context.Context, reference string, maxBytes int64) ([]byte, string, error) {
	f.manifests.Add(1)
	if f.ManifestFunc == nil {
		return nil, "", fmt.Errorf("manifest %s: %w", reference, verifier.ErrNotFound)
	}
	return f.ManifestFunc(ctx, reference, maxBytes)
}

// Blob implements [verifier.Source].
func (f *SourceFuncs) Blob(ctx context.Context, dgst digest.Digest, maxBytes int64) ([]byte, error) {
	f.blobs.Add(1)
	if f.BlobFunc == nil {
		return nil, fmt.Errorf("blob %s: %w", dgst, verifier.ErrNotFound)
	}
	return f.BlobFunc(ctx, dgst, maxBytes)
}

// Referrers implements [verifier.Source].
func (f *SourceFuncs) Referrers(ctx context.Context, dgst digest.Digest, maxBytes int64) ([]byte, error) {
	f.referrers.Add(1)
	if f.ReferrersFunc == nil {
		return nil, fmt.Errorf("referrers %s: %w", dgst, verifier.ErrReferrersUnsupported)
	}
	return f.ReferrersFunc(ctx, dgst, maxBytes)
}

// Calls returns how many times each method was called.
func (f *SourceFuncs) Calls() (manifests, blobs, referrers int64) {
	return f.manifests.Load(), f.blobs.Load(), f.referrers.Load()
}
