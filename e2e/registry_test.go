//go:build e2e

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Registry is Debian's docker-registry (distribution 2.8.2) on a loopback
// port with its own config and filesystem storage (TESTBED §2.1). Stop and
// Start keep the address and the content, for upstream-fault tests.
type Registry struct {
	// Addr is 127.0.0.1:<port>, the registry's host for image references.
	Addr string

	bed    *testbed
	name   string
	dir    string // config and storage
	config string
	proc   *process
	past   string // output of processes before the last (re)start
}

// startRegistry starts a docker-registry on a free loopback port, waits
// until GET /v2/ answers, and stops it by PID when the test ends.
func (b *testbed) startRegistry(t testing.TB) *Registry {
	t.Helper()
	r := &Registry{bed: b, name: "docker-registry"}
	r.dir = b.mkdir(t, "registry-"+randomHex(t, 4))
	if err := os.MkdirAll(filepath.Join(r.dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.config = filepath.Join(r.dir, "config.yml")
	t.Cleanup(func() {
		if r.Running() {
			r.Stop(t)
		}
		if t.Failed() && r.proc != nil {
			t.Logf("%s log (last lines):\n%s", r.name, tail(r.Logs(), 40))
		}
	})
	for attempt := 1; ; attempt++ {
		r.Addr = freeLoopbackAddr(t)
		r.writeConfig(t)
		err := r.start(t)
		if err == nil {
			return r
		}
		if !isAddrInUse(err) || attempt == 3 {
			t.Fatal(err)
		}
	}
}

// writeConfig writes the registry's config for r.Addr: filesystem storage,
// deletes enabled (tests re-point and delete tags), no storage health
// check, an access log (the upstream request sequence is evidence).
func (r *Registry) writeConfig(t testing.TB) {
	t.Helper()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: %s
  secret: e2e-%s
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
`, filepath.Join(r.dir, "data"), r.Addr, randomHex(t, 16))
	if err := os.WriteFile(r.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r *Registry) start(t testing.TB) error {
	t.Helper()
	if r.proc != nil {
		r.past += r.proc.output() + "--- e2e: registry restarted ---\n"
	}
	r.proc = r.bed.startProcess(t, r.name, nil, r.bed.tools.registry, "serve", r.config)
	return r.proc.waitReady(t, r.URL()+"/v2/")
}

// Start restarts a stopped registry on the same address with the same
// storage, and waits until it answers.
func (r *Registry) Start(t testing.TB) {
	t.Helper()
	if r.Running() {
		t.Fatalf("%s at %s is already running", r.name, r.Addr)
	}
	if err := r.start(t); err != nil {
		t.Fatal(err)
	}
}

// Stop kills the registry by PID (SIGTERM; distribution 2.8 without a
// drain timeout just dies) and waits for it.
func (r *Registry) Stop(t testing.TB) {
	t.Helper()
	if !r.Running() {
		t.Fatalf("%s at %s is not running", r.name, r.Addr)
	}
	st, killed := r.proc.stop(syscall.SIGTERM)
	t.Logf("stopped %s (pid %d): %v", r.name, r.proc.pid(), st)
	if killed {
		t.Errorf("%s (pid %d) ignored SIGTERM for %v and was killed", r.name, r.proc.pid(), stopTimeout)
	}
}

// Running reports whether the registry process is alive.
func (r *Registry) Running() bool { return r.proc != nil && !r.proc.exited() }

// URL is the registry's base URL (plain HTTP).
func (r *Registry) URL() string { return "http://" + r.Addr }

// Ref is the image reference repoRef (e.g. "e2e/app:v1") on this registry.
func (r *Registry) Ref(repoRef string) string { return r.Addr + "/" + repoRef }

// Logs is everything the registry logged (access log included) so far,
// across restarts.
func (r *Registry) Logs() string {
	if r.proc == nil {
		return r.past
	}
	return r.past + r.proc.output()
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
