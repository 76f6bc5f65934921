package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Group is one cgroup directory (usually one this process created).
type Group struct {
	Hierarchy
	Dir string

	lock int // descriptor holding the group's flock, or 0
}

// Create makes the cgroup name below the caller's own.
func (h Hierarchy) Create(name string) (*Group, error) {
	return create(h, h.Dir(), name)
}

// Sub makes the cgroup name below g.
//
// On v1, a child cgroup starts from its parent's state: the devices
// controller copies the parent's exceptions into it and never lets it
// allow more than the parent, and the cpuset and memory fix-ups below are
// taken from g.
func (g *Group) Sub(name string) (*Group, error) {
	if g.Version == 1 && g.Has("memory") {
		// Kernels before 5.16 could leave a v1 memory cgroup
		// non-hierarchical (use_hierarchy 0): a limit on g would then not
		// bound what is charged below it. Newer ones are always
		// hierarchical and read 1 here.
		p := filepath.Join(g.Dir, "memory.use_hierarchy")
		if v, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(v)) == "0" {
			if err := writeFile(p, "1"); err != nil {
				return nil, fmt.Errorf("create cgroup %s: %w", filepath.Join(g.Dir, name), err)
			}
		}
	}
	return create(g.Hierarchy, g.Dir, name)
}

func create(h Hierarchy, parent, name string) (*Group, error) {
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", dir, unwrapPath(err))
	}
	g := &Group{Hierarchy: h, Dir: dir}
	if h.Version == 1 && h.Has("cpuset") {
		// A v1 cpuset cgroup starts with no CPUs and no memory nodes and
		// refuses tasks (ENOSPC) until given some: inherit the parent's.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, err := os.ReadFile(filepath.Join(parent, f))
			if err == nil {
				err = g.Write(f, strings.TrimSpace(string(v)))
			}
			if err != nil {
				unix.Rmdir(dir)
				return nil, fmt.Errorf("create cgroup %s: %w", dir, err)
			}
		}
	}
	return g, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Open returns a descriptor of the cgroup directory (for CLONE_INTO_CGROUP).
func (g *Group) Open() (int, error) {
	fd, err := unix.Open(g.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open cgroup %s: %w", g.Dir, err)
	}
	return fd, nil
}

// Write writes value to the cgroup's control file.
func (g *Group) Write(file, value string) error {
	return writeFile(filepath.Join(g.Dir, file), value)
}

// Add moves process pid (0: the caller) into the cgroup.
func (g *Group) Add(pid int) error {
	return g.Write("cgroup.procs", strconv.Itoa(pid))
}

// AddSelf moves the calling thread, alone, into the (v1) cgroup; a process
// that thread forks is born in it. The thread must stay the caller's
// (runtime.LockOSThread) for that to mean anything.
//
// It writes "0" (the writer itself) to tasks rather than its thread ID:
// the kernel then skips taking cgroup_threadgroup_rwsem for writing, whose
// RCU grace period costs 8 ms per move here, and a thread moving itself
// needs no protection from exiting or exec'ing meanwhile.
func (g *Group) AddSelf() error {
	return g.Write("tasks", "0")
}

// Procs lists the processes in the cgroup itself (not its descendants).
func (g *Group) Procs() ([]int, error) {
	return procs(g.Dir)
}

func procs(dir string) ([]int, error) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// Tree lists the cgroup and every cgroup below it, deepest first (the
// order they can be removed in).
func (g *Group) Tree() []string {
	var dirs []string
	var walk func(string)
	walk = func(dir string) {
		// cgroupfs (kernfs), like tmpfs and ext4, counts a directory's
		// links as 2 + its subdirectories: a leaf needs no listing, which
		// for a cgroup with dozens of control files is most of the cost
		// of the walk (a container has cgroups in up to a dozen
		// hierarchies, walked on every round of Kill).
		var st unix.Stat_t
		if unix.Stat(dir, &st) == nil && st.Nlink == 2 {
			dirs = append(dirs, dir)
			return
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.IsDir() {
				walk(filepath.Join(dir, e.Name()))
			}
		}
		dirs = append(dirs, dir)
	}
	walk(g.Dir)
	return dirs
}

// TreeProcs lists the processes in the cgroup and below it.
func (g *Group) TreeProcs() []int {
	var all []int
	for _, dir := range g.Tree() {
		pids, _ := procs(dir)
		all = append(all, pids...)
	}
	return all
}

// Lock takes a shared flock on the cgroup directory, held until Remove or
// the process's death: it tells Stale's callers that the cgroup's owner is
// alive. The descriptor is close-on-exec, so only this process holds it.
func (g *Group) Lock() error {
	fd, err := unix.Open(g.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open cgroup %s: %w", g.Dir, err)
	}
	if err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("lock cgroup %s: a spawn-cgroup --cleanup is removing it", g.Dir)
		}
		return fmt.Errorf("lock cgroup %s: %w", g.Dir, err)
	}
	// The cleanup that held the lock may have removed the directory just
	// before we locked the descriptor: make sure the path is still it.
	var byFD, byPath unix.Stat_t
	if unix.Fstat(fd, &byFD) != nil || unix.Stat(g.Dir, &byPath) != nil || byFD.Ino != byPath.Ino || byFD.Dev != byPath.Dev {
		unix.Close(fd)
		return fmt.Errorf("lock cgroup %s: removed by a spawn-cgroup --cleanup", g.Dir)
	}
	g.lock = fd
	return nil
}

// TryLockExclusive takes the flock exclusively without waiting. It fails
// with EWOULDBLOCK while the owner (which holds it shared) is alive.
func (g *Group) TryLockExclusive() error {
	fd, err := unix.Open(g.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		return err
	}
	g.lock = fd
	return nil
}

// Unlock releases the flock, if held.
func (g *Group) Unlock() {
	if g.lock > 0 {
		unix.Close(g.lock)
		g.lock = 0
	}
}

// Remove removes the cgroup and every (empty) cgroup below it, deepest
// first, and releases its lock. A cgroup whose last process has just
// exited can still be busy for a moment, so EBUSY is retried until
// timeout.
func (g *Group) Remove(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	defer g.Unlock()
	for _, dir := range g.Tree() {
		if err := rmdir(dir, deadline); err != nil {
			return err
		}
	}
	return nil
}

func rmdir(dir string, deadline time.Time) error {
	delay := 100 * time.Microsecond
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(delay)
		if delay < 10*time.Millisecond {
			delay *= 2
		}
	}
}

// OOMKills is how many processes in the cgroup the OOM killer killed, and
// whether the kernel counts them here. It reads the "oom_kill" counter:
// v2 memory.events (hierarchical: it includes the cgroups below), v1
// memory.oom_control (this cgroup's only, so the tree is summed). The v1
// memory.failcnt is no such signal: it counts every time usage hit the
// limit, which page cache reclaim resolves without killing anything.
func (g *Group) OOMKills() (int64, bool) {
	if g.Version == 2 {
		return readKey(filepath.Join(g.Dir, "memory.events"), "oom_kill")
	}
	var total int64
	found := false
	for _, dir := range g.Tree() {
		if n, ok := readKey(filepath.Join(dir, "memory.oom_control"), "oom_kill"); ok {
			total += n
			found = true
		}
	}
	return total, found
}

// readKey reads the value of key from a flat-keyed file ("key value" lines).
func readKey(p, key string) (int64, bool) {
	f, err := os.Open(p)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
