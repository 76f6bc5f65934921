// Package cgroup is spawn-cgroup: PROG in a new cgroup below the caller's
// own, with resource limits and a device policy, and everything left in it
// killed and the cgroup removed when PROG ends.
package cgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"spawn/lib/cgroups"
	"spawn/lib/chain"
	"spawn/lib/devices"
)

const description = `spawn-cgroup creates a cgroup below the caller's own (named spawn-PID unless
--name says otherwise), applies the limits and the device policy to it,
creates the cgroup payload below that, starts PROG in payload (placed there
before PROG runs, so nothing PROG starts can escape it), and waits. When
PROG ends, whatever is left in the cgroups is killed, they are removed, and
spawn-cgroup exits with PROG's status. SIGTERM, SIGINT and SIGHUP are
forwarded to PROG.

Why two levels (as systemd-nspawn does): the cgroup that carries the limits
and the device policy holds no process, so what runs in the container cannot
change them, even as root with CAP_SYS_ADMIN (the seed keeps it). A v1
devices cgroup is never granted more than its parent, so payload cannot
allow itself a device; a BPF program attached to spawn-PID applies to
everything below it, and only a descriptor of spawn-PID detaches it.
spawn-ns then puts the container in a cgroup namespace rooted at payload:
a cgroup file system mounted inside shows payload and below, nothing above
(see spawn-ns --help).

Hierarchies. The layout is detected, not assumed: pure cgroup v2, hybrid
(cgroup2 at /sys/fs/cgroup/unified, controllers on v1) or legacy v1. The
cgroups are made in every hierarchy the caller is in, also those no limit
needs: a container's cgroup namespace is rooted where it was placed, in
each hierarchy, and one left out would show container root the caller's
cgroup there (or the hierarchy's root, whose v1 release_agent the kernel
runs as root on the host).
A controller is taken from cgroup2 where the caller's cgroup offers it
(enabling it in the caller's cgroup.subtree_control, which cgroup v2 allows
only when the caller's cgroup has no other processes), else from v1. On
cgroup2, PROG is cloned straight into the cgroup (CLONE_INTO_CGROUP); on v1,
the forking thread alone steps into the v1 cgroups for the fork and back out.

Limits (named after the cgroup v2 files; on v1 the controller's own files):
  --memory-max=SIZE    memory.max (v1 memory.limit_in_bytes): beyond it the
                       OOM killer kills in the container
  --memory-high=SIZE   memory.high (v1 memory.soft_limit_in_bytes): reclaim
                       and throttle above it
  --pids-max=N         pids.max: tasks (threads too) the container may have
  --cpu-weight=N       cpu.weight, 1..10000, default 100 (v1 cpu.shares,
                       N*1024/100)
  --cpu-max=QUOTA[/PERIOD]
                       cpu.max in microseconds, e.g. 50000/100000 = half a
                       CPU; QUOTA may be max; PERIOD defaults to 100000
                       (v1 cpu.cfs_quota_us, cpu.cfs_period_us)
SIZE is bytes with an optional K, M, G or T suffix (powers of 1024), or max.

Device policy. --device-policy=closed (the default) lets the container
create and open only null, zero, full, random, urandom, tty, console, ptmx
and the ptys (pts/*), plus what --device-allow adds; container root cannot
open anything else even with mknod or a devtmpfs mount, nor lift the policy
by mounting a cgroup file system (above). On cgroup2 it is a
BPF_CGROUP_DEVICE program attached to spawn-PID (so that it lasts as long as
the cgroup); without cgroup2, or where the kernel refuses the program, the
v1 devices controller of spawn-PID, set before payload is made (payload
starts from its parent's rules). --device-policy=auto sets no policy.
  --device-allow=TYPE:MAJOR:MINOR[:ACCESS] or PATH[:ACCESS]
                       allow one device more (repeatable): TYPE c, b or a,
                       MAJOR and MINOR numbers or *, ACCESS letters of rwm
                       (default rwm); e.g. c:10:200:rwm or /dev/net/tun

The end. When PROG ends, the processes left in spawn-PID, payload and any
cgroup made below it are killed (cgroup.kill on cgroup2; else frozen,
SIGKILLed and thawed until none is left; a v1 freezer cgroup the payload
froze itself is thawed so that its processes can die) and the cgroups
removed, bottom-up. A process that does not die within 5 seconds
(uninterruptible sleep) gets one warning and its cgroup is left in place.
If the OOM killer killed anything in the container (oom_kill in spawn-PID's
memory.events, which counts the cgroups below, or in memory.oom_control
summed over the tree on v1; with a memory limit set), spawn-cgroup says the
container ran out of memory.

Cleanup. A spawn-cgroup killed with SIGKILL cannot remove its cgroups.
spawn-cgroup --cleanup removes every spawn-* cgroup directly below the
caller's own, in every hierarchy, with everything below it, that no live
spawn-cgroup owns (each owner holds a lock on its cgroups) and that is
empty; with --force it kills what is left in them first. A container's
cgroups in all hierarchies are taken together (one warning for one that
still has processes). It runs no PROG; -q silences its "removed" lines.

Exit status: PROG's, or 128+N when it was killed by signal N; 125 if
spawn-cgroup failed; 126/127 if PROG could not be executed or found.
--cleanup: 0, or 125 if a stale cgroup could not be removed.

Examples:
  spawn-cgroup --memory-max=512M --pids-max=200 -- spawn-ns -- spawn-rootfs -D /srv/tree -- spawn-caps -- sh
  spawn-cgroup --device-allow=/dev/fuse -- PROG
  spawn-cgroup --cleanup --force`

// Stage is spawn-cgroup.
var Stage = &chain.Stage{
	Name:        "spawn-cgroup",
	Usage:       "run PROG in a new cgroup with limits and a device policy, emptied and removed when it ends",
	Description: description,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "name", Usage: "name of the cgroup (default: spawn-PID)"},
		&cli.StringFlag{Name: "memory-max", Usage: "memory limit `SIZE` (K, M, G, T suffixes; max)"},
		&cli.StringFlag{Name: "memory-high", Usage: "memory throttling threshold `SIZE`"},
		&cli.StringFlag{Name: "pids-max", Usage: "at most `N` tasks"},
		&cli.StringFlag{Name: "cpu-weight", Usage: "CPU weight `N`, 1..10000 (default 100)"},
		&cli.StringFlag{Name: "cpu-max", Usage: "CPU bandwidth `QUOTA[/PERIOD]` in microseconds"},
		&cli.StringFlag{Name: "device-policy", Value: "closed", Usage: "closed (only the API devices) or auto (no policy)"},
		&cli.StringSliceFlag{Name: "device-allow", Usage: "also allow `TYPE:MAJOR:MINOR[:rwm]` or a device PATH[:rwm]"},
		&cli.BoolFlag{Name: "cleanup", Usage: "remove stale spawn-* cgroups below the caller's cgroup, and run nothing"},
		&cli.BoolFlag{Name: "force", Usage: "with --cleanup: kill what is left in stale cgroups"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no informational messages"},
		// Which mechanism enforces the device policy where both could:
		// bpf (the default where cgroup2 is mounted) or v1. For tests of
		// the v1 path on hybrid machines.
		&cli.StringFlag{Name: "device-mechanism", Hidden: true},
		// Test hooks, which the attack tests use to show what each defence
		// closes: payload-cgroup runs PROG in the cgroup that carries the
		// policy and the limits instead of one below it; every-hierarchy
		// makes cgroups only in the hierarchies a limit or the policy
		// needs (and cgroup2; without it, name=systemd and the freezer).
		// Hidden, and never passed on by spawn.
		&cli.StringSliceFlag{Name: "unsafe-disable", Hidden: true},
	},
	// --cleanup is a job of its own: the front door runs spawn-cgroup
	// alone for it.
	Actions: []string{"cleanup"},
	Action:  run,
}

// payloadName is the cgroup below the container's where PROG runs (the
// name systemd-nspawn gives it too). The container's cgroup itself holds
// no process: it carries the limits and the device policy, out of reach of
// what runs below it.
const payloadName = "payload"

// How long leftovers may take to die, and an emptied cgroup to be
// removable.
const (
	killTimeout   = 5 * time.Second
	removeTimeout = 2 * time.Second
)

// limitFlags are the limit options and the v2 files they are named after.
var limitFlags = []struct{ flag, file string }{
	{"memory-max", "memory.max"},
	{"memory-high", "memory.high"},
	{"pids-max", "pids.max"},
	{"cpu-weight", "cpu.weight"},
	{"cpu-max", "cpu.max"},
}

// options are the parsed options of a run.
type options struct {
	name      string
	limits    []cgroups.Limit
	memoryMax string        // as given, for the out-of-memory message
	rules     devices.Rules // nil: no device policy
	mechanism string        // "", "bpf" or "v1"
	flat      bool          // PROG in the cgroup itself (test hook)
	needed    bool          // only the hierarchies needed (test hook)
}

func parse(c *cli.Context) (*options, error) {
	o := &options{name: c.String("name")}
	if o.name == "" {
		o.name = fmt.Sprintf("spawn-%d", os.Getpid())
	}
	if err := validName(o.name); err != nil {
		return nil, err
	}
	for _, f := range limitFlags {
		if !c.IsSet(f.flag) {
			continue
		}
		v := c.String(f.flag)
		l, err := cgroups.ParseLimit(f.file, v)
		if err != nil {
			return nil, chain.Failf("--%s=%s: %w", f.flag, v, err)
		}
		o.limits = append(o.limits, l)
		if f.file == "memory.max" {
			o.memoryMax = v
		}
	}
	switch p := c.String("device-policy"); p {
	case "closed":
		o.rules = append(devices.Rules{}, devices.Closed...)
		for _, s := range c.StringSlice("device-allow") {
			r, err := devices.Parse(s)
			if err != nil {
				return nil, chain.Failf("--device-allow=%s: %w", s, err)
			}
			o.rules = append(o.rules, r)
		}
	case "auto":
		if len(c.StringSlice("device-allow")) > 0 {
			return nil, chain.Failf("--device-allow needs --device-policy=closed (auto sets no policy at all)")
		}
	default:
		return nil, chain.Failf("--device-policy=%s: want closed or auto", p)
	}
	switch o.mechanism = c.String("device-mechanism"); o.mechanism {
	case "", "bpf", "v1":
	default:
		return nil, chain.Failf("--device-mechanism=%s: want bpf or v1", o.mechanism)
	}
	for _, d := range c.StringSlice("unsafe-disable") {
		switch d {
		case "payload-cgroup":
			o.flat = true
		case "every-hierarchy":
			o.needed = true
		default:
			return nil, chain.Failf("--unsafe-disable=%q: want payload-cgroup or every-hierarchy", d)
		}
	}
	return o, nil
}

func run(c *cli.Context, prog []string) error {
	if c.Bool("cleanup") {
		if len(prog) > 0 {
			return chain.Failf("--cleanup runs nothing, but a program was given: %q", prog[0])
		}
		return cleanup(c.Bool("force"), c.Bool("quiet"))
	}
	if c.Bool("force") {
		return chain.Failf("--force only goes with --cleanup")
	}
	if err := chain.NeedProg("spawn-cgroup", prog); err != nil {
		return err
	}
	o, err := parse(c)
	if err != nil {
		return err
	}
	if err := chain.NeedRoot("creating a cgroup"); err != nil {
		return err
	}
	cmd, err := chain.NewCmd(prog)
	if err != nil {
		return err
	}
	// A signal during set-up must not leave cgroups behind: hold it until
	// the child runs (Child.Run forwards from then on).
	early := make(chan os.Signal, 1)
	signal.Notify(early, chain.Forwarded...)
	defer signal.Stop(early)

	set, err := setUp(o)
	if err != nil {
		return err
	}
	payload := set
	if !o.flat {
		// After the policy: a v1 devices cgroup takes its parent's
		// exceptions when it is made, and refuses "a" once it has
		// children.
		if payload, err = set.Nest(payloadName); err != nil {
			set.Remove(removeTimeout)
			return chain.Failf("%w", err)
		}
	}
	select {
	case s := <-early:
		set.Remove(removeTimeout)
		return chain.Status(128 + int(s.(syscall.Signal)))
	default:
	}
	return runIn(set, payload, cmd, o, early)
}

// setUp detects the hierarchies, creates the container's cgroups, and
// applies the limits and the device policy.
func setUp(o *options) (*cgroups.Set, error) {
	hs, err := cgroups.Detect()
	if err != nil {
		return nil, chain.Failf("find cgroup hierarchies: %w", err)
	}
	var controllers []string
	for _, l := range o.limits {
		controllers = append(controllers, l.Controller())
	}
	_, hasV2 := cgroups.V2(hs)
	_, hasV1Devices := cgroups.V1(hs, "devices")
	var prog *devices.Program
	if o.rules != nil {
		if o.mechanism == "bpf" && !hasV2 {
			return nil, chain.Failf("device policy: cgroup2 is not mounted, so no BPF device program")
		}
		if hasV2 && o.mechanism != "v1" {
			prog, err = o.rules.Load()
			switch {
			case err != nil && o.mechanism == "bpf":
				return nil, chain.Failf("device policy: %w", err)
			case err != nil && !hasV1Devices:
				return nil, chain.Failf("device policy: %w (and no v1 devices controller to fall back on; --device-policy=auto runs without a policy)", err)
			}
		}
		if prog == nil {
			if !hasV1Devices {
				why := "no v1 devices controller is mounted"
				if !hasV2 {
					why += " and cgroup2 (for a BPF device program) is not either"
				}
				return nil, chain.Failf("device policy: %s; --device-policy=auto runs without a policy", why)
			}
			controllers = append(controllers, "devices")
		}
	}
	if prog != nil {
		defer prog.Close()
	}
	set, err := create(hs, controllers, o)
	if err != nil {
		return nil, err
	}
	if prog != nil {
		if err := prog.Attach(set.V2().Dir); err != nil {
			set.Remove(removeTimeout)
			if !hasV1Devices || o.mechanism != "" {
				return nil, chain.Failf("device policy: %w", err)
			}
			// Refused where a cgroup above has an exclusive (non-multi)
			// device program: the v1 controller still works.
			prog = nil
			if set, err = create(hs, append(controllers, "devices"), o); err != nil {
				return nil, err
			}
		}
	}
	if prog == nil && o.rules != nil {
		if err := o.rules.V1Apply(set.On("devices").Dir); err != nil {
			set.Remove(removeTimeout)
			return nil, chain.Failf("device policy: %w", err)
		}
	}
	return set, nil
}

func create(hs []cgroups.Hierarchy, controllers []string, o *options) (*cgroups.Set, error) {
	sel := cgroups.Select
	if o.needed {
		sel = cgroups.SelectNeeded
	}
	plan, err := sel(hs, controllers)
	if err != nil {
		return nil, chain.Failf("%w", err)
	}
	set, err := plan.Create(o.name)
	if err != nil {
		return nil, chain.Failf("%w", err)
	}
	if err := set.Apply(o.limits); err != nil {
		set.Remove(removeTimeout)
		return nil, chain.Failf("%w", err)
	}
	return set, nil
}

// runIn runs the child in payload (the cgroups below the container's, or
// set itself), then empties and removes set and everything below it.
func runIn(set, payload *cgroups.Set, cmd *exec.Cmd, o *options, early chan os.Signal) error {
	child := &chain.Child{Cmd: cmd}
	// Child.Run forwards signals from just before the fork on; one that
	// came earlier (since run's own handler) goes to the child as soon as
	// it exists.
	var pending os.Signal
	takeEarly := func() {
		signal.Stop(early)
		select {
		case pending = <-early:
		default:
		}
	}
	forwardEarly := func(pid int) {
		if pending != nil {
			syscall.Kill(pid, pending.(syscall.Signal))
		}
	}
	child.Prepare = func() error {
		takeEarly()
		return nil
	}
	child.Started = func(pid int) error {
		forwardEarly(pid)
		return nil
	}
	if g := payload.V2(); g != nil {
		fd, err := g.Open()
		if err != nil {
			set.Remove(removeTimeout)
			return chain.Failf("%w", err)
		}
		defer unix.Close(fd)
		// clone3(CLONE_INTO_CGROUP): the child is in the cgroup from its
		// first instruction.
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = fd
	}
	v1 := payload.V1()
	var stepOut func() error
	if len(v1) > 0 {
		// v1 has no CLONE_INTO_CGROUP. The child inherits the cgroups of
		// the thread that forks it, and a v1 cgroup takes single threads
		// (its tasks file): only the forking thread, which Child.Run keeps
		// locked, steps in for the fork and back out (Prepare, Started and
		// what follows Run all run on it). Our other threads are never
		// counted by pids.max nor confined by devices, and the Go runtime
		// never clones new threads from a locked thread, so none is born
		// inside. The thread moves itself: that spares the kernel's
		// threadgroup lock, whose RCU grace period would cost 8 ms here
		// per move, twice per start.
		stepOut = func() error {
			var first error
			for _, g := range v1 {
				own := &cgroups.Group{Hierarchy: g.Hierarchy, Dir: g.Hierarchy.Dir()}
				if err := own.AddSelf(); err != nil && first == nil {
					first = chain.Failf("step back out of %s: %w", g.Dir, err)
				}
			}
			return first
		}
		child.Prepare = func() error {
			takeEarly()
			for _, g := range v1 {
				if err := g.AddSelf(); err != nil {
					stepOut()
					return chain.Failf("place the child in %s: %w", g.Dir, err)
				}
			}
			return nil
		}
		child.Started = func(pid int) error {
			forwardEarly(pid)
			return stepOut()
		}
	}
	// Daemons PROG leaves behind outside a PID namespace are re-parented to
	// us, so that we can reap them once they are killed.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

	code, runErr := child.Run()
	if runErr != nil && stepOut != nil {
		stepOut()
	}
	// memory.events is hierarchical, and v1's oom_control is summed over
	// the tree: the container's cgroup counts the kills in payload and
	// below.
	var oom int64
	if g := set.On("memory"); g != nil {
		oom, _ = g.OOMKills()
	}
	killErr := set.Kill(killTimeout, reap)
	var still *cgroups.StillRunning
	if errors.As(killErr, &still) {
		warnf("warning: %v; left in place (spawn-cgroup --cleanup --force removes it later)", killErr)
		set.Remove(0)
	} else if err := set.Remove(removeTimeout); err != nil {
		warnf("warning: %v", err)
	}
	if runErr != nil {
		return runErr
	}
	if oom > 0 {
		limit := ""
		if o.memoryMax != "" {
			limit = " (--memory-max=" + o.memoryMax + ")"
		}
		warnf("the container ran out of memory%s: the OOM killer killed %d %s in it", limit, oom, plural(oom))
	}
	return chain.Status(code)
}

func plural(n int64) string {
	if n == 1 {
		return "process"
	}
	return "processes"
}

func warnf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "spawn-cgroup: "+format+"\n", args...)
}

// cleanup removes the stale spawn-* cgroups below the caller's own. A
// container has one in every hierarchy, under one name: they are taken
// together, so that a container is left alone, emptied or reported once.
func cleanup(force, quiet bool) error {
	if err := chain.NeedRoot("removing cgroups"); err != nil {
		return err
	}
	hs, err := cgroups.Detect()
	if err != nil {
		return chain.Failf("find cgroup hierarchies: %w", err)
	}
	var names []string
	byName := map[string][]*cgroups.Group{}
	for _, g := range cgroups.Stale(hs, "spawn-") {
		n := filepath.Base(g.Dir)
		if byName[n] == nil {
			names = append(names, n)
		}
		byName[n] = append(byName[n], g)
	}
	var failed error
	fail := func(err error) {
		if failed == nil {
			failed = err
		}
	}
	for _, n := range names {
		var locked []*cgroups.Group
		unlock := func() {
			for _, g := range locked {
				g.Unlock()
			}
		}
		alive := false
		for _, g := range byName[n] {
			err := g.TryLockExclusive()
			switch {
			case err == nil:
				locked = append(locked, g)
			case errors.Is(err, unix.EWOULDBLOCK):
				alive = true // its spawn-cgroup is alive
			case !errors.Is(err, unix.ENOENT):
				fail(chain.Failf("lock cgroup %s: %w", g.Dir, err))
			}
		}
		if alive || len(locked) == 0 {
			unlock()
			continue
		}
		var pids []int
		for _, g := range locked {
			for _, pid := range g.TreeProcs() {
				if !slices.Contains(pids, pid) {
					pids = append(pids, pid)
				}
			}
		}
		if len(pids) > 0 {
			slices.Sort(pids)
			if !force {
				warnf("%s: %d %s still in it %v; left in place (--force kills them)", locked[0].Dir, len(pids), plural(int64(len(pids))), pids)
				unlock()
				continue
			}
			if err := cgroups.Kill(locked, killTimeout, nil); err != nil {
				warnf("%v", err)
				unlock()
				fail(chain.Failf("%s: could not be emptied", locked[0].Dir))
				continue
			}
		}
		for _, g := range locked {
			if err := g.Remove(removeTimeout); err != nil {
				warnf("%v", err)
				fail(chain.Failf("%s: could not be removed", g.Dir))
				continue
			}
			if !quiet {
				fmt.Printf("removed %s\n", g.Dir)
			}
		}
	}
	return failed
}

func validName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 255 {
		return chain.Failf("--name=%q: not a valid cgroup name", name)
	}
	for _, r := range name {
		if r == '/' || r == '\n' || r == 0 {
			return chain.Failf("--name=%q: not a valid cgroup name (no /, newline or NUL)", name)
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
