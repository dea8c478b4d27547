//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cosign runs one version of the real cosign CLI, offline: an empty
// COSIGN_PASSWORD, its own TUF_ROOT, the testbed's scratch HOME, and the
// flags that keep it off the network (TESTBED §2.3, §2.5): v2 signs with
// --tlog-upload=false, v3 with an empty --signing-config, and both verify
// with an empty --trusted-root.
type cosign struct {
	bed     *testbed
	version string // cosign2Version or cosign3Version
	bin     string
	tufRoot string
}

func (c *cosign) v3() bool { return strings.HasPrefix(c.version, "v3.") }

// run runs cosign with args and returns its combined output and exit code.
func (c *cosign) run(t testing.TB, args ...string) (string, int) {
	t.Helper()
	return c.bed.run(t, []string{"COSIGN_PASSWORD=", "TUF_ROOT=" + c.tufRoot}, c.bin, args...)
}

func (c *cosign) mustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, code := c.run(t, args...)
	if code != 0 {
		t.Fatalf("cosign %s %s: exit %d, want 0:\n%s", c.version, args[0], code, out)
	}
	return out
}

// keyPair is a cosign key pair on disk (the private key encrypted with
// the empty password).
type keyPair struct {
	Name   string
	Key    string // path of <name>.key
	Pub    string // path of <name>.pub
	PubPEM []byte
}

// generateKeyPair makes a key pair named name in the testbed's keys dir.
func (c *cosign) generateKeyPair(t testing.TB, name string) keyPair {
	t.Helper()
	prefix := filepath.Join(c.bed.mkdir(t, "keys"), name)
	c.mustRun(t, "generate-key-pair", "--output-key-prefix", prefix)
	kp := keyPair{Name: name, Key: prefix + ".key", Pub: prefix + ".pub"}
	pem, err := os.ReadFile(kp.Pub)
	if err != nil {
		t.Fatal(err)
	}
	kp.PubPEM = pem
	return kp
}

// sign signs ref (by digest) with key and pushes the signature to ref's
// registry: a sha256-<hex>.sig tag with cosign v2, a Sigstore bundle in
// the referrers tag sha256-<hex> with cosign v3 (distribution 2.8 has no
// referrers API).
func (c *cosign) sign(t testing.TB, key keyPair, ref string) {
	t.Helper()
	if !strings.Contains(ref, "@sha256:") {
		t.Fatalf("sign %s: sign by digest, not by tag", ref)
	}
	args := []string{"sign", "--key", key.Key, "-y"}
	if c.v3() {
		args = append(args, "--signing-config", c.bed.emptySigningConfig(t), "--trusted-root", c.bed.emptyTrustedRoot(t))
	} else {
		args = append(args, "--tlog-upload=false")
	}
	c.mustRun(t, append(args, ref)...)
}

// verify runs cosign verify of ref against pub, key-based and offline,
// and returns the output and exit code.
func (c *cosign) verify(t testing.TB, pub keyPair, ref string) (string, int) {
	t.Helper()
	return c.run(t, "verify", "--key", pub.Pub, "--insecure-ignore-tlog", "--trusted-root", c.bed.emptyTrustedRoot(t), ref)
}

// emptyTrustedRoot is a Sigstore trusted root with no authorities
// (cosign trusted-root create), enough for key-based verification and
// it keeps cosign from fetching one through TUF.
func (b *testbed) emptyTrustedRoot(t testing.TB) string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.trustedRoot == "" {
		p := filepath.Join(b.mkdir(t, "sigstore"), "empty-trusted-root.json")
		b.cosign2.mustRun(t, "trusted-root", "create", "--out", p)
		b.trustedRoot = p
	}
	return b.trustedRoot
}

// emptySigningConfig is a cosign v3 signing config with no services
// (cosign signing-config create): sign without Rekor, Fulcio or a TSA.
func (b *testbed) emptySigningConfig(t testing.TB) string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.signingConfig == "" {
		p := filepath.Join(b.mkdir(t, "sigstore"), "empty-signing-config.json")
		b.cosign3.mustRun(t, "signing-config", "create", "--out", p)
		b.signingConfig = p
	}
	return b.signingConfig
}

// attest attests ref (by digest) with key: `cosign attest --type typ
// --predicate <file>` with predicate as the file's content, offline as
// sign is. cosign v2 appends a DSSE layer to the sha256-<hex>.att tag;
// cosign v3 stores a Sigstore bundle in the referrers tag sha256-<hex>.
func (c *cosign) attest(t testing.TB, key keyPair, ref, typ string, predicate []byte) {
	t.Helper()
	if !strings.Contains(ref, "@sha256:") {
		t.Fatalf("attest %s: attest by digest, not by tag", ref)
	}
	f, err := os.CreateTemp(c.bed.mkdir(t, "predicates"), "predicate-*.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(predicate); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	args := []string{"attest", "--key", key.Key, "--type", typ, "--predicate", f.Name(), "-y"}
	if c.v3() {
		args = append(args, "--signing-config", c.bed.emptySigningConfig(t), "--trusted-root", c.bed.emptyTrustedRoot(t))
	} else {
		args = append(args, "--tlog-upload=false")
	}
	c.mustRun(t, append(args, ref)...)
}
