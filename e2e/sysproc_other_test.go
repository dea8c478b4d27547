//go:build e2e && !linux

package e2e

import "syscall"

// daemonAttr puts a daemon in its own process group. Only Linux can also
// tie its life to the test binary's.
func daemonAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
