package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// StillRunning is Kill's error when processes outlived the timeout.
type StillRunning struct {
	Dir     string // the first cgroup still holding some
	PIDs    []int
	Timeout time.Duration
}

func (e *StillRunning) Error() string {
	return fmt.Sprintf("%s still holds %d %s %v %v after SIGKILL", e.Dir, len(e.PIDs), plural(len(e.PIDs), "process", "processes"), e.PIDs, e.Timeout)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Kill kills everything in the cgroup and below it and waits, at most
// timeout, for it to be empty.
func (g *Group) Kill(timeout time.Duration, reap func()) error {
	return Kill([]*Group{g}, timeout, reap)
}

// Kill kills every process in the groups and below them (one container's
// cgroup in each of its hierarchies) and waits, at most timeout, for all of
// them to be empty. reap is called between rounds so that a caller that is
// the processes' (sub)reaper can collect them. The caller itself is never
// signalled. It never blocks past the timeout: a process that cannot die
// (uninterruptible sleep, frozen elsewhere) ends it with *StillRunning.
//
// v2's cgroup.kill (Linux 5.14) kills a whole tree at once, forks racing
// with it included. Without it, a freezer (v2 cgroup.freeze, or a v1
// freezer group among groups) is frozen so that nothing forks or exits
// while the processes listed are signalled, then thawed so that they can
// die; where there is neither, the processes are signalled round after
// round until none are left.
func Kill(groups []*Group, timeout time.Duration, reap func()) error {
	deadline := time.Now().Add(timeout)
	delay := 100 * time.Microsecond
	self := os.Getpid()
	for {
		left, where := alive(groups, self)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return &StillRunning{Dir: where, PIDs: left, Timeout: timeout}
		}
		for _, g := range groups {
			if g.Version == 2 {
				// Written every round: harmless, and it catches a process
				// moved in from outside meanwhile.
				g.Write("cgroup.kill", "1")
			}
		}
		thaw := freeze(groups)
		for _, g := range groups {
			for _, dir := range g.Tree() {
				signalAll(dir, self)
			}
		}
		thaw()
		if reap != nil {
			reap()
		}
		time.Sleep(delay)
		if delay < 10*time.Millisecond {
			delay *= 2
		}
	}
}

// alive lists the processes left in the groups' trees, except self, and
// one cgroup holding some.
func alive(groups []*Group, self int) ([]int, string) {
	var left []int
	where := ""
	for _, g := range groups {
		for _, dir := range g.Tree() {
			pids, err := procs(dir)
			if err != nil {
				continue
			}
			for _, pid := range pids {
				if pid != self && !slices.Contains(left, pid) {
					left = append(left, pid)
					if where == "" {
						where = dir
					}
				}
			}
		}
	}
	slices.Sort(left)
	return left, where
}

// freeze freezes the groups' freezers where the kernel lacks cgroup.kill,
// and returns what thaws them.
//
// The thaw takes in each group's whole tree, and v1 freezer groups also
// where cgroup.kill does the killing: a cgroup below that the container
// froze itself (its own cgroups are writable to container root) would
// otherwise hold its processes through SIGKILL, since a task frozen by the
// v1 freezer does not die until thawed; v2's freezer lets SIGKILL through.
func freeze(groups []*Group) (thaw func()) {
	killable := false
	for _, g := range groups {
		if g.Version == 2 {
			if _, err := os.Stat(filepath.Join(g.Dir, "cgroup.kill")); err == nil {
				killable = true
			}
		}
	}
	var thawed []*Group
	for _, g := range groups {
		switch {
		case g.Version == 2 && !killable:
			if g.Write("cgroup.freeze", "1") == nil {
				thawed = append(thawed, g)
			}
		case g.Version == 1 && g.Has("freezer"):
			if !killable {
				g.Write("freezer.state", "FROZEN")
			}
			thawed = append(thawed, g)
		}
	}
	return func() {
		for _, g := range thawed {
			file, value := "cgroup.freeze", "0"
			if g.Version == 1 {
				file, value = "freezer.state", "THAWED"
			}
			for _, dir := range g.Tree() {
				writeFile(filepath.Join(dir, file), value)
			}
		}
	}
}

// signalAll sends SIGKILL to every process in the cgroup dir (not below),
// except self. Each is first pinned with a pidfd and then checked to be
// still listed in the cgroup, so that a PID reused by a process outside
// the cgroup between the listing and the signal is never hit.
func signalAll(dir string, self int) {
	pids, err := procs(dir)
	if err != nil || len(pids) == 0 {
		return
	}
	type pinned struct{ pid, fd int }
	var pins []pinned
	for _, pid := range pids {
		if pid == self {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if errors.Is(err, unix.ENOSYS) {
			// Before Linux 5.3: no pidfds; the plain kill's PID reuse race
			// is what remains.
			unix.Kill(pid, unix.SIGKILL)
			continue
		}
		if err == nil {
			pins = append(pins, pinned{pid, fd})
		}
	}
	if len(pins) == 0 {
		return
	}
	now, _ := procs(dir)
	for _, p := range pins {
		if slices.Contains(now, p.pid) {
			unix.PidfdSendSignal(p.fd, unix.SIGKILL, nil, 0)
		}
		unix.Close(p.fd)
	}
}

// Stale lists the cgroups directly below the caller's own, in every
// hierarchy, whose names start with prefix.
func Stale(hs []Hierarchy, prefix string) []*Group {
	var found []*Group
	for _, h := range hs {
		ents, err := os.ReadDir(h.Dir())
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
				found = append(found, &Group{Hierarchy: h, Dir: filepath.Join(h.Dir(), e.Name())})
			}
		}
	}
	return found
}
