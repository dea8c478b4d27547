package verifiertest

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// StartRegistry is [NewRegistry] for tests: it starts the registry,
// closes it when tb ends, and returns the repository repo on it.
func StartRegistry(tb testing.TB, referrers bool, repo string) name.Repository {
	tb.Helper()
	srv := NewRegistry(referrers)
	tb.Cleanup(srv.Close)
	r, err := Repository(srv, repo)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// MustGenerateKey is [GenerateKey] for tests: it fails tb on error.
func MustGenerateKey(tb testing.TB, alg string) *Key {
	tb.Helper()
	k, err := GenerateKey(alg)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// MustNewSigstore is [NewSigstore] for tests: it fails tb on error.
func MustNewSigstore(tb testing.TB) *Sigstore {
	tb.Helper()
	s, err := NewSigstore()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
