package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/verifier"
	"github.com/pullgate/pullgate/verifier/verifiertest"
)

// keylessEnv is an in-memory upstream with an image signed keyless by
// an in-process Sigstore (legacy .sig), and a config whose policy
// trusts that signer through trustedRoot.
type keylessEnv struct {
	dir, config, rootFile string
	repo                  name.Repository
	desc                  v1.Descriptor
	ss, other             *verifiertest.Sigstore
}

const keylessSubject = "https://github.com/myorg/app/.github/workflows/release.yml@refs/tags/v1.0.0"

func newKeylessEnv(t *testing.T) *keylessEnv {
	t.Helper()
	e := &keylessEnv{dir: t.TempDir(), ss: verifiertest.MustNewSigstore(t), other: verifiertest.MustNewSigstore(t)}
	e.repo = verifiertest.StartRegistry(t, false, "apps/web")
	var err error
	e.desc, err = verifiertest.PushRandomImage(t.Context(), e.repo, "signed", 1)
	if err != nil {
		t.Fatal(err)
	}
	id := verifiertest.GitHubWorkflow("myorg/app", ".github/workflows/release.yml", "refs/tags/v1.0.0")
	if err := e.ss.SignLegacyKeyless(t.Context(), e.repo, e.desc.Digest, id, verifiertest.KeylessOptions{}); err != nil {
		t.Fatal(err)
	}
	e.config = filepath.Join(e.dir, "pullgate.yaml")
	e.rootFile = filepath.Join(e.dir, "trusted_root.json")
	e.writeRoot(t, e.ss)
	e.writeConfig(t, "trustedRoot: trusted_root.json\n")
	return e
}

// writeRoot writes ss's trusted_root.json without its CT log: the test
// Sigstore's certificates have no SCTs, and pullgate requires them
// whenever the root has CT logs. The file's time moves forward, so the
// watcher sees the change even within one clock tick.
func (e *keylessEnv) writeRoot(t *testing.T, ss *verifiertest.Sigstore) {
	t.Helper()
	tr := ss.TrustedRoot()
	noCT, err := root.NewTrustedRoot(root.TrustedRootMediaType01, tr.FulcioCertificateAuthorities(), nil, tr.TimestampingAuthorities(), tr.RekorLogs())
	if err != nil {
		t.Fatal(err)
	}
	b, err := noCT.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	e.writeRootBytes(t, b)
}

func (e *keylessEnv) writeRootBytes(t *testing.T, b []byte) {
	t.Helper()
	if err := os.WriteFile(e.rootFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Duration(len(b)%1000+1) * time.Second)
	if fi, err := os.Stat(e.rootFile); err == nil && !fi.ModTime().Before(later) {
		later = fi.ModTime().Add(time.Second)
	}
	if err := os.Chtimes(e.rootFile, later, later); err != nil {
		t.Fatal(err)
	}
}

func (e *keylessEnv) writeConfig(t *testing.T, trust string) {
	t.Helper()
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
upstreams:
  - registry: registry.test
    endpoint: http://%s
defaultRegistry: registry.test
%spolicies:
  - name: apps
    images: ["registry.test/apps/**"]
    signers:
      - name: ci
        keyless:
          issuer: https://token.actions.githubusercontent.com
          subjectRegExp: '^https://github\.com/myorg/[^/]+/\.github/workflows/release\.yml@refs/tags/v.*$'
          extensions: {githubWorkflowRepository: myorg/app}
unmatched: deny
`, e.repo.RegistryStr(), trust)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *keylessEnv) load(t *testing.T) (*policy.Config, *trust, *bytes.Buffer) {
	t.Helper()
	cfg, err := loadConfig(e.config)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	tr, err := loadTrust(cfg, slog.New(slog.NewTextHandler(&logs, nil)), "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg, tr, &logs
}

func (e *keylessEnv) verify(t *testing.T, v *verifier.Sigstore, cfg *policy.Config) *verifier.Verdict {
	t.Helper()
	got, err := v.Verify(t.Context(), verifiertest.RemoteSource(e.repo, nil),
		verifier.Image{Name: "registry.test/apps/web", Digest: digest.Digest(e.desc.Digest.String())}, cfg.Policies[0])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestTrustedRootReload checks the file watcher: a changed
// trusted_root.json changes the verifier's generation and takes effect
// without a restart; a broken file keeps the last good root, with a
// warning; an unchanged file changes nothing.
func TestTrustedRootReload(t *testing.T) {
	t.Parallel()
	e := newKeylessEnv(t)
	e.writeRoot(t, e.other) // start with a root that does not know the signer
	cfg, tr, logs := e.load(t)
	v, err := newVerifier(cfg, slog.New(slog.DiscardHandler), tr)
	if err != nil {
		t.Fatal(err)
	}
	g1 := v.Generation()
	if got := e.verify(t, v, cfg); got.Allowed {
		t.Fatalf("allowed under a root that does not know the signer")
	}

	tr.reloadFiles()
	if g := v.Generation(); g != g1 {
		t.Errorf("generation changed without a file change: %s → %s", g1, g)
	}

	// The watcher picks up the new root.
	e.writeRoot(t, e.ss)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); tr.watch(ctx, 5*time.Millisecond, 0) }()
	deadline := time.Now().Add(10 * time.Second)
	for v.Generation() == g1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling for the watcher, not a timing assertion
	}
	cancel()
	<-done
	g2 := v.Generation()
	if g2 == g1 {
		t.Fatal("the watcher never reloaded the changed trusted_root.json")
	}
	if got := e.verify(t, v, cfg); !got.Allowed {
		t.Errorf("denied after the signer's root was loaded: %q", got.Reasons)
	}
	if !strings.Contains(logs.String(), "trusted root reloaded") {
		t.Errorf("no reload log line:\n%s", logs)
	}

	// A broken file keeps the last good root.
	e.writeRootBytes(t, []byte(`{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": [{"broken"`))
	tr.reloadFiles()
	if g := v.Generation(); g != g2 {
		t.Errorf("generation changed to %s after a broken file; want the last good %s", g, g2)
	}
	if got := e.verify(t, v, cfg); !got.Allowed {
		t.Errorf("denied after a broken reload: %q", got.Reasons)
	}
	if !strings.Contains(logs.String(), "trusted root reload failed; keeping the last good root") {
		t.Errorf("no warning for the broken file:\n%s", logs)
	}
	if err := os.Remove(e.rootFile); err != nil {
		t.Fatal(err)
	}
	tr.reloadFiles()
	if g := v.Generation(); g != g2 {
		t.Errorf("generation changed after the file disappeared")
	}
}

// TestTUFRefresh checks the TUF refresher with an injected fetch: a
// fetched root becomes the default root and supersedes the file, and a
// failed refresh keeps the last good root.
func TestTUFRefresh(t *testing.T) {
	t.Parallel()
	e := newKeylessEnv(t)
	e.writeRoot(t, e.other)
	e.writeConfig(t, "trustedRoot: trusted_root.json\ntuf: {mirror: https://tuf.example.test, root: trusted_root.json}\n")
	cfg, tr, logs := e.load(t)
	if tr.tuf == nil {
		t.Fatal("no TUF source for a config with tuf")
	}
	good, err := e.ss.TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	fail := errors.New("mirror unreachable")
	var next []byte
	var nextErr error
	tr.tuf.fetch = func(context.Context) ([]byte, error) { return next, nextErr }
	v, err := newVerifier(cfg, slog.New(slog.DiscardHandler), tr)
	if err != nil {
		t.Fatal(err)
	}
	g0 := v.Generation()

	nextErr = fail
	if err := tr.refreshTUF(t.Context()); !errors.Is(err, fail) {
		t.Errorf("refreshTUF = %v, want %v", err, fail)
	}
	if v.Generation() != g0 {
		t.Error("a failed refresh changed the root")
	}
	next, nextErr = good, nil
	if err := tr.refreshTUF(t.Context()); err != nil {
		t.Fatal(err)
	}
	g1 := v.Generation()
	if g1 == g0 {
		t.Error("a successful refresh did not change the root")
	}
	// The file no longer applies once TUF delivered a root.
	e.writeRoot(t, e.other)
	tr.reloadFiles()
	if v.Generation() != g1 {
		t.Error("a file change replaced the TUF root")
	}
	next, nextErr = []byte("not json"), nil
	if err := tr.refreshTUF(t.Context()); err == nil || v.Generation() != g1 {
		t.Errorf("refresh with a broken root: %v, generation changed %v", err, v.Generation() != g1)
	}
	if !strings.Contains(logs.String(), "TUF refresh of the trusted root failed; keeping the last good root") {
		t.Errorf("no warning for the failed refreshes:\n%s", logs)
	}
}

// TestTUFWithoutRootFile checks that a TUF-only default root is not
// available until the first refresh: signers needing it deny (fail
// closed), and policy check still accepts the configuration.
func TestTUFWithoutRootFile(t *testing.T) {
	t.Parallel()
	e := newKeylessEnv(t)
	e.writeConfig(t, "tuf: {mirror: https://tuf.example.test, root: trusted_root.json}\n")
	cfg, tr, _ := e.load(t)
	v, err := newVerifier(cfg, slog.New(slog.DiscardHandler), tr)
	if err != nil {
		t.Fatal(err)
	}
	got := e.verify(t, v, cfg)
	if got.Allowed || !strings.Contains(strings.Join(got.Reasons, "\n"), "trusted root is not available yet") {
		t.Errorf("before the first TUF refresh: allowed=%v reasons=%q, want a fail-closed denial", got.Allowed, got.Reasons)
	}
	code, out, errOut := runCLI(t, "policy", "check", "--config", e.config)
	if code != exitOK {
		t.Errorf("policy check = %d, %s%s", code, out, errOut)
	}
}

// TestVerifyKeylessCLI runs `pullgate verify` and `pullgate policy
// check` on keyless configurations.
func TestVerifyKeylessCLI(t *testing.T) {
	t.Parallel()
	e := newKeylessEnv(t)
	code, out, errOut := runCLI(t, "verify", "--config", e.config, "registry.test/apps/web:signed")
	if code != exitOK {
		t.Fatalf("verify = %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"verdict:   ALLOWED",
		`evidence:  signer "ci" via sig-tag`,
		" identity " + keylessSubject + " issuer https://token.actions.githubusercontent.com",
		" logIndex ", " integratedTime " + time.Now().UTC().Format("2006-01-02"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	if code, out, errOut := runCLI(t, "policy", "check", "--config", e.config); code != exitOK {
		t.Errorf("policy check = %d\n%s%s", code, out, errOut)
	}

	other := newKeylessEnv(t)
	other.writeRoot(t, other.other)
	code, out, _ = runCLI(t, "verify", "--config", other.config, "registry.test/apps/web:signed")
	if code != exitDenied || !strings.Contains(out, "reason:    no valid signature from signer \"ci\" (1 signature found: Rekor key not in trusted root") {
		t.Errorf("verify under another root = %d, want denied naming the Rekor key:\n%s", code, out)
	}

	tests := []struct {
		name  string
		trust string
		root  []byte // nil: keep
		want  string
	}{
		{"no trusted root", "", nil, `signer "ci" in policy "apps": keyless signer needs a trusted root (set trustedRoot or tuf), and none is configured`},
		{"broken trusted root", "trustedRoot: trusted_root.json\n", []byte("{}"), "trustedRoot: not a valid trusted_root.json"},
		{"missing trusted root", "trustedRoot: missing.json\n", nil, "missing.json: no such file or directory"},
		{"root without a Fulcio CA", "trustedRoot: trusted_root.json\n", []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`),
			`signer "ci" in policy "apps": trusted root has no Fulcio certificate authority`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newKeylessEnv(t)
			e.writeConfig(t, tt.trust)
			if tt.root != nil {
				e.writeRootBytes(t, tt.root)
			}
			for _, args := range [][]string{{"policy", "check"}, {"verify"}} {
				args = append(args, "--config", e.config)
				if args[0] == "verify" {
					args = append(args, "registry.test/apps/web:signed")
				}
				code, out, errOut := runCLI(t, args...)
				if code == exitOK || !strings.Contains(errOut, tt.want) {
					t.Errorf("%s = %d, stderr lacks %q:\n%s%s", args[0], code, tt.want, out, errOut)
				}
			}
		})
	}
}

// TestDeployKeylessExample uncomments the keyless example of
// deploy/pullgate.yaml, with its trustedRoot pointing at the genuine
// public-good root of the shared fixtures, and checks it validates.
func TestDeployKeylessExample(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../deploy/pullgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rootPath, err := filepath.Abs("../../../shared/fixtures/trust/trusted_root.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rootPath); err != nil {
		t.Fatalf("the genuine trusted root fixture is missing (%v); this test does not skip", err)
	}
	var out []string
	inExample, found := false, 0
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "# trustedRoot: "):
			line = "trustedRoot: " + rootPath
			found++
		case strings.Contains(line, "# --- keyless example"):
			inExample = true
			found++
		case strings.Contains(line, "# --- end of keyless example"):
			inExample = false
		case inExample:
			line = strings.Replace(line, "# ", "", 1)
		}
		out = append(out, line)
	}
	if found != 2 {
		t.Fatalf("deploy/pullgate.yaml: trustedRoot line or keyless example markers not found")
	}
	cfg := filepath.Join(t.TempDir(), "pullgate.yaml")
	if err := os.MkdirAll(filepath.Join(filepath.Dir(cfg), "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile("../../deploy/keys/release.pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfg), "keys", "release.pub"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Join(out, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "policy", "check", "--config", cfg)
	if code != exitOK || !strings.Contains(stdout, "4 policies, 3 signers") {
		t.Errorf("uncommented keyless example: exit %d\n%s%s", code, stdout, stderr)
	}
}
