//go:build e2e

package e2e

import "syscall"

// daemonAttr puts a daemon in its own process group (a ^C to `go test`
// reaches the test, whose cleanup stops the daemon in order) and has the
// kernel SIGKILL it if the test binary dies without running cleanups.
func daemonAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
