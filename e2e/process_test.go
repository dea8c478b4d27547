//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// process is a daemon started by the suite (docker-registry, pullgate,
// later containerd). Its stdout and stderr go to one buffer. The owner
// stops it by PID with stop; daemonAttr makes the kernel kill it should
// the test binary die first (a -timeout panic runs no cleanups).
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when the process has been waited for
	err  error         // the Wait result, set before done is closed
}

// startProcess starts bin with args in the hermetic environment plus env.
func (b *testbed) startProcess(t testing.TB, name string, env []string, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append([]string(nil), b.env...), env...)
	cmd.Dir = b.dir
	cmd.SysProcAttr = daemonAttr()
	p := &process{name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Logf("started %s (pid %d): %s", name, cmd.Process.Pid, cmdline(bin, args))
	return p
}

// pid is the process ID.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended (and been waited for).
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// output is everything the process wrote so far.
func (p *process) output() string { return p.out.String() }

// stop sends sig to the process (by PID), waits up to stopTimeout for
// it to exit, then kills it. It returns the process state; killed
// reports that SIGKILL was needed.
func (p *process) stop(sig syscall.Signal) (state *os.ProcessState, killed bool) {
	if !p.exited() {
		_ = syscall.Kill(p.pid(), sig)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			_ = syscall.Kill(p.pid(), syscall.SIGKILL)
			<-p.done
			killed = true
		}
	}
	return p.cmd.ProcessState, killed
}

// waitReady polls url until it answers 200, failing the test if the
// process exits first or readyTimeout passes. It returns the error
// instead of failing when the process exited (so callers can retry
// on a port clash).
func (p *process) waitReady(t testing.TB, url string) error {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), readyTimeout)
	defer cancel()
	start := time.Now()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Logf("%s ready at %s after %v", p.name, url, time.Since(start).Round(time.Millisecond))
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%w):\n%s", p.name, p.err, p.output())
		case <-ctx.Done():
			p.stop(syscall.SIGKILL)
			t.Fatalf("%s not ready at %s after %v:\n%s", p.name, url, readyTimeout, p.output())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// freeLoopbackAddr returns 127.0.0.1:<port> for a port that was free a
// moment ago. Daemons that lose the race fail to bind and are retried
// (see isAddrInUse).
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// isAddrInUse reports whether a daemon's failure to start was a port clash.
func isAddrInUse(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

// tail is the last n lines of s, for failure messages.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("… (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
