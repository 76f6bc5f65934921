// Package cgroup is spawn-cgroup: PROG in a new cgroup below the caller's
// own, and everything left in it killed and the cgroup removed when PROG
// ends.
package cgroup

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"spawn/lib/cgroups"
	"spawn/lib/chain"
)

const description = `spawn-cgroup creates a cgroup below the caller's own (named spawn-PID unless
--name says otherwise), starts PROG in it (placed there before PROG runs, so
nothing PROG starts can escape it), and waits. When PROG ends, whatever is
left in the cgroup is killed, the cgroup is removed, and spawn-cgroup exits
with PROG's status. SIGTERM, SIGINT and SIGHUP are forwarded to PROG.

The cgroup v2 hierarchy is used where one is mounted (/sys/fs/cgroup, or
/sys/fs/cgroup/unified on hybrid machines); otherwise the v1 name=systemd
hierarchy.

Exit status: PROG's, or 128+N when it was killed by signal N; 125 if
spawn-cgroup failed; 126/127 if PROG could not be executed or found.

Example:
  spawn-cgroup -- spawn-ns -- spawn-rootfs -D /srv/tree -- spawn-caps -- sh`

// Stage is spawn-cgroup.
var Stage = &chain.Stage{
	Name:        "spawn-cgroup",
	Usage:       "run PROG in a new cgroup that is emptied and removed when it ends",
	Description: description,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "name", Usage: "name of the cgroup (default: spawn-PID)"},
	},
	Action: run,
}

// How long leftovers may take to die, and an emptied cgroup to be removable.
const killTimeout = 5 * time.Second

func run(c *cli.Context, prog []string) error {
	if err := chain.NeedProg("spawn-cgroup", prog); err != nil {
		return err
	}
	name := c.String("name")
	if name == "" {
		name = fmt.Sprintf("spawn-%d", os.Getpid())
	}
	if err := validName(name); err != nil {
		return err
	}
	if err := chain.NeedRoot("creating a cgroup"); err != nil {
		return err
	}
	h, err := pick()
	if err != nil {
		return err
	}
	cmd, err := chain.NewCmd(prog)
	if err != nil {
		return err
	}
	// Daemons PROG leaves behind outside a PID namespace are re-parented to
	// us, so that we can reap them once they are killed.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

	g, err := h.Create(name)
	if err != nil {
		return chain.Failf("%w", err)
	}
	child := &chain.Child{Cmd: cmd}
	var restore func() error
	if h.Version == 2 {
		fd, err := g.Open()
		if err != nil {
			g.Remove(killTimeout)
			return chain.Failf("%w", err)
		}
		defer unix.Close(fd)
		// clone3(CLONE_INTO_CGROUP): the child is in the cgroup from its
		// first instruction.
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = fd
	} else {
		// v1 has no CLONE_INTO_CGROUP: step into the cgroup ourselves for
		// the fork, so the child is born there, and step back out.
		if err := g.Add(0); err != nil {
			g.Remove(killTimeout)
			return chain.Failf("%w", err)
		}
		restore = func() error { return (&cgroups.Group{Hierarchy: h, Dir: h.Dir()}).Add(0) }
		child.Started = func(int) error { return restore() }
	}
	code, runErr := child.Run()
	if restore != nil && runErr != nil {
		restore()
	}
	killErr := g.Kill(killTimeout, reap)
	rmErr := g.Remove(killTimeout)
	switch {
	case runErr != nil:
		return runErr
	case killErr != nil:
		return chain.Failf("%w", killErr)
	case rmErr != nil:
		return chain.Failf("%w", rmErr)
	}
	return chain.Status(code)
}

// pick chooses the hierarchy: cgroup v2 where mounted, else v1 name=systemd.
func pick() (cgroups.Hierarchy, error) {
	hs, err := cgroups.Detect()
	if err != nil {
		return cgroups.Hierarchy{}, chain.Failf("find cgroup hierarchies: %w", err)
	}
	for _, h := range hs {
		if h.Version == 2 {
			return h, nil
		}
	}
	for _, h := range hs {
		if h.Has("name=systemd") {
			return h, nil
		}
	}
	return cgroups.Hierarchy{}, chain.Failf("no usable cgroup hierarchy: neither cgroup2 nor a name=systemd cgroup is mounted")
}

func validName(name string) error {
	if name == "." || name == ".." || len(name) > 255 {
		return chain.Failf("--name %q: not a valid cgroup name", name)
	}
	for _, r := range name {
		if r == '/' || r == '\n' || r == 0 {
			return chain.Failf("--name %q: not a valid cgroup name", name)
		}
	}
	return nil
}

// reap collects every exited child (we are a subreaper).
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
