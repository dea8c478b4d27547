package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemon is a process the benchmark started (docker-registry, pullgate).
// It is stopped by its PID only.
type daemon struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// start starts bin with args, its output to logs/<name>.log (appended).
func (b *bench) start(name, bin string, env []string, args ...string) (*daemon, error) {
	logPath := filepath.Join(b.dir, "logs", name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = b.dir
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group; the kernel kills it if the benchmark dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &daemon{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(d.done) }()
	b.daemons = append(b.daemons, d)
	return d, nil
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

// stop sends SIGTERM, waits up to 30s, then SIGKILLs.
func (d *daemon) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	_ = syscall.Kill(d.pid(), syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(d.pid(), syscall.SIGKILL)
		<-d.done
	}
}

// waitReady polls url until it answers 200.
func (d *daemon) waitReady(ctx context.Context, url string) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-d.done:
			return fmt.Errorf("%s exited before it was ready; see %s:\n%s", d.name, d.log, tailFile(d.log, 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s after 30s; see %s", d.name, url, d.log)
		}
	}
}

// memory returns the process's peak and current resident set (VmHWM,
// VmRSS) in bytes.
func (d *daemon) memory() (peak, current int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", d.pid()))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %s %q", k, v)
		}
		if k == "VmHWM" {
			peak = n << 10
		} else {
			current = n << 10
		}
	}
	if peak == 0 {
		return 0, 0, errors.New("no VmHWM in /proc status")
	}
	return peak, current, sc.Err()
}

// cpu returns the CPU time (user + system) the process has used.
func (d *daemon) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.pid()))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces): state is
	// field 3, utime 14 and stime 15, in clock ticks (100 per second).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tailFile(p string, n int) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// registry is a docker-registry (distribution 2.8) on loopback:
// TESTBED.md §2.1, as an upstream or, with remote set, as distribution's
// pull-through proxy.
type registry struct {
	name, remote string
	port         int
	dir          string // config and storage
	proc         *daemon
}

func (r *registry) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }
func (r *registry) url() string  { return "http://" + r.addr() }

func (b *bench) newRegistry(name, remote string) (*registry, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &registry{name: name, remote: remote, port: port, dir: filepath.Join(b.dir, name)}
	if err := os.MkdirAll(filepath.Join(r.dir, "data"), 0o755); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: %s
health:
  storagedriver:
    enabled: false
`, filepath.Join(r.dir, "data"), r.addr())
	if remote != "" {
		cfg += "proxy:\n  remoteurl: " + remote + "\n"
	}
	if err := os.WriteFile(filepath.Join(r.dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return r, nil
}

// startRegistry (re)starts r and waits until it answers.
func (b *bench) startRegistry(ctx context.Context, r *registry) error {
	p, err := b.start(r.name, b.registryBin, nil, "serve", filepath.Join(r.dir, "config.yml"))
	if err != nil {
		return err
	}
	r.proc = p
	return p.waitReady(ctx, r.url()+"/v2/")
}

// wipe stops r and deletes its storage.
func (r *registry) wipe() error {
	if r.proc != nil {
		r.proc.stop()
		r.proc = nil
	}
	data := filepath.Join(r.dir, "data")
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	return os.MkdirAll(data, 0o755)
}
