// Package ns is spawn-ns: new PID, mount, UTS, IPC and cgroup namespaces
// (and network with --private-network), PROG as PID 1 of the new PID
// namespace.
package ns

import (
	"os"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"spawn/lib/chain"
	"spawn/lib/namespace"
)

const description = `spawn-ns clones PROG into new PID, mount, UTS, IPC and cgroup namespaces
(and a network namespace with --private-network, where lo is up and nothing
else exists). PROG is PID 1 of the new PID namespace. spawn-ns stays as its
parent: it turns SIGTERM, SIGINT and SIGHUP into --kill-signal for PID 1 (a
PID 1 ignores signals it has no handler for), and exits with PID 1's status,
or 128+N when PID 1 was killed by signal N. If spawn-ns dies, PID 1 is killed
with it, and with PID 1 the whole namespace.

With -a/--as-pid2, PID 1 is a minimal init (spawn-ns itself, from the host:
the tree needs nothing of ours) and PROG runs as PID 2. The init reaps every
process orphaned in the namespace, forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT,
SIGUSR1 and SIGUSR2 to PROG, and exits with PROG's status (128+N if PROG was
killed by signal N) as soon as PROG ends; whatever else still runs in the
namespace is then killed by the kernel. PROG gets its own process group (the
terminal's foreground group when the caller's was), default signal
dispositions and an empty signal mask. Use it for payloads that are not
written to be PID 1: shells, build tools, test suites that leave orphans.
The init's root and working directory are the caller's root until PROG
switches root (spawn-rootfs's pivot_root moves them into the tree): it holds
nothing open on the host's file systems.

--kill-signal=SIG is what PID 1 gets when spawn-ns receives SIGTERM, SIGINT
or SIGHUP (default SIGKILL: the container ends at once). An init that shuts
down in order on a signal wants that signal instead; with --as-pid2, SIGTERM
lets PROG clean up:
  spawn-ns --as-pid2 --kill-signal=SIGTERM -- spawn-rootfs -D /srv/tree -- \
    spawn-caps -- sh -c 'trap "echo bye; exit 0" TERM; while :; do sleep 1; done'
  kill -TERM <pid of spawn-ns>     # prints bye, spawn-ns exits 0

With -D DIR, spawn-ns holds a lock on the tree while the container runs:
exclusive (a second container on DIR fails "busy"), or shared with
--read-only, -x or --volatile, which do not write to DIR.

The mount namespace starts as a copy of the caller's; nothing is mounted or
changed in it here (that is spawn-rootfs's step).

The cgroup namespace is rooted at the cgroups spawn-ns runs in, in every
hierarchy: in the chain, spawn-cgroup's payload cgroup. Inside,
/proc/self/cgroup reads / and a cgroup file system mounted there shows
payload and what is below it, nothing above: container root, which keeps
CAP_SYS_ADMIN, cannot move out of its cgroup, reach the cgroup above that
carries the limits and the device policy, see a v1 hierarchy's
release_agent (run by the kernel as root on the host), or create a v1
hierarchy (which the kernel allows only from the initial cgroup namespace).
The host sees the real path, e.g. /proc/PID/cgroup names
.../spawn-N/payload. It is always on; a kernel without cgroup namespaces
(before 4.6) is refused.

Exit status: PID 1's (with --as-pid2, PROG's); 125 if spawn-ns failed;
126/127 if PROG could not be executed or found.

Example:
  spawn-ns --private-network -- spawn-rootfs -D /srv/tree -- spawn-caps -- sh`

// Stage is spawn-ns.
var Stage = &chain.Stage{
	Name:        "spawn-ns",
	Usage:       "run PROG as PID 1 of new PID, mount, UTS, IPC, cgroup (and network) namespaces",
	Description: description,
	Flags: append([]cli.Flag{
		&cli.BoolFlag{Name: "private-network", Usage: "also a new network namespace with only lo, up"},
		&cli.StringFlag{Name: "kill-signal", Value: "SIGKILL", Usage: "signal PID 1 gets when spawn-ns receives SIGTERM, SIGINT or SIGHUP"},
		&cli.BoolFlag{Name: "as-pid2", Aliases: []string{"a"}, Usage: "run a minimal init as PID 1 and PROG as PID 2"},
		// Set on our own re-exec as PID 1 inside the new namespaces.
		&cli.BoolFlag{Name: "pid1", Hidden: true},
		// Set on the second exec of PID 1 with --as-pid2: the init itself.
		&cli.BoolFlag{Name: "stub-init", Hidden: true},
		// Test hook: cgroupns leaves PROG in the caller's cgroup namespace,
		// which the attack tests use to show what the cgroup namespace
		// closes. Hidden, and never passed on by spawn.
		&cli.StringSliceFlag{Name: "unsafe-disable", Hidden: true},
	}, lockFlags...),
	Action: run,
}

func run(c *cli.Context, prog []string) error {
	if c.Bool("stub-init") {
		return stubInit()
	}
	if err := chain.NeedProg("spawn-ns", prog); err != nil {
		return err
	}
	if c.Bool("pid1") {
		if os.Getpid() != 1 {
			return chain.Failf("--pid1 is spawn-ns's own, for its re-exec as PID 1 of new namespaces")
		}
		return pid1(c, prog)
	}
	killSig, err := chain.ParseSignal(c.String("kill-signal"))
	if err != nil {
		return chain.Failf("--kill-signal: %w", err)
	}
	cgroupNS := true
	for _, d := range c.StringSlice("unsafe-disable") {
		if d != "cgroupns" {
			return chain.Failf("--unsafe-disable=%q: want cgroupns", d)
		}
		cgroupNS = false
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
	if cgroupNS {
		// Rooted at our cgroup (spawn-cgroup's payload): a cgroupfs
		// mounted inside shows only that subtree, so container root, which
		// keeps CAP_SYS_ADMIN, can neither move out of it nor reach the
		// cgroup above that carries the device policy and the limits, nor
		// create a v1 hierarchy (whose release_agent would run on the
		// host): the kernel allows that only in the initial cgroup
		// namespace.
		if _, err := os.Stat("/proc/self/ns/cgroup"); err != nil {
			return chain.Failf("cgroup namespace: %w (Linux 4.6 or later is needed)", err)
		}
		flags |= unix.CLONE_NEWCGROUP
	}
	if c.Bool("private-network") {
		flags |= unix.CLONE_NEWNET
	}
	if c.Bool("private-network") || c.Bool("as-pid2") {
		// lo can only be brought up from inside the new network namespace
		// and before PROG runs, and the init must be PID 1: start ourselves
		// there as PID 1 first.
		self, err := os.Executable()
		if err != nil {
			return chain.Failf("find own executable: %w", err)
		}
		args := []string{"spawn-ns", "--pid1"}
		if c.Bool("private-network") {
			args = append(args, "--private-network")
		}
		if c.Bool("as-pid2") {
			args = append(args, "--as-pid2")
		}
		cmd.Args = append(append(args, "--"), prog...)
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
	if c.Bool("as-pid2") {
		return execInit(prog)
	}
	return chain.Exec(prog, os.Environ(), os.Getenv("PATH"))
}
