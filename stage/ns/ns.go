// Package ns is spawn-ns: new PID, mount, UTS and IPC namespaces (and
// network with --private-network), PROG as PID 1 of the new PID namespace.
package ns

import (
	"os"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"spawn/lib/chain"
	"spawn/lib/namespace"
)

const description = `spawn-ns clones PROG into new PID, mount, UTS and IPC namespaces (and a
network namespace with --private-network, where lo is up and nothing else
exists). PROG is PID 1 of the new PID namespace. spawn-ns stays as its parent:
it turns SIGTERM, SIGINT and SIGHUP into --kill-signal for PID 1 (a PID 1
ignores signals it has no handler for), and exits with PID 1's status, or
128+N when PID 1 was killed by signal N. If spawn-ns dies, PID 1 is killed
with it, and with PID 1 the whole namespace.

The mount namespace starts as a copy of the caller's; nothing is mounted or
changed in it here (that is spawn-rootfs's step).

Exit status: PID 1's; 125 if spawn-ns failed; 126/127 if PROG could not be
executed or found.

Example:
  spawn-ns --private-network -- spawn-rootfs -D /srv/tree -- spawn-caps -- sh`

// Stage is spawn-ns.
var Stage = &chain.Stage{
	Name:        "spawn-ns",
	Usage:       "run PROG as PID 1 of new PID, mount, UTS, IPC (and network) namespaces",
	Description: description,
	Flags: append([]cli.Flag{
		&cli.BoolFlag{Name: "private-network", Usage: "also a new network namespace with only lo, up"},
		&cli.StringFlag{Name: "kill-signal", Value: "SIGKILL", Usage: "signal PID 1 gets when spawn-ns receives SIGTERM, SIGINT or SIGHUP"},
		// Set on our own re-exec as PID 1 inside the new namespaces.
		&cli.BoolFlag{Name: "pid1", Hidden: true},
	}, lockFlags...),
	Action: run,
}

func run(c *cli.Context, prog []string) error {
	if err := chain.NeedProg("spawn-ns", prog); err != nil {
		return err
	}
	if c.Bool("pid1") {
		return pid1(c, prog)
	}
	killSig, err := chain.ParseSignal(c.String("kill-signal"))
	if err != nil {
		return chain.Failf("--kill-signal: %w", err)
	}
	if err := chain.NeedRoot("creating namespaces"); err != nil {
		return err
	}
	if err := lockTree(c); err != nil {
		return err
	}
	cmd, err := chain.NewCmd(prog)
	if err != nil {
		return err
	}
	flags := uintptr(unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if c.Bool("private-network") {
		flags |= unix.CLONE_NEWNET
		// lo can only be brought up from inside the new network namespace
		// and before PROG runs: start ourselves there as PID 1 first.
		self, err := os.Executable()
		if err != nil {
			return chain.Failf("find own executable: %w", err)
		}
		cmd.Args = append([]string{"spawn-ns", "--pid1", "--private-network", "--"}, prog...)
		cmd.Path = self
	}
	cmd.SysProcAttr.Cloneflags = flags
	child := &chain.Child{
		Cmd:    cmd,
		Signal: func(os.Signal) syscall.Signal { return killSig },
	}
	code, err := child.Run()
	if err != nil {
		return err
	}
	return chain.Status(code)
}

// pid1 runs inside the new namespaces, as PID 1, before PROG.
func pid1(c *cli.Context, prog []string) error {
	if c.Bool("private-network") {
		if err := namespace.LoopbackUp(); err != nil {
			return chain.Failf("%w", err)
		}
	}
	return chain.Exec(prog, os.Environ(), os.Getenv("PATH"))
}
