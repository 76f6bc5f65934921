// Package cgroups finds the caller's cgroups, creates the container's below
// them, and kills and removes it at the end. It knows the three layouts a
// machine may have: pure cgroup v2, hybrid (cgroup2 at
// /sys/fs/cgroup/unified, controllers on v1), and legacy v1.
package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Hierarchy is one mounted cgroup hierarchy and the caller's place in it.
type Hierarchy struct {
	Version     int      // 1 or 2
	Mount       string   // where it is mounted
	Controllers []string // v1: its controllers, or "name=NAME"; v2: nil
	Own         string   // the caller's cgroup, relative to the hierarchy's root
}

// Dir is the caller's own cgroup directory in this hierarchy.
func (h Hierarchy) Dir() string { return filepath.Join(h.Mount, h.Own) }

// Has reports whether a v1 hierarchy carries controller (or "name=X").
func (h Hierarchy) Has(controller string) bool {
	for _, c := range h.Controllers {
		if c == controller {
			return true
		}
	}
	return false
}

// Parse reads /proc/self/mountinfo and /proc/self/cgroup and returns the
// hierarchies the caller can reach, v2 first.
func Parse(mountinfo, cgroup io.Reader) ([]Hierarchy, error) {
	own := map[string]string{} // "" for v2, else the controller list
	sc := bufio.NewScanner(cgroup)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 {
			continue
		}
		own[f[1]] = f[2]
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var v2, v1 []Hierarchy
	seen := map[string]bool{}
	sc = bufio.NewScanner(mountinfo)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+3 > len(fields) {
			continue
		}
		root, mnt, fstype := unescape(fields[3]), unescape(fields[4]), fields[sep+1]
		switch fstype {
		case "cgroup2":
			path, ok := own[""]
			if !ok || seen["cgroup2"] {
				continue
			}
			seen["cgroup2"] = true
			v2 = append(v2, Hierarchy{Version: 2, Mount: mnt, Own: relative(path, root)})
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(fields[sep+3], ",") {
				if o == "rw" || o == "ro" || strings.HasPrefix(o, "release_agent=") || o == "clone_children" || o == "noprefix" || o == "xattr" || o == "cpuset_v2_mode" || o == "favordynmods" {
					continue
				}
				ctrls = append(ctrls, o)
			}
			key := strings.Join(ctrls, ",")
			path, ok := own[key]
			if !ok || seen[key] {
				continue
			}
			seen[key] = true
			v1 = append(v1, Hierarchy{Version: 1, Mount: mnt, Controllers: ctrls, Own: relative(path, root)})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return append(v2, v1...), nil
}

// relative makes a /proc/self/cgroup path relative to a mount whose root is
// not the hierarchy's root (as inside a container with a cgroup namespace
// or a bind-mounted subtree).
func relative(path, root string) string {
	if root == "/" {
		return path
	}
	if rel, ok := strings.CutPrefix(path, root); ok && (rel == "" || rel[0] == '/') {
		return "/" + strings.TrimPrefix(rel, "/")
	}
	return path
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Detect returns the caller's cgroup hierarchies, v2 first.
func Detect() ([]Hierarchy, error) {
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer mi.Close()
	cg, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer cg.Close()
	return Parse(mi, cg)
}

// Group is a cgroup this process created.
type Group struct {
	Hierarchy
	Dir string
}

// Create makes the cgroup name below the caller's own.
func (h Hierarchy) Create(name string) (*Group, error) {
	dir := filepath.Join(h.Dir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", dir, unwrapPath(err))
	}
	g := &Group{Hierarchy: h, Dir: dir}
	if h.Version == 1 && h.Has("cpuset") {
		// A v1 cpuset cgroup starts with no CPUs and no memory nodes and
		// refuses tasks (ENOSPC) until given some: inherit the parent's.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, err := os.ReadFile(filepath.Join(h.Dir(), f))
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
	fd, err := unix.Open(g.Dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open cgroup %s: %w", g.Dir, err)
	}
	return fd, nil
}

// Write writes value to the cgroup's control file.
func (g *Group) Write(file, value string) error {
	p := filepath.Join(g.Dir, file)
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, unwrapPath(err))
	}
	return nil
}

// Add moves process pid (0: the caller) into the cgroup.
func (g *Group) Add(pid int) error {
	return g.Write("cgroup.procs", strconv.Itoa(pid))
}

// Procs lists the processes in the cgroup.
func (g *Group) Procs() ([]int, error) {
	data, err := os.ReadFile(filepath.Join(g.Dir, "cgroup.procs"))
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

// Kill kills everything left in the cgroup and waits, at most timeout, for
// it to be empty. reap is called between rounds so that a caller that is
// the processes' (sub)reaper can collect them.
func (g *Group) Kill(timeout time.Duration, reap func()) error {
	if g.Version == 2 {
		// cgroup.kill (Linux 5.14) kills every process at once, including
		// ones forked while we would be iterating.
		if err := g.Write("cgroup.kill", "1"); err == nil {
			return g.waitEmpty(timeout, reap, false)
		}
	}
	return g.waitEmpty(timeout, reap, true)
}

func (g *Group) waitEmpty(timeout time.Duration, reap func(), kill bool) error {
	deadline := time.Now().Add(timeout)
	delay := 100 * time.Microsecond
	for {
		pids, err := g.Procs()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("list processes in %s: %w", g.Dir, unwrapPath(err))
		}
		if len(pids) == 0 {
			return nil
		}
		if kill {
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if reap != nil {
			reap()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s: processes %v still running after SIGKILL for %v", g.Dir, pids, timeout)
		}
		time.Sleep(delay)
		if delay < 10*time.Millisecond {
			delay *= 2
		}
	}
}

// Remove removes the (empty) cgroup. A cgroup whose last process has just
// exited can still be busy for a moment, so EBUSY is retried until timeout.
func (g *Group) Remove(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	delay := 100 * time.Microsecond
	for {
		err := unix.Rmdir(g.Dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", g.Dir, err)
		}
		time.Sleep(delay)
		if delay < 10*time.Millisecond {
			delay *= 2
		}
	}
}
