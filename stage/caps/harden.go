package caps

import (
	"os"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"spawn/lib/chain"
	"spawn/lib/seccomp"
)

// hardenFlags are spawn-caps' options for the last defences before exec.
var hardenFlags = []cli.Flag{
	&cli.StringSliceFlag{Name: "system-call-filter", Usage: "allow the system calls `NAMES` the default filter denies; a list starting with ~ denies them instead (space- or comma-separated; repeatable)"},
	&cli.StringFlag{Name: "seccomp", Value: "yes", Usage: "install the system call filter: yes or no"},
	&cli.BoolFlag{Name: "no-new-privileges", Usage: "set no_new_privs: setuid binaries and file capabilities grant nothing"},
}

// filter builds the system call filter the options ask for; nil for none.
func filter(c *cli.Context) ([]unix.SockFilter, error) {
	switch strings.ToLower(c.String("seccomp")) {
	case "no", "false", "0", "off":
		if c.IsSet("system-call-filter") {
			return nil, chain.Failf("--system-call-filter with --seccomp=no: there is no filter to adjust")
		}
		return nil, nil
	case "yes", "true", "1", "on":
	default:
		return nil, chain.Failf("--seccomp=%q: want yes or no", c.String("seccomp"))
	}
	f, err := seccomp.New(c.StringSlice("system-call-filter"))
	if err != nil {
		return nil, chain.Failf("--system-call-filter: %w", err)
	}
	prog, err := f.Program()
	if err != nil {
		return nil, chain.Failf("%w", err)
	}
	return prog, nil
}

// notDumpable keeps the container from reaching this host binary while it
// runs inside: a non-dumpable process's /proc/PID files (exe among them)
// belong to root and need ptrace rights (runc CVE-2019-5736 overwrote the
// runtime through /proc/PID/exe). No other container process exists while
// spawn-caps runs: spawn-rootfs and spawn-caps replace each other by exec
// as the container's first process, and the payload replaces spawn-caps.
func notDumpable() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return chain.Failf("make spawn-caps not dumpable: %w", err)
	}
	return nil
}

// lockdown applies no_new_privs (all threads: it is per thread and the exec
// may come from any) and installs the filter just before the credentials
// change, while CAP_SYS_ADMIN still allows a filter without no_new_privs.
func lockdown(nnp bool, prog []unix.SockFilter) error {
	if nnp {
		if _, _, errno := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); errno != 0 {
			return chain.Failf("set no_new_privs: %w", errno)
		}
	}
	if prog != nil {
		if err := seccomp.Install(prog); err != nil {
			return chain.Failf("%w", err)
		}
	}
	return nil
}

// checkCwd refuses a working directory outside the root: a directory fd
// leaked from the host and fchdir'ed to shows as "(unreachable)" (runc
// CVE-2024-21626).
func checkCwd() error {
	wd, err := os.Getwd()
	if err != nil || !strings.HasPrefix(wd, "/") {
		return chain.Failf("working directory %q is outside the container's root: %v", wd, err)
	}
	return nil
}
