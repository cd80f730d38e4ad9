//go:build unix

package ipc

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

// RawRead reads into p from the non-blocking socket behind raw once it has
// data. read(2) is entered directly (RawSyscall) rather than through the
// runtime's syscall path, which woke the runtime's monitor thread at reads
// of an idle process and, with one thread (GOMAXPROCS 1), could hand the
// process's only P to another thread mid-read. While the socket is empty
// it waits in the runtime's poller, so deadlines and Close work as for
// net.Conn.Read. A closed peer gives io.EOF.
func RawRead(raw syscall.RawConn, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, errno := 0, syscall.Errno(0)
	err := raw.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait until readable
			}
			n, errno = int(r), e
			return true
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
