package namespace

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cloneArgs is struct clone_args of clone3(2) up to set_tid_size
// (CLONE_ARGS_SIZE_VER1).
type cloneArgs struct {
	flags      uint64
	pidfd      uint64
	childTID   uint64
	parentTID  uint64
	exitSignal uint64
	stack      uint64
	stackSize  uint64
	tls        uint64
	setTID     uint64
	setTIDSize uint64
}

// forkData is everything the child touches between clone3 and execve. It
// lives on the heap (forkHeld keeps it there) and is filled before the
// fork: the child must not allocate, grow its stack or run the scheduler,
// since it is a copy of one thread of a multithreaded program.
type forkData struct {
	args       cloneArgs
	tid        int32
	dir        *byte
	path       *byte
	argv, envv []*byte
	errPipe    int
	errno      uint64 // what failed: errno, and 1 in the top byte for chdir
	self       int32
	foreground bool
	dfl        [4]uint64 // a struct sigaction of zeros: SIG_DFL, no flags, empty mask
	noSignals  uint64    // an empty signal set
	allSignals uint64
	oldMask    uint64
}

var forkHeld *forkData

// StartAs starts the program at path, in directory dir, as process number
// pid of the calling process's PID namespace (clone3 with set_tid: the number is taken
// atomically, or the call fails with EEXIST). The child gets a process group
// of its own, made the terminal's foreground group when stdin is a terminal
// whose foreground group is the caller's, so that a terminal's signals reach
// the child and not the caller; its signal dispositions are all default and
// its signal mask empty. Descriptors above 2 should be close-on-exec.
//
// Go's os/exec cannot ask for a process number, and the Go runtime's own
// threads take the lowest free numbers of a new namespace: the caller must
// have exec'ed since its threads were created for low numbers to be free.
// Needs CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE) over the PID namespace and
// Linux 5.5.
func StartAs(pid int, dir, path string, argv, env []string) (int, error) {
	d := &forkData{tid: int32(pid), allSignals: ^uint64(0)}
	var err error
	if d.dir, err = syscall.BytePtrFromString(dir); err != nil {
		return 0, err
	}
	if d.path, err = syscall.BytePtrFromString(path); err != nil {
		return 0, err
	}
	if d.argv, err = syscall.SlicePtrFromStrings(argv); err != nil {
		return 0, err
	}
	if d.envv, err = syscall.SlicePtrFromStrings(env); err != nil {
		return 0, err
	}
	if pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil && pgrp == unix.Getpgrp() {
		d.foreground = true
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return 0, fmt.Errorf("pipe: %w", err)
	}
	defer unix.Close(p[0])
	d.errPipe = p[1]
	d.args = cloneArgs{
		exitSignal: uint64(unix.SIGCHLD),
		setTID:     uint64(uintptr(unsafe.Pointer(&d.tid))),
		setTIDSize: 1,
	}
	forkHeld = d
	defer func() { forkHeld = nil }()

	// The child is a copy of this thread: keep the goroutine on it, and
	// block every signal across the fork so that no Go handler runs in the
	// child before its dispositions are reset.
	runtime.LockOSThread()
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK,
		uintptr(unsafe.Pointer(&d.allSignals)), uintptr(unsafe.Pointer(&d.oldMask)), 8, 0, 0)
	r, _, errno := syscall.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&d.args)), unsafe.Sizeof(d.args), 0)
	if r == 0 && errno == 0 {
		child(d) // does not return
	}
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK,
		uintptr(unsafe.Pointer(&d.oldMask)), 0, 8, 0, 0)
	runtime.UnlockOSThread()
	unix.Close(p[1])
	if errno != 0 {
		return 0, fmt.Errorf("clone3 as PID %d: %w", pid, errno)
	}
	child := int(r)
	// The pipe closes at a successful exec; otherwise it brings errno.
	var buf [8]byte
	n, err := readFull(p[0], buf[:])
	if err != nil {
		return child, fmt.Errorf("read exec status: %w", err)
	}
	if n == 8 {
		var ws unix.WaitStatus
		unix.Wait4(child, &ws, 0, nil)
		e := *(*uint64)(unsafe.Pointer(&buf[0]))
		if e>>56 == 1 {
			return 0, &fs.PathError{Op: "chdir", Path: dir, Err: syscall.Errno(e &^ (0xff << 56))}
		}
		return 0, &ExecError{Path: path, Err: syscall.Errno(e)}
	}
	return child, nil
}

// ExecError is a failed execve in a child started by StartAs.
type ExecError struct {
	Path string
	Err  error
}

func (e *ExecError) Error() string { return fmt.Sprintf("exec %s: %v", e.Path, e.Err) }
func (e *ExecError) Unwrap() error { return e.Err }

func readFull(fd int, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

// child runs in the new process, between clone3 and execve: raw system
// calls only, no allocation, no stack growth (nosplit), like the syscall
// package's own fork path.
//
//go:nosplit
//go:norace
func child(d *forkData) {
	if _, _, errno := syscall.RawSyscall(unix.SYS_CHDIR, uintptr(unsafe.Pointer(d.dir)), 0, 0); errno != 0 {
		d.errno = uint64(errno) | 1<<56
		syscall.RawSyscall(unix.SYS_WRITE, uintptr(d.errPipe), uintptr(unsafe.Pointer(&d.errno)), 8)
		for {
			syscall.RawSyscall(unix.SYS_EXIT_GROUP, 125, 0, 0)
		}
	}
	self, _, _ := syscall.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
	d.self = int32(self)
	syscall.RawSyscall(unix.SYS_SETPGID, 0, 0, 0)
	if d.foreground {
		// Allowed from a background group because SIGTTOU is blocked.
		syscall.RawSyscall(unix.SYS_IOCTL, 0, unix.TIOCSPGRP, uintptr(unsafe.Pointer(&d.self)))
	}
	for sig := uintptr(1); sig <= 64; sig++ {
		syscall.RawSyscall6(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&d.dfl[0])), 0, 8, 0, 0)
	}
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&d.noSignals)), 0, 8, 0, 0)
	_, _, errno := syscall.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(d.path)),
		uintptr(unsafe.Pointer(&d.argv[0])), uintptr(unsafe.Pointer(&d.envv[0])))
	d.errno = uint64(errno)
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(d.errPipe), uintptr(unsafe.Pointer(&d.errno)), 8)
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 127, 0, 0)
	}
}
