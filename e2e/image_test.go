//go:build e2e

package e2e

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

var digestPattern = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// crane runs the real crane CLI and returns its combined output and exit
// code. crane treats 127.0.0.1:<port> as plain HTTP by itself.
func (b *testbed) crane(t testing.TB, args ...string) (string, int) {
	t.Helper()
	return b.run(t, nil, b.tools.crane, args...)
}

// mustCrane runs crane, which must succeed, and returns its stdout.
func (b *testbed) mustCrane(t testing.TB, args ...string) string {
	t.Helper()
	return b.mustRun(t, nil, b.tools.crane, args...)
}

// pushImage builds a one-layer OCI image whose content is unique to ref
// and this run, pushes it to ref with `crane append --oci-empty-base`
// (TESTBED §2.2), and returns its digest as `crane digest` reports it.
func (b *testbed) pushImage(t testing.TB, ref string) string {
	t.Helper()
	layer := filepath.Join(t.TempDir(), "layer.tar")
	writeLayer(t, layer, map[string]string{
		"etc/e2e/image":     ref + "\n" + randomHex(t, 16) + "\n",
		"etc/e2e/hello.txt": "hello from the pullgate e2e suite\n",
	})
	b.mustCrane(t, "append", "--oci-empty-base", "-f", layer, "-t", ref)
	return b.craneDigest(t, ref)
}

// craneDigest is `crane digest ref`, which must succeed.
func (b *testbed) craneDigest(t testing.TB, ref string) string {
	t.Helper()
	out := strings.TrimSpace(b.mustCrane(t, "digest", ref))
	if !digestPattern.MatchString(out) || len(out) != len("sha256:")+64 {
		t.Fatalf("crane digest %s printed %q, want a sha256 digest", ref, out)
	}
	return out
}

// writeLayer writes an uncompressed tar of files (path → content) with
// fixed metadata; crane append gzips it.
func writeLayer(t testing.TB, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dirs := map[string]bool{}
	for _, n := range names {
		for d := filepath.Dir(n); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	dirNames := make([]string, 0, len(dirs))
	for d := range dirs {
		dirNames = append(dirNames, d)
	}
	sort.Strings(dirNames) // parents sort before children
	for _, d := range dirNames {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		body := files[n]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(body)), ModTime: mtime}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// ociLayout is what `crane pull --format oci` wrote.
type ociLayout struct {
	Dir            string
	ManifestDigest string
	Manifest       []byte
}

// readOCILayout reads the single image of an OCI layout directory and
// checks that the manifest and every blob it names are present and hash
// to their digests.
func readOCILayout(t testing.TB, dir string) ociLayout {
	t.Helper()
	var idx struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	readJSON(t, filepath.Join(dir, "index.json"), &idx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("%s/index.json lists %d manifests, want 1", dir, len(idx.Manifests))
	}
	l := ociLayout{Dir: dir, ManifestDigest: idx.Manifests[0].Digest}
	l.Manifest = readBlob(t, dir, l.ManifestDigest)
	var m struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(l.Manifest, &m); err != nil {
		t.Fatalf("manifest %s: %v", l.ManifestDigest, err)
	}
	readBlob(t, dir, m.Config.Digest)
	for _, layer := range m.Layers {
		readBlob(t, dir, layer.Digest)
	}
	return l
}

func readBlob(t testing.TB, dir, dgst string) []byte {
	t.Helper()
	hexPart, ok := strings.CutPrefix(dgst, "sha256:")
	if !ok {
		t.Fatalf("blob digest %q is not sha256", dgst)
	}
	b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", hexPart))
	if err != nil {
		t.Fatalf("OCI layout %s: %v", dir, err)
	}
	if got := sha256Digest(b); got != dgst {
		t.Fatalf("OCI layout %s: blob %s hashes to %s", dir, dgst, got)
	}
	return b
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func sha256Digest(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// pushIndex pushes, for each platform ("linux/amd64"), an image with
// content unique to it, and an OCI index of them to ref (TESTBED §2.2).
// It returns the index digest and each platform's manifest digest.
func (b *testbed) pushIndex(t testing.TB, ref string, platforms ...string) (string, map[string]string) {
	t.Helper()
	repo := ref
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo = ref[:i]
	}
	children := map[string]string{}
	args := []string{"index", "append"}
	for _, p := range platforms {
		tag := repo + ":" + strings.ReplaceAll(p, "/", "-")
		b.pushImage(t, tag)
		b.mustCrane(t, "mutate", "--set-platform", p, tag, "-t", tag)
		children[p] = b.craneDigest(t, tag)
		args = append(args, "-m", tag)
	}
	b.mustCrane(t, append(args, "-t", ref)...)
	return b.craneDigest(t, ref), children
}
