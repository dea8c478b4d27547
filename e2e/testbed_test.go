//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Versions of the tools the suite runs. e2e/install-tools.sh installs
// exactly these into $PULLGATE_TOOLS/<tool>-<version>/.
const (
	craneVersion       = "v0.22.1"
	cosign2Version     = "v2.6.5"
	cosign3Version     = "v3.1.3"
	crictlVersion      = "v1.37.0"
	conformanceVersion = "v0.0.0-20260831232431-97274622c111"
)

// Timeouts of the harness. The machine may be busy (2 vCPUs shared with
// unit tests), so they are generous; a healthy run is far below them.
const (
	commandTimeout = 2 * time.Minute  // one CLI invocation
	readyTimeout   = 30 * time.Second // a daemon answering /v2/
	stopTimeout    = 15 * time.Second // a daemon exiting after its signal
)

// toolset holds the absolute paths of every program the suite runs.
type toolset struct {
	pullgate string // $PULLGATE_BIN
	crane    string // $PULLGATE_TOOLS/crane-v0.22.1/crane
	cosign2  string // $PULLGATE_TOOLS/cosign-v2.6.5/cosign
	cosign3  string // $PULLGATE_TOOLS/cosign-v3.1.3/cosign
	registry string // docker-registry on PATH (Debian package)

	containerd  string // containerd on PATH (Debian package)
	ctr         string // ctr on PATH (Debian package containerd)
	crictl      string // $PULLGATE_TOOLS/crictl-v1.37.0/crictl
	conformance string // $PULLGATE_TOOLS/conformance-<version>/conformance
}

// findTools locates every tool and fails the test naming each one that
// is missing. It never skips: a suite that silently skips proves nothing.
func findTools(t testing.TB) toolset {
	t.Helper()
	var missing []string
	var ts toolset

	if bin := os.Getenv("PULLGATE_BIN"); bin == "" {
		missing = append(missing, "pullgate: PULLGATE_BIN is not set (make build, then PULLGATE_BIN=$PWD/bin/pullgate; make e2e does both)")
	} else if abs, err := filepath.Abs(bin); err != nil || !isExecutable(abs) {
		missing = append(missing, fmt.Sprintf("pullgate: PULLGATE_BIN=%s is not an executable file (make build)", bin))
	} else {
		ts.pullgate = abs
	}

	dir := os.Getenv("PULLGATE_TOOLS")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("PULLGATE_TOOLS is not set and the home directory is unknown: %v", err)
		}
		dir = filepath.Join(home, ".cache", "pullgate", "tools")
	}
	tool := func(sub, bin, what string) string {
		p := filepath.Join(dir, sub, bin)
		if !isExecutable(p) {
			missing = append(missing, fmt.Sprintf("%s: %s not found", what, p))
			return ""
		}
		return p
	}
	ts.crane = tool("crane-"+craneVersion, "crane", "crane "+craneVersion)
	ts.cosign2 = tool("cosign-"+cosign2Version, "cosign", "cosign "+cosign2Version)
	ts.cosign3 = tool("cosign-"+cosign3Version, "cosign", "cosign "+cosign3Version)
	ts.crictl = tool("crictl-"+crictlVersion, "crictl", "crictl "+crictlVersion)
	ts.conformance = tool("conformance-"+conformanceVersion, "conformance", "distribution-spec conformance "+conformanceVersion)

	onPath := func(bin, pkg string) string {
		p, err := exec.LookPath(bin)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s: not on PATH (Debian package %s)", bin, pkg))
		}
		return p
	}
	ts.registry = onPath("docker-registry", "docker-registry")
	ts.containerd = onPath("containerd", "containerd")
	ts.ctr = onPath("ctr", "containerd")

	if len(missing) > 0 {
		t.Fatalf("e2e tools are missing; run `make tools` (or `make e2e`, which installs them):\n  %s",
			strings.Join(missing, "\n  "))
	}
	return ts
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// testbed is one hermetic environment for a top-level test: the tools, a
// scratch directory that serves as HOME for every child process, and an
// egress trap. Daemons and CLIs are started through it.
type testbed struct {
	tools   toolset
	dir     string   // scratch root
	env     []string // base environment of every child process
	egress  *egressTrap
	cosign2 *cosign
	cosign3 *cosign

	mu            sync.Mutex
	trustedRoot   string // empty Sigstore trusted root (lazily made)
	signingConfig string // empty cosign v3 signing config (lazily made)
}

// newTestbed finds the tools (failing the test if one is missing) and
// prepares a hermetic environment whose cleanup fails the test if any
// child process tried to reach the network.
func newTestbed(t *testing.T) *testbed {
	t.Helper()
	b := &testbed{tools: findTools(t), dir: t.TempDir()}
	home := b.mkdir(t, "home")
	b.egress = startEgressTrap(t)
	b.env = hermeticEnv(home, b.egress.URL())
	b.cosign2 = &cosign{bed: b, version: cosign2Version, bin: b.tools.cosign2, tufRoot: b.mkdir(t, "tuf-"+cosign2Version)}
	b.cosign3 = &cosign{bed: b, version: cosign3Version, bin: b.tools.cosign3, tufRoot: b.mkdir(t, "tuf-"+cosign3Version)}
	return b
}

// mkdir makes a directory under the testbed's scratch root.
func (b *testbed) mkdir(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(b.dir, rel)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// hermeticEnv is the environment of every child process: the test's own
// environment without anything that configures the tools (Docker, cosign,
// Sigstore, proxies), a scratch HOME, and HTTP(S) proxies pointing at the
// egress trap. Go programs (all of ours) never proxy loopback addresses,
// so registry traffic is direct while any other destination is caught by
// the trap, which refuses it before any DNS lookup happens.
func hermeticEnv(home, trapURL string) []string {
	// REQUEST_METHOD makes Go ignore HTTP_PROXY (CGI, "httpoxy"): drop it
	// so the trap always applies.
	drop := []string{"HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "REQUEST_METHOD"}
	dropPrefix := []string{"DOCKER_", "COSIGN_", "SIGSTORE_", "TUF_", "REGISTRY_", "PULLGATE_"}
	var env []string
outer:
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		uk := strings.ToUpper(k)
		for _, d := range drop {
			if uk == d {
				continue outer
			}
		}
		for _, p := range dropPrefix {
			if strings.HasPrefix(uk, p) {
				continue outer
			}
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"DOCKER_CONFIG="+filepath.Join(home, ".docker"),
		"HTTP_PROXY="+trapURL, "http_proxy="+trapURL,
		"HTTPS_PROXY="+trapURL, "https_proxy="+trapURL,
	)
}

// result is the outcome of one command.
type result struct {
	Output   string // stdout and stderr, interleaved as written
	Stdout   string
	Code     int
	Duration time.Duration
}

// run runs name with args in the hermetic environment plus env (KEY=VALUE;
// later entries win), bounded by commandTimeout, and returns its combined
// output and exit code. A command that cannot start or times out fails
// the test.
func (b *testbed) run(t testing.TB, env []string, name string, args ...string) (string, int) {
	t.Helper()
	r := b.runFull(t, env, name, args...)
	return r.Output, r.Code
}

// runFull is run with stdout available on its own (for commands whose
// output is data, such as crane manifest).
func (b *testbed) runFull(t testing.TB, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append([]string(nil), b.env...), env...)
	cmd.Dir = b.dir
	cmd.WaitDelay = 5 * time.Second
	var stdout bytes.Buffer
	combined := &syncBuffer{}
	cmd.Stdout = io.MultiWriter(&stdout, combined)
	cmd.Stderr = combined
	start := time.Now()
	err := cmd.Run()
	r := result{Output: combined.String(), Stdout: stdout.String(), Duration: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("$ %s\ntimed out or cancelled after %v: %v\n%s", cmdline(name, args), r.Duration.Round(time.Millisecond), ctx.Err(), r.Output)
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("$ %s\ncannot run: %v", cmdline(name, args), err)
	}
	t.Logf("$ %s  → exit %d in %v", cmdline(name, args), r.Code, r.Duration.Round(time.Millisecond))
	return r
}

// mustRun is run for commands that must succeed; it returns stdout.
func (b *testbed) mustRun(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	r := b.runFull(t, env, name, args...)
	if r.Code != 0 {
		t.Fatalf("$ %s\nexit %d, want 0:\n%s", cmdline(name, args), r.Code, r.Output)
	}
	return r.Stdout
}

// cmdline renders a command for logs, with the tool directory shortened.
func cmdline(name string, args []string) string {
	parts := []string{shortTool(name)}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$*?") {
			a = fmt.Sprintf("%q", a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// shortTool names a tool by its last two path elements
// (cosign-v3.1.3/cosign), which is what tells the versions apart.
func shortTool(p string) string {
	if !filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Base(filepath.Dir(p)), filepath.Base(p))
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// egressTrap is the HTTP(S) proxy of every child process. It refuses and
// records every request: on loopback-only tests there must be none.
type egressTrap struct {
	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	attempts []string
}

func startEgressTrap(t testing.TB) *egressTrap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &egressTrap{ln: ln}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				e.refuse(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		e.wg.Wait()
		if a := e.Attempts(); len(a) > 0 {
			t.Errorf("child processes tried to reach beyond loopback (refused by the egress trap):\n  %s", strings.Join(a, "\n  "))
		}
	})
	return e
}

func (e *egressTrap) refuse(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	what := "unreadable request"
	if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
		what = req.Method + " " + req.Host
		if req.Method != http.MethodConnect {
			what = req.Method + " " + req.URL.String()
		}
	}
	e.mu.Lock()
	e.attempts = append(e.attempts, what)
	e.mu.Unlock()
	const msg = "pullgate e2e: no network beyond loopback\n"
	fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(msg), msg)
}

// URL is the proxy URL child processes are given.
func (e *egressTrap) URL() string { return "http://" + e.ln.Addr().String() }

// take returns the refused requests so far and forgets them, for a test
// that provokes one on purpose.
func (e *egressTrap) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.attempts
	e.attempts = nil
	return a
}

// takeWhere returns the refused requests for which match is true and
// forgets them, leaving the others to fail the test: for a test that
// provokes some on purpose while others run in parallel.
func (e *egressTrap) takeWhere(match func(string) bool) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var taken, kept []string
	for _, a := range e.attempts {
		if match(a) {
			taken = append(taken, a)
		} else {
			kept = append(kept, a)
		}
	}
	e.attempts = kept
	return taken
}

// Attempts lists the refused requests so far.
func (e *egressTrap) Attempts() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.attempts...)
}
