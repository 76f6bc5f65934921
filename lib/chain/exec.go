package chain

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() {
	// The parent-death signal spawn-ns arms for PID 1 belongs to the thread
	// that exec'd the stage: a Go thread started later has none, and an
	// execve from it passes none on (measured: the payload then outlives a
	// killed spawn-ns). Locking the main goroutine in init keeps main, and
	// so every exec of the next program, on the main thread.
	runtime.LockOSThread()
}

// DefaultPath is the payload's PATH (the contract's) and the search path
// used when the caller has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// execError turns an exec or lookup failure for prog into the contract's
// 126 (found, cannot execute) or 127 (not found).
func execError(prog string, err error) error {
	code := ExitCannotExec
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		code = ExitNotFound
	}
	return &Error{Code: code, Err: fmt.Errorf("exec %s: %w", prog, err)}
}

// ExecFailure is execError for a stage that executes PROG by other means
// than Exec (a child started by hand).
func ExecFailure(prog string, err error) error { return execError(prog, err) }

// LookPath finds name the way execvp does: a name with a slash is used as
// it is, otherwise each directory of path is tried in order. An entry that
// exists but cannot be executed is remembered and reported (126) only when
// nothing later in path can be.
func LookPath(name, path string) (string, error) {
	if name == "" {
		return "", &Error{Code: ExitNotFound, Err: errors.New("exec: empty program name")}
	}
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", execError(name, err)
		}
		return name, nil
	}
	if path == "" {
		path = DefaultPath
	}
	var denied error
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		err := executable(p)
		if err == nil {
			return p, nil
		}
		if denied == nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) {
			denied = err
		}
	}
	if denied != nil {
		return "", execError(name, denied)
	}
	return "", &Error{Code: ExitNotFound, Err: fmt.Errorf("exec %s: not found in PATH", name)}
}

func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return syscall.EISDIR
	}
	return unix.Access(p, unix.X_OK)
}

// Exec replaces the stage with prog (found with LookPath in path). It only
// returns on failure, with a 126/127 error.
func Exec(argv, env []string, path string) error {
	p, err := LookPath(argv[0], path)
	if err != nil {
		return err
	}
	return ExecPath(p, argv, env)
}

// ExecPath replaces the stage with the program at p.
func ExecPath(p string, argv, env []string) error {
	if err := CloseExtraFDs(); err != nil {
		return err
	}
	return execError(argv[0], unix.Exec(p, argv, env))
}

// ExecPathFDs replaces the stage with the program at p, passing fds on as
// descriptors 3, 4, ... (every other descriptor above 2 is closed at exec).
func ExecPathFDs(p string, argv, env []string, fds []int) error {
	if err := CloseExtraFDs(); err != nil {
		return err
	}
	// Move the descriptors out of the way first, so that placing one never
	// overwrites another still to be placed.
	moved := make([]int, len(fds))
	for i, fd := range fds {
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3+len(fds))
		if err != nil {
			return Failf("pass descriptor %d: %w", fd, err)
		}
		moved[i] = nfd
	}
	for i, fd := range moved {
		if err := unix.Dup3(fd, 3+i, 0); err != nil {
			return Failf("pass descriptor %d as %d: %w", fds[i], 3+i, err)
		}
	}
	return execError(argv[0], unix.Exec(p, argv, env))
}

// ExecFD replaces the stage with the program open at fd (execveat with
// AT_EMPTY_PATH), so that a host binary runs after the root has changed.
func ExecFD(fd int, argv, env []string) error {
	if err := CloseExtraFDs(); err != nil {
		return err
	}
	var errno error
	if p := fmt.Sprintf("/proc/self/fd/%d", fd); unix.Access(p, unix.F_OK) == nil {
		// The same exec as execveat(fd, "", AT_EMPTY_PATH), but through
		// syscall.Exec, which gives the next program the caller's soft
		// RLIMIT_NOFILE back (the Go runtime raises its own to the hard
		// limit at start).
		errno = syscall.Exec(p, argv, env)
	} else {
		argvp, err := syscall.SlicePtrFromStrings(argv)
		if err != nil {
			return execError(argv[0], err)
		}
		envp, err := syscall.SlicePtrFromStrings(env)
		if err != nil {
			return execError(argv[0], err)
		}
		empty, _ := unix.BytePtrFromString("")
		_, _, e := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd),
			uintptr(unsafe.Pointer(empty)), uintptr(unsafe.Pointer(&argvp[0])),
			uintptr(unsafe.Pointer(&envp[0])), unix.AT_EMPTY_PATH, 0)
		errno = e
	}
	if errors.Is(errno, unix.ENOENT) {
		// The file is open, so what is missing is its ELF interpreter,
		// looked up inside the new root.
		return &Error{Code: ExitCannotExec, Err: fmt.Errorf("exec %s: %w (a dynamically linked binary needs its interpreter inside the tree: build with CGO_ENABLED=0)", argv[0], errno)}
	}
	return execError(argv[0], errno)
}

// CloseExtraFDs marks every descriptor above 2 close-on-exec, so nothing the
// caller left open reaches the next program (runc CVE-2024-21626 was a
// leaked directory fd).
func CloseExtraFDs() error {
	err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return Failf("mark descriptors close-on-exec: %w", err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return Failf("list open descriptors: %w", err)
	}
	for _, e := range ents {
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// ExitStatus maps how a child ended to the stage's exit code: its status,
// or 128+N when killed by signal N.
func ExitStatus(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return ExitFailure
}

// NeedProg fails with a usage error when a stage that must run something
// was given nothing.
func NeedProg(stage string, prog []string) error {
	if len(prog) == 0 {
		return Failf("no program given (usage: %s [OPTIONS] [--] PROG [ARGS...])", stage)
	}
	return nil
}

// Stages are the programs of the chain, the only ones taken from the host
// installation after the root switch. A new stage must be added here.
var Stages = []string{"spawn-relay", "spawn-cgroup", "spawn-ns", "spawn-rootfs", "spawn-caps"}

// IsStage reports whether prog names one of the chain's stages, which are
// always taken from the host installation, never from inside a tree. Any
// other name, even one starting with "spawn-" (Debian has spawn-fcgi),
// is the tree's.
func IsStage(prog string) bool {
	return slices.Contains(Stages, filepath.Base(prog))
}

// FindStage finds a spawn-* program: a path is used as it is; a name is
// looked for beside the running executable first, then in PATH.
func FindStage(name string) (string, error) {
	if strings.Contains(name, "/") {
		return LookPath(name, "")
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if executable(p) == nil {
			return p, nil
		}
	}
	p, err := LookPath(name, os.Getenv("PATH"))
	if err != nil {
		return "", err
	}
	return filepath.Abs(p)
}

// ParseSignal reads a signal as a name ("SIGTERM", "term") or a number.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// NeedRoot fails unless the stage runs as root: what it sets up needs
// capabilities an ordinary user does not have.
func NeedRoot(what string) error {
	if os.Geteuid() != 0 {
		return Failf("%s needs root (running as uid %d)", what, os.Geteuid())
	}
	return nil
}
