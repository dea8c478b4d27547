package cache

import (
	"os"
	"syscall"
)

// fallocKeepSize is FALLOC_FL_KEEP_SIZE: allocate without growing the
// file, whose size stays the bytes written.
const fallocKeepSize = 0x01

// preallocate reserves size bytes of disk for f, so that writing it does
// not allocate blocks page by page. Failure is harmless (a file system
// without fallocate): writes allocate as usual.
func preallocate(f *os.File, size int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.Fallocate(int(fd), fallocKeepSize, 0, size)
	})
}
