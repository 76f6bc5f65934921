// Package caps is spawn-caps: the last step before the payload. It reduces
// the capability bounding set, becomes the user, and builds the payload's
// environment from nothing.
package caps

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"spawn/lib/capability"
	"spawn/lib/chain"
	"spawn/lib/passwd"
)

const description = `spawn-caps runs inside the container, after the root switch. It reduces
the capability bounding set to the retain list below (adjusted with
--capability and --drop-capability) and clears the inheritable and ambient
sets; with -u it becomes USER, looked up in the tree's /etc/passwd and
/etc/group (supplementary groups, then gid, then uid: real, effective and
saved), creating the home directory (and its parents) owned by the user,
and gives the user /dev/console, if there is one (the relay's pty), so that
a payload that is not root can reopen its terminal.

The payload's environment is built from nothing: PATH, TERM (the caller's),
HOME, USER, LOGNAME, container=spawn, and container_uuid when spawn-rootfs
--uuid put one in spawn-caps's environment; then each -E/--setenv, in
order, replacing any of these. -E NAME=VALUE sets NAME; a bare -E NAME
passes on the value NAME has in spawn-caps's environment (the caller's,
through the chain), and nothing when it has none.

Without PROG it runs the user's login shell from passwd as a login shell
(argv[0] "-sh"). The payload starts in --chdir=DIR if given (absolute; it
must exist inside the container and be reachable by the user), else with -u
or without PROG in the home directory, else in /.

  --umask=MASK            the payload's umask, octal (default 0022, as nspawn)
  --rlimit=RLIMIT_X=SOFT[:HARD]
                          a resource limit for the payload: RLIMIT_NOFILE or
                          nofile, nproc, core, as, ... (all 16); values are
                          numbers or "infinity"; one value sets both limits.
                          Set before the user switch, so the hard limit may
                          also be raised. Repeatable. Limits not named are
                          the caller's.

Retained by default: CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID
IPC_OWNER KILL LEASE LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_RAW
SETGID SETFCAP SETPCAP SETUID SYS_ADMIN SYS_CHROOT SYS_NICE SYS_PTRACE
SYS_TTY_CONFIG. Capability names are accepted as CAP_SYS_ADMIN or sys_admin,
comma-separated, or "all".

Last, just before the user switch, it installs a system call filter that
answers EPERM to open_by_handle_at, kexec_load, kexec_file_load,
init_module, finit_module, delete_module, bpf, perf_event_open, add_key,
request_key, keyctl, swapon, swapoff, acct, quotactl, quotactl_fd,
fanotify_init, syslog, lookup_dcookie and userfaultfd, on every system call
ABI the kernel accepts (x86-64, x32, and i386 through int 0x80).
--system-call-filter=NAMES allows ones it denies, "~NAMES" denies more
(nspawn's spelling); --seccomp=no installs none. --no-new-privileges sets
no_new_privs. spawn-caps (a host binary running inside) is not dumpable, so
the container cannot reach it through /proc/PID/exe; no other container
process exists while it runs.

Exit status: 125 if spawn-caps failed (a bad option, an unknown user, a
--chdir that does not exist); 126/127 if PROG could not be executed or
found; otherwise it is PROG.

Examples:
  spawn-caps -u builder --drop-capability=sys_admin -- make -C /src
  spawn-caps -E CC=gcc -E HOME --chdir=/src --rlimit=nofile=1024:4096 -- ./configure`

// Stage is spawn-caps.
var Stage = &chain.Stage{
	Name:        "spawn-caps",
	Usage:       "reduce capabilities, become USER, and exec PROG with a clean environment",
	Description: description,
	Flags: append([]cli.Flag{
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "run as `USER` (name or number) from the tree's /etc/passwd"},
		&cli.StringSliceFlag{Name: "capability", Usage: "also keep `CAPS` in the bounding set (comma list, or all)"},
		&cli.StringSliceFlag{Name: "drop-capability", Usage: "drop `CAPS` from the bounding set (comma list, or all)"},
		&cli.StringSliceFlag{Name: "setenv", Aliases: []string{"E"}, Usage: "set `NAME=VALUE` in the payload's environment (a bare NAME: the caller's value)"},
		&cli.StringFlag{Name: "chdir", Usage: "the payload's working directory `DIR` (absolute, inside the container)"},
		&cli.StringFlag{Name: "umask", Value: "0022", Usage: "the payload's umask `MASK` (octal)"},
		&cli.StringSliceFlag{Name: "rlimit", Usage: "resource limit `RLIMIT_X=SOFT[:HARD]` (e.g. nofile=1024:4096, core=infinity)"},
	}, hardenFlags...),
	Action: run,
}

func run(c *cli.Context, args []string) error {
	add, err := capList(c, "capability")
	if err != nil {
		return err
	}
	drop, err := capList(c, "drop-capability")
	if err != nil {
		return err
	}
	extra, err := setenv(c.StringSlice("setenv"), os.LookupEnv)
	if err != nil {
		return chain.Failf("%w", err)
	}
	cwd := ""
	if c.IsSet("chdir") {
		if cwd, err = checkChdir(c.String("chdir")); err != nil {
			return chain.Failf("%w", err)
		}
	}
	mask, err := parseUmask(c.String("umask"))
	if err != nil {
		return chain.Failf("%w", err)
	}
	var limits []rlimit
	for _, w := range c.StringSlice("rlimit") {
		l, err := parseRlimit(w)
		if err != nil {
			return chain.Failf("%w", err)
		}
		limits = append(limits, l)
	}
	prog, err := filter(c)
	if err != nil {
		return err
	}
	if err := notDumpable(); err != nil {
		return err
	}
	if c.IsSet("user") && c.String("user") == "" {
		return chain.Failf("-u: empty user name")
	}
	u, err := user(c.String("user"))
	if err != nil {
		return chain.Failf("%w", err)
	}
	if cwd != "" {
		// Missing is found before anything is changed; whether the user
		// may enter it, once we are the user.
		if _, err := os.Stat(cwd); err != nil {
			return chain.Failf("--chdir=%s: %w", c.String("chdir"), errors.Unwrap(err))
		}
	}
	if err := makeHome(u); err != nil {
		return chain.Failf("%w", err)
	}
	if err := ownConsole(u); err != nil {
		return chain.Failf("%w", err)
	}
	// Before the capabilities go: raising a hard limit needs
	// CAP_SYS_RESOURCE.
	for _, l := range limits {
		if err := l.apply(); err != nil {
			return chain.Failf("%w", err)
		}
	}
	if err := capability.Apply(capability.Bounding(add, drop)); err != nil {
		return chain.Failf("%w", err)
	}
	if err := lockdown(c.Bool("no-new-privileges"), prog); err != nil {
		return err
	}
	if err := become(u); err != nil {
		return chain.Failf("%w", err)
	}
	env := merge(append(Environment(u, os.Getenv("TERM")), containerUUID()...), extra)
	if cwd == "" {
		cwd = "/"
		if len(args) == 0 || c.IsSet("user") {
			cwd = u.Home
		}
	}
	// As the user: a directory the user cannot enter is an error here, not
	// a surprise in the payload.
	if err := os.Chdir(cwd); err != nil {
		what := "chdir " + cwd
		if c.IsSet("chdir") {
			what = "--chdir=" + c.String("chdir")
		}
		return chain.Failf("%s: %w", what, errors.Unwrap(err))
	}
	if err := checkCwd(); err != nil {
		return err
	}
	unix.Umask(mask)
	if len(args) == 0 {
		shell := u.Shell
		if shell == "" {
			shell = "/bin/sh"
		}
		return chain.ExecPath(shell, []string{"-" + filepath.Base(shell)}, env)
	}
	return chain.Exec(args, env, lookupPath(env))
}

// lookupPath is the PATH PROG is looked up in: the payload's own, which
// -E PATH=... may have changed.
func lookupPath(env []string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "PATH="); ok {
			return v
		}
	}
	return chain.DefaultPath
}

func capList(c *cli.Context, flag string) (capability.Set, error) {
	var s capability.Set
	for _, v := range c.StringSlice(flag) {
		p, err := capability.Parse(v)
		if err != nil {
			return 0, chain.Failf("--%s: %w", flag, err)
		}
		s |= p
	}
	return s, nil
}

// user looks up who in the tree; without -u, root, with defaults where the
// tree's passwd has no root.
func user(who string) (*passwd.User, error) {
	if who != "" {
		return passwd.Lookup("/", who)
	}
	if u, err := passwd.Lookup("/", "0"); err == nil {
		return u, nil
	}
	return &passwd.User{Name: "root", Home: "/root", Shell: "/bin/sh", Groups: []int{0}}, nil
}

// makeHome creates the user's home and missing parents; a home created here
// is given to the user.
func makeHome(u *passwd.User) error {
	if u.Home == "" {
		u.Home = "/"
	}
	if _, err := os.Stat(u.Home); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("home %s: %w", u.Home, errors.Unwrap(err))
	}
	if err := os.MkdirAll(u.Home, 0o755); err != nil {
		return fmt.Errorf("create home %s: %w", u.Home, errors.Unwrap(err))
	}
	if err := os.Chown(u.Home, u.UID, u.GID); err != nil {
		return fmt.Errorf("chown home %s to %d:%d: %w", u.Home, u.UID, u.GID, errors.Unwrap(err))
	}
	return nil
}

// ownConsole gives /dev/console (bound there by spawn-rootfs; absent
// without a terminal) to a user other than root; its group (tty) stays.
func ownConsole(u *passwd.User) error {
	const console = "/dev/console"
	if u.UID == 0 {
		return nil
	}
	st, err := os.Stat(console)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("%s: %w", console, errors.Unwrap(err))
	}
	if st.Mode()&fs.ModeCharDevice == 0 {
		return nil
	}
	if err := os.Chown(console, u.UID, -1); err != nil {
		return fmt.Errorf("chown %s to uid %d: %w", console, u.UID, errors.Unwrap(err))
	}
	return nil
}

// become switches groups, gid and uid on every thread (the syscall
// package's versions do; x/sys/unix's change only the calling thread).
func become(u *passwd.User) error {
	// Changing uid or gid clears the parent-death signal (commit_creds):
	// keep the one spawn-ns armed, or a payload run as a user outlives a
	// killed spawn-ns. It is per thread: this is the thread that execs.
	var pdeath int32
	if err := unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&pdeath)), 0, 0, 0); err != nil {
		return fmt.Errorf("read the parent-death signal: %w", err)
	}
	if err := syscall.Setgroups(u.Groups); err != nil {
		return fmt.Errorf("set groups %v: %w", u.Groups, err)
	}
	if err := syscall.Setresgid(u.GID, u.GID, u.GID); err != nil {
		return fmt.Errorf("set gid %d: %w", u.GID, err)
	}
	if err := syscall.Setresuid(u.UID, u.UID, u.UID); err != nil {
		return fmt.Errorf("set uid %d: %w", u.UID, err)
	}
	if pdeath != 0 {
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(pdeath), 0, 0, 0); err != nil {
			return fmt.Errorf("keep the parent-death signal: %w", err)
		}
	}
	return nil
}

// Environment is the payload's whole environment: nothing of the caller's
// but TERM.
func Environment(u *passwd.User, term string) []string {
	env := []string{"PATH=" + chain.DefaultPath}
	if term != "" {
		env = append(env, "TERM="+term)
	}
	env = append(env,
		"HOME="+u.Home,
		"USER="+u.Name,
		"LOGNAME="+u.Name,
		"container=spawn",
	)
	return env
}
