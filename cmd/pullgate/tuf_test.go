package main

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/verifier/verifiertest"
)

// tufRepo writes a minimal TUF repository (consistent snapshots, one
// ed25519 key for every role) serving target as trusted_root.json into
// dir, and returns the path of its 1.root.json.
func tufRepo(t *testing.T, dir string, target []byte) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	key, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(24 * time.Hour)

	sum := sha256.Sum256(target)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "targets"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "targets", hex.EncodeToString(sum[:])+".trusted_root.json"), target, 0o600))

	targets := metadata.Targets(expires)
	tf, err := metadata.TargetFile().FromBytes("trusted_root.json", target, "sha256")
	must(err)
	targets.Signed.Targets["trusted_root.json"] = tf
	_, err = targets.Sign(signer)
	must(err)
	must(targets.ToFile(filepath.Join(dir, "1.targets.json"), false))

	snapshot := metadata.Snapshot(expires)
	_, err = snapshot.Sign(signer)
	must(err)
	must(snapshot.ToFile(filepath.Join(dir, "1.snapshot.json"), false))

	timestamp := metadata.Timestamp(expires)
	_, err = timestamp.Sign(signer)
	must(err)
	must(timestamp.ToFile(filepath.Join(dir, "timestamp.json"), false))

	root := metadata.Root(expires)
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		must(root.Signed.AddKey(key, role))
	}
	_, err = root.Sign(signer)
	must(err)
	rootPath := filepath.Join(dir, "1.root.json")
	must(root.ToFile(rootPath, false))
	return rootPath
}

// TestTUFClient fetches a trusted root through sigstore-go's TUF client
// from a local TUF repository, as `tuf: {mirror, root}` configures it,
// with the metadata cache in memory and on disk.
func TestTUFClient(t *testing.T) {
	t.Parallel()
	want, err := verifiertest.MustNewSigstore(t).TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	repoDir := t.TempDir()
	rootPath := tufRepo(t, repoDir, want)
	srv := httptest.NewServer(http.FileServer(http.Dir(repoDir)))
	t.Cleanup(srv.Close)

	for _, cache := range []string{"", t.TempDir()} {
		src, err := newTUFSource(&policy.TUF{Mirror: srv.URL, Root: rootPath}, cache)
		if err != nil {
			t.Fatal(err)
		}
		got, err := src.fetch(t.Context())
		if err != nil {
			t.Fatalf("cache %q: fetch: %v", cache, err)
		}
		if string(got) != string(want) {
			t.Errorf("cache %q: fetched %d bytes, want the repository's trusted_root.json", cache, len(got))
		}
		tr := &trust{log: slog.New(slog.DiscardHandler), roots: map[string]*trustedRoot{"": {}}, tuf: src}
		if err := tr.refreshTUF(t.Context()); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(want)
		if tm, gen := tr.roots[""].material(); tm == nil || gen != hex.EncodeToString(sum[:]) {
			t.Errorf("cache %q: default root after refresh: %v, generation %q", cache, tm != nil, gen)
		}
	}

	if _, err := newTUFSource(&policy.TUF{Mirror: srv.URL}, ""); err == nil {
		t.Error("a private mirror without an initial root.json was accepted")
	}
}
