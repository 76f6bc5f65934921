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
	"syscall"

	"github.com/urfave/cli/v2"

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
HOME, USER, LOGNAME and container=spawn.

Without PROG it runs the user's login shell from passwd as a login shell
(argv[0] "-sh"), in the home directory. With -u, the payload starts in the
home directory; otherwise in /.

Retained by default: CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID
IPC_OWNER KILL LEASE LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_RAW
SETGID SETFCAP SETPCAP SETUID SYS_ADMIN SYS_CHROOT SYS_NICE SYS_PTRACE
SYS_TTY_CONFIG. Capability names are accepted as CAP_SYS_ADMIN or sys_admin,
comma-separated, or "all".

Exit status: 125 if spawn-caps failed; 126/127 if PROG could not be executed
or found; otherwise it is PROG.

Example:
  spawn-caps -u builder --drop-capability=sys_admin -- make -C /src`

// Stage is spawn-caps.
var Stage = &chain.Stage{
	Name:        "spawn-caps",
	Usage:       "reduce capabilities, become USER, and exec PROG with a clean environment",
	Description: description,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "run as `USER` (name or number) from the tree's /etc/passwd"},
		&cli.StringSliceFlag{Name: "capability", Usage: "also keep `CAPS` in the bounding set (comma list, or all)"},
		&cli.StringSliceFlag{Name: "drop-capability", Usage: "drop `CAPS` from the bounding set (comma list, or all)"},
	},
	Action: run,
}

func run(c *cli.Context, prog []string) error {
	add, err := capList(c, "capability")
	if err != nil {
		return err
	}
	drop, err := capList(c, "drop-capability")
	if err != nil {
		return err
	}
	u, err := user(c.String("user"))
	if err != nil {
		return chain.Failf("%w", err)
	}
	if err := makeHome(u); err != nil {
		return chain.Failf("%w", err)
	}
	if err := ownConsole(u); err != nil {
		return chain.Failf("%w", err)
	}
	if err := capability.Apply(capability.Bounding(add, drop)); err != nil {
		return chain.Failf("%w", err)
	}
	if err := become(u); err != nil {
		return chain.Failf("%w", err)
	}
	env := Environment(u, os.Getenv("TERM"))
	argv, cwd := prog, "/"
	if len(prog) == 0 {
		shell := u.Shell
		if shell == "" {
			shell = "/bin/sh"
		}
		argv, cwd = []string{"-" + filepath.Base(shell)}, u.Home
		if err := os.Chdir(cwd); err != nil {
			return chain.Failf("chdir %s: %w", cwd, errors.Unwrap(err))
		}
		return chain.ExecPath(shell, argv, env)
	}
	if c.IsSet("user") {
		cwd = u.Home
	}
	if err := os.Chdir(cwd); err != nil {
		return chain.Failf("chdir %s: %w", cwd, errors.Unwrap(err))
	}
	return chain.Exec(argv, env, chain.DefaultPath)
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
	if err := syscall.Setgroups(u.Groups); err != nil {
		return fmt.Errorf("set groups %v: %w", u.Groups, err)
	}
	if err := syscall.Setresgid(u.GID, u.GID, u.GID); err != nil {
		return fmt.Errorf("set gid %d: %w", u.GID, err)
	}
	if err := syscall.Setresuid(u.UID, u.UID, u.UID); err != nil {
		return fmt.Errorf("set uid %d: %w", u.UID, err)
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
