//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Containerd is Debian's containerd (1.6) started by the suite with its
// own root, state, sockets and CRI registry config_path (a certs.d
// directory the tests write hosts.toml files into), the native snapshotter
// (no mounts) and a CRI streaming server on loopback (TESTBED §4.1). Only
// pulls are ever made: no container, so no shim, is started.
type Containerd struct {
	// Socket is the gRPC socket ctr and crictl talk to.
	Socket string
	// HostsDir is the certs.d directory: <registry>/hosts.toml. The CRI
	// plugin reads it (config_path) and ctr gets it as --hosts-dir.
	// containerd reads it on every pull, so edits apply at once.
	HostsDir string

	bed    *testbed
	dir    string
	crictl string // crictl's config file
	proc   *process
}

// startContainerd starts containerd and waits until its CRI plugin is
// up. It is stopped by PID when the test ends, after which nothing of
// it (process, mount) may be left.
func (b *testbed) startContainerd(t testing.TB) *Containerd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("containerd needs root: run the e2e suite as root (CI does); it never skips")
	}
	// Unix socket paths are limited to 107 bytes: keep the directory short.
	dir, err := os.MkdirTemp("", "pg-ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Containerd{bed: b, dir: dir, Socket: filepath.Join(dir, "containerd.sock"), HostsDir: filepath.Join(dir, "certs.d")}
	for _, d := range []string{"root", "state", "opt", "certs.d", "cni/bin", "cni/conf"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The snapshotters that would probe with test mounts are disabled:
	// the suite uses native everywhere.
	cfg := fmt.Sprintf(`# written by the pullgate e2e suite
version = 2
root = %[1]q
state = %[2]q
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.overlayfs",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[debug]
  level = "debug"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %[5]q
  [plugins."io.containerd.grpc.v1.cri"]
    disable_apparmor = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "native"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = %[6]q
      conf_dir = %[7]q
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = %[8]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Socket, c.Socket+".ttrpc",
		filepath.Join(dir, "opt"), filepath.Join(dir, "cni/bin"), filepath.Join(dir, "cni/conf"), c.HostsDir)
	config := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c.crictl = filepath.Join(dir, "crictl.yaml")
	crictlCfg := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n", c.Socket, c.Socket)
	if err := os.WriteFile(c.crictl, []byte(crictlCfg), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		if c.proc != nil && !c.proc.exited() {
			st, killed := c.proc.stop(syscall.SIGTERM)
			t.Logf("stopped containerd (pid %d): %v", c.proc.pid(), st)
			if killed {
				t.Errorf("containerd (pid %d) ignored SIGTERM for %v and was killed", c.proc.pid(), stopTimeout)
			}
		}
		if t.Failed() && c.proc != nil {
			t.Logf("containerd log (last lines):\n%s", tail(c.proc.output(), 60))
		}
		for _, left := range leftovers(dir) {
			t.Errorf("containerd left behind: %s", left)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove containerd dir: %v", err)
		}
	})
	c.proc = b.startProcess(t, "containerd", nil, b.tools.containerd, "--config", config)
	c.waitReady(t)
	return c
}

// waitReady waits for the socket, then checks that the CRI plugin (the
// kubelet's path) and the native snapshotter loaded.
func (c *Containerd) waitReady(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), readyTimeout)
	defer cancel()
	start := time.Now()
	for {
		if conn, err := net.Dial("unix", c.Socket); err == nil {
			conn.Close()
			break
		}
		select {
		case <-c.proc.done:
			t.Fatalf("containerd exited before it was ready (%v):\n%s", c.proc.err, tail(c.proc.output(), 40))
		case <-ctx.Done():
			t.Fatalf("containerd socket %s not ready after %v:\n%s", c.Socket, readyTimeout, tail(c.proc.output(), 40))
		case <-time.After(25 * time.Millisecond):
		}
	}
	out := c.mustCtr(t, "", "plugins", "ls")
	for _, want := range []string{"io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.native"} {
		if !pluginOK(out, want) {
			t.Fatalf("containerd plugin %s is not ok:\n%s", want, out)
		}
	}
	t.Logf("containerd ready at %s after %v", c.Socket, time.Since(start).Round(time.Millisecond))
}

// pluginOK reports whether `ctr plugins ls` lists plugin id with status ok.
func pluginOK(out, id string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		// TYPE ID PLATFORMS STATUS; PLATFORMS may be "-".
		if len(f) >= 4 && f[0]+"."+f[1] == id {
			return f[len(f)-1] == "ok"
		}
	}
	return false
}

// leftovers lists processes (a shim, a stray containerd) whose command
// line names dir, and mounts under dir.
func leftovers(dir string) []string {
	var out []string
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fields := strings.Fields(sc.Text()); len(fields) > 4 && strings.HasPrefix(fields[4], dir) {
				out = append(out, "mount "+fields[4])
			}
		}
		f.Close()
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmd), dir) {
			out = append(out, fmt.Sprintf("process %d: %s", pid, strings.ReplaceAll(string(cmd), "\x00", " ")))
		}
	}
	return out
}

// ctr runs ctr against this containerd in namespace ns ("" for ctr's
// default) and returns the result.
func (c *Containerd) ctr(t testing.TB, ns string, args ...string) result {
	t.Helper()
	base := []string{"--address", c.Socket}
	if ns != "" {
		base = append(base, "--namespace", ns)
	}
	return c.bed.runFull(t, nil, c.bed.tools.ctr, append(base, args...)...)
}

func (c *Containerd) mustCtr(t testing.TB, ns string, args ...string) string {
	t.Helper()
	r := c.ctr(t, ns, args...)
	if r.Code != 0 {
		t.Fatalf("ctr %s: exit %d, want 0:\n%s", strings.Join(args, " "), r.Code, r.Output)
	}
	return r.Stdout
}

// crictlRun runs crictl against this containerd's CRI plugin.
func (c *Containerd) crictlRun(t testing.TB, args ...string) result {
	t.Helper()
	return c.bed.runFull(t, nil, c.bed.tools.crictl, append([]string{"--config", c.crictl}, args...)...)
}

// pull is one pull by a real containerd client.
type pull struct {
	Client string // "ctr" or "crictl"
	Ref    string
	result
}

// OK reports whether the pull succeeded.
func (p pull) OK() bool { return p.Code == 0 }

// ErrorText is what the user saw when the pull failed: ctr's "ctr: …"
// line, or crictl's "pulling image: …" message.
func (p pull) ErrorText() string {
	for _, l := range strings.Split(p.Output, "\n") {
		switch {
		case p.Client == "ctr" && strings.HasPrefix(l, "ctr: "):
			return l
		case p.Client == "crictl" && strings.Contains(l, "msg=\"pulling image: "):
			return l
		}
	}
	return strings.TrimSpace(p.Output)
}

// ctrPull is `ctr image pull` (client side: resolving and fetching
// happen in the ctr process, which reads HostsDir) into namespace ns.
// It unpacks the host platform with the native snapshotter.
func (c *Containerd) ctrPull(t testing.TB, ns, ref string) pull {
	t.Helper()
	r := c.ctr(t, ns, "image", "pull", "--snapshotter", "native", "--hosts-dir", c.HostsDir, ref)
	return pull{Client: "ctr", Ref: ref, result: r}
}

// crictlPull is `crictl pull` (the kubelet's path: the CRI plugin in the
// daemon pulls into namespace k8s.io, reading hosts.toml through
// config_path).
func (c *Containerd) crictlPull(t testing.TB, ref string) pull {
	t.Helper()
	r := c.crictlRun(t, "pull", ref)
	return pull{Client: "crictl", Ref: ref, result: r}
}

// ctrRemove removes images from namespace ns with --sync: containerd's
// garbage collection has run when it returns, so content no image holds
// any more is gone and cannot satisfy a later pull.
func (c *Containerd) ctrRemove(t testing.TB, ns string, refs ...string) {
	t.Helper()
	if len(refs) == 0 {
		return
	}
	c.mustCtr(t, ns, append([]string{"image", "rm", "--sync"}, refs...)...)
}

// ctrImages lists the image names in namespace ns.
func (c *Containerd) ctrImages(t testing.TB, ns string) []string {
	t.Helper()
	return strings.Fields(c.mustCtr(t, ns, "image", "ls", "--quiet"))
}

// ctrHasContent reports whether the content store (as namespace ns sees
// it) holds dgst.
func (c *Containerd) ctrHasContent(t testing.TB, ns, dgst string) bool {
	t.Helper()
	for _, l := range strings.Split(c.mustCtr(t, ns, "content", "ls", "--quiet"), "\n") {
		if strings.TrimSpace(l) == dgst {
			return true
		}
	}
	return false
}

// crictlRemove removes CRI images (namespace k8s.io) by reference;
// unknown references are ignored.
func (c *Containerd) crictlRemove(t testing.TB, refs ...string) {
	t.Helper()
	for _, ref := range refs {
		r := c.crictlRun(t, "rmi", ref)
		if r.Code != 0 && !strings.Contains(r.Output, "not found") && !strings.Contains(r.Output, "NotFound") {
			t.Errorf("crictl rmi %s: exit %d:\n%s", ref, r.Code, r.Output)
		}
	}
}

// writeHosts installs a hosts.toml for registry (the host part of image
// references, e.g. upstream.local).
func (c *Containerd) writeHosts(t testing.TB, registry, hostsTOML string) {
	t.Helper()
	dir := filepath.Join(c.HostsDir, registry)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Write then rename: containerd may read the file at any moment.
	tmp := filepath.Join(dir, ".hosts.toml.tmp")
	if err := os.WriteFile(tmp, []byte(hostsTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "hosts.toml")); err != nil {
		t.Fatal(err)
	}
}

// failClosedHosts is the layout deploy/ ships: pullgate is the server AND
// the only [host] (containerd 1.6 ignores a hosts.toml without a [host]
// table), so no other host is ever tried.
func failClosedHosts(pullgate string) string {
	return fmt.Sprintf(`# fail closed: pullgate is the server and the only host
server = "http://%[1]s"

[host."http://%[1]s"]
  capabilities = ["pull", "resolve"]
`, pullgate)
}

// mirrorHosts is the usual mirror layout: pullgate as a [host], the real
// registry as the server. containerd falls back to the server after any
// non-2xx answer from pullgate: it enforces nothing.
func mirrorHosts(pullgate, upstream string) string {
	return fmt.Sprintf(`# the usual mirror layout (NOT what deploy/ ships)
server = "http://%s"

[host."http://%s"]
  capabilities = ["pull", "resolve"]
`, upstream, pullgate)
}
