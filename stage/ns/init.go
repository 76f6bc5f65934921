package ns

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"spawn/lib/chain"
	"spawn/lib/namespace"
)

// initSignals are the signals the stub init passes on to PROG.
var initSignals = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP,
	syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
}

// initFD is where the stub init finds PROG's argv and environment.
const initFD = 3

// execInit replaces PID 1 with the stub init. It is a second exec because
// the Go runtime's threads hold the namespace's lowest process numbers, 2
// among them; the exec ends those threads, and the kernel hands out new
// numbers upwards from the last one used, so 2 stays free for PROG.
//
// PROG's argv and environment travel in a memfd rather than on the init's
// command line and in its environment: the init lives as long as the
// container, and its /proc/1/cmdline and /proc/1/environ are readable from
// inside, where the caller's environment must not be seen (only spawn-caps
// decides what the payload's environment holds).
func execInit(prog []string) error {
	self, err := os.Executable()
	if err != nil {
		return chain.Failf("find own executable: %w", err)
	}
	fd, err := unix.MemfdCreate("spawn-ns-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return chain.Failf("memfd for the init: %w", err)
	}
	f := os.NewFile(uintptr(fd), "spawn-ns-init")
	if _, err := f.Write(encodeInit(prog, os.Environ())); err != nil {
		return chain.Failf("memfd for the init: %w", err)
	}
	return chain.ExecPathFDs(self, []string{"spawn-ns", "--stub-init"}, []string{}, []int{fd})
}

// encodeInit is "N\0" then the N words of argv then the environment, each
// NUL-terminated.
func encodeInit(argv, env []string) []byte {
	var b bytes.Buffer
	b.WriteString(strconv.Itoa(len(argv)))
	b.WriteByte(0)
	for _, s := range append(append([]string{}, argv...), env...) {
		b.WriteString(s)
		b.WriteByte(0)
	}
	return b.Bytes()
}

func decodeInit(data []byte) (argv, env []string, err error) {
	words := bytes.Split(data, []byte{0})
	if len(words) < 2 || len(words[len(words)-1]) != 0 {
		return nil, nil, errors.New("malformed")
	}
	words = words[:len(words)-1]
	n, err := strconv.Atoi(string(words[0]))
	if err != nil || n < 1 || n > len(words)-1 {
		return nil, nil, errors.New("malformed")
	}
	for i, w := range words[1:] {
		if i < n {
			argv = append(argv, string(w))
		} else {
			env = append(env, string(w))
		}
	}
	return argv, env, nil
}

// stubInit is PID 1 with --as-pid2: PROG as PID 2, every orphan reaped,
// signals passed on, PROG's status as its own.
func stubInit() error {
	if os.Getpid() != 1 {
		return chain.Failf("--stub-init: not PID 1 of a PID namespace")
	}
	// A host binary that stays inside the container: its /proc/1 files
	// (exe among them) belong to root and need ptrace rights, as for
	// spawn-rootfs and spawn-caps (runc CVE-2019-5736).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return chain.Failf("make the init not dumpable: %w", err)
	}
	f := os.NewFile(initFD, "init")
	data, err := readAllAt(f)
	f.Close()
	if err != nil {
		return chain.Failf("--stub-init: read the program from descriptor %d: %w", initFD, err)
	}
	prog, env, err := decodeInit(data)
	if err != nil {
		return chain.Failf("--stub-init: descriptor %d: %w", initFD, err)
	}
	// pivot_root moves the root and working directory of every process of
	// the mount namespace that is at the old root into the new one. Be at
	// "/", so that when PROG (spawn-rootfs) switches root, nothing of the
	// init's still points into the host's file systems (the old root is
	// detached, and a /proc/1/cwd into it would lead back to the host).
	// PROG starts where we were: its relative paths are the caller's.
	cwd, err := os.Getwd()
	if err != nil {
		return chain.Failf("find the working directory: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return chain.Failf("chdir /: %w", err)
	}
	path, err := chain.LookPath(prog[0], envValue(env, "PATH"))
	if err != nil {
		return err
	}
	if err := chain.CloseExtraFDs(); err != nil {
		return err
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, append([]os.Signal{syscall.SIGCHLD}, initSignals...)...)
	pid, err := namespace.StartAs(2, cwd, path, prog, env)
	if err != nil {
		var ee *namespace.ExecError
		if errors.As(err, &ee) {
			return chain.ExecFailure(prog[0], ee.Err)
		}
		return chain.Failf("start %s as PID 2: %w", prog[0], err)
	}
	for {
		if status, done := reap(pid); done {
			return chain.Status(status)
		}
		if s := <-sigs; s != syscall.SIGCHLD {
			unix.Kill(pid, s.(syscall.Signal))
		}
	}
}

// reap collects every child that has ended (orphans are re-parented to
// PID 1) and reports PROG's status once PROG is among them.
func reap(prog int) (status int, done bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return 0, false
		}
		if pid == prog {
			return chain.ExitStatus(syscall.WaitStatus(ws)), true
		}
	}
}

func readAllAt(f *os.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, st.Size())
	if _, err := f.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return buf, nil
}

func envValue(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v
		}
	}
	return ""
}
