package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/proxy/upstream"
	"github.com/pullgate/pullgate/verifier"
)

// source is the verifier's view of one upstream repository.
type source struct {
	up   *upstream.Client
	repo string
}

var _ verifier.Source = source{}

func (s source) Manifest(ctx context.Context, reference string, maxBytes int64) ([]byte, string, error) {
	m, err := s.up.Manifest(ctx, http.MethodGet, s.repo, reference, maxBytes)
	if err != nil {
		return nil, "", sourceErr(err)
	}
	return m.Body, m.MediaType, nil
}

func (s source) Blob(ctx context.Context, dgst digest.Digest, maxBytes int64) ([]byte, error) {
	b, err := s.up.ReadBlob(ctx, s.repo, dgst, maxBytes)
	if err != nil {
		return nil, sourceErr(err)
	}
	return b, nil
}

func (s source) Referrers(ctx context.Context, dgst digest.Digest, maxBytes int64) ([]byte, error) {
	b, err := s.up.Referrers(ctx, s.repo, dgst, maxBytes)
	if err != nil {
		return nil, sourceErr(err)
	}
	return b, nil
}

// sourceErr maps upstream errors to the verifier's sentinels.
func sourceErr(err error) error {
	switch {
	case isStatus(err, http.StatusNotFound):
		return fmt.Errorf("%w: %w", verifier.ErrNotFound, err)
	case errors.Is(err, upstream.ErrReferrersUnsupported):
		return fmt.Errorf("%w: %w", verifier.ErrReferrersUnsupported, err)
	case errors.Is(err, upstream.ErrTooLarge):
		// Oversize material is rejected, not retried forever as a fault.
		return fmt.Errorf("%w: %w", verifier.ErrTooLarge, err)
	}
	return err
}
