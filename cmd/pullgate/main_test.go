package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/pullgate/pullgate/verifier/verifiertest"
)

// testEnv is an in-memory upstream with a signed and an unsigned image,
// and a config file for pullgate in front of it.
type testEnv struct {
	dir, config string
	upstream    string // host:port
}

func newTestEnv(t *testing.T) testEnv {
	t.Helper()
	repo := verifiertest.StartRegistry(t, false, "apps/web")
	key := verifiertest.MustGenerateKey(t, "ecdsa-p256")
	signed, err := verifiertest.PushRandomImage(t.Context(), repo, "signed", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifiertest.SignLegacy(t.Context(), repo, signed.Digest, key); err != nil {
		t.Fatal(err)
	}
	if _, err := verifiertest.PushRandomImage(t.Context(), repo, "unsigned", 2); err != nil {
		t.Fatal(err)
	}
	other, err := name.NewRepository(repo.RegistryStr() + "/other/thing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifiertest.PushRandomImage(t.Context(), other, "v1", 3); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "release.pub"), key.PublicPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	env := testEnv{dir: dir, config: filepath.Join(dir, "pullgate.yaml"), upstream: repo.RegistryStr()}
	env.writeConfig(t, "127.0.0.1:0")
	return env
}

func (e testEnv) writeConfig(t *testing.T, listen string) {
	t.Helper()
	cfg := fmt.Sprintf(`listen: %s
upstreams:
  - registry: registry.test
    endpoint: http://%s
defaultRegistry: registry.test
policies:
  - name: apps
    images: ["registry.test/apps/**"]
    signers:
      - name: release-key
        key: {path: release.pub}
unmatched: deny
`, listen, e.upstream)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVerifyExitCodes(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	tests := []struct {
		name     string
		image    string
		wantCode int
		want     []string // substrings of stdout
		wantErr  string   // substring of stderr
	}{
		{"signed", "registry.test/apps/web:signed", exitOK, []string{"verdict:   ALLOWED", `evidence:  signer "release-key" via sig-tag`, "policy:    apps"}, ""},
		{"default registry", "apps/web:signed", exitOK, []string{"image:     registry.test/apps/web"}, ""},
		{"unsigned", "registry.test/apps/web:unsigned", exitDenied, []string{"verdict:   DENIED", "reason:    no signature"}, ""},
		{"unmatched", "registry.test/other/thing:v1", exitDenied, []string{"policy:    (none: unmatched)", "reason:    no policy matches registry.test/other/thing and unmatched is deny"}, ""},
		{"unknown registry", "evil.example.com/apps/web:signed", exitError, nil, "not an upstream"},
		{"missing tag", "registry.test/apps/web:nope", exitError, nil, "not found"},
		{"bad reference", "registry.test/apps/web:-bad", exitError, nil, "invalid tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, "verify", "--config", env.config, tt.image)
			if code != tt.wantCode {
				t.Fatalf("verify %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", tt.image, code, tt.wantCode, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("verify %s: stdout lacks %q:\n%s", tt.image, w, out)
				}
			}
			if tt.wantErr != "" && !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("verify %s: stderr lacks %q:\n%s", tt.image, tt.wantErr, errOut)
			}
		})
	}
}

func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	code, out, errOut := runCLI(t, "policy", "check", "--config", env.config)
	if code != exitOK || !strings.Contains(out, "ok: 1 upstreams, 1 policies, 1 signers") {
		t.Errorf("policy check (valid) = %d, %q, %q; want 0 and an ok summary", code, out, errOut)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("upstreams:\n  - registry: r.test\n    endpoint: http://127.0.0.1:1\npolicies:\n  - name: p\n    images: [\"r.test/**\"]\n    mdoe: audit\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "policy", "check", "--config", bad)
	if code == exitOK || !strings.Contains(errOut, "bad.yaml:7") || !strings.Contains(errOut, "mdoe") {
		t.Errorf("policy check (typo) = %d, stderr %q; want non-zero naming bad.yaml:7 and the unknown key", code, errOut)
	}

	code, _, errOut = runCLI(t, "policy", "check", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code == exitOK || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("policy check (missing file) = %d, %q; want non-zero naming the file", code, errOut)
	}
}

func TestCheckedConfigExamples(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI(t, "policy", "check", "--config", "../../deploy/pullgate.yaml")
	if code != exitOK {
		t.Errorf("deploy/pullgate.yaml does not validate: exit %d\n%s%s", code, out, errOut)
	}
}

func TestUsageAndVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		wantCode int
		want     string
	}{
		{nil, exitError, "usage:"},
		{[]string{"nope"}, exitError, `unknown command "nope"`},
		{[]string{"policy"}, exitError, "usage:"},
		{[]string{"version"}, exitOK, "pullgate dev"},
		{[]string{"help"}, exitOK, "pullgate serve"},
		{[]string{"verify", "--config", "x.yaml"}, exitError, "exactly one IMAGE"},
	}
	for _, tt := range tests {
		code, out, errOut := runCLI(t, tt.args...)
		if code != tt.wantCode || !strings.Contains(out+errOut, tt.want) {
			t.Errorf("pullgate %q = %d, %q; want %d and %q", tt.args, code, out+errOut, tt.wantCode, tt.want)
		}
	}
}

// serveAndPull runs `pullgate serve` for env, GETs the signed manifest
// through it once it listens, then cancels its context (what SIGTERM
// does through signal.NotifyContext) and returns the manifest status, the
// exit code and the logs.
func serveAndPull(t *testing.T, env testEnv) (status, code int, logs string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env.writeConfig(t, addr)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var out bytes.Buffer
	go func() { done <- run(ctx, []string{"serve", "--config", env.config}, &bytes.Buffer{}, &out) }()
	client := &http.Client{Timeout: 5 * time.Second}
	var resp *http.Response
	for range 200 {
		resp, err = client.Get("http://" + addr + "/v2/apps/web/manifests/signed")
		if err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling for start-up, not a timing assertion
	}
	if err != nil {
		cancel()
		<-done
		t.Fatalf("pullgate never served: %v\n%s", err, out.String())
	}
	resp.Body.Close()
	cancel()
	code = <-done
	return resp.StatusCode, code, out.String()
}

func TestServeShutsDownGracefully(t *testing.T) {
	t.Parallel()
	status, code, logs := serveAndPull(t, newTestEnv(t))
	if status != http.StatusOK {
		t.Errorf("GET signed manifest through serve = %d, want 200", status)
	}
	if code != exitOK {
		t.Errorf("serve exited %d after shutdown, want 0; logs:\n%s", code, logs)
	}
	for _, want := range []string{`"msg":"pullgate listening"`, `"msg":"decision"`, `"msg":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("serve logs lack %s:\n%s", want, logs)
		}
	}
}
