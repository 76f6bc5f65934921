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
	"os"
	"path/filepath"
	"strconv"
	"strings"

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

// Layout is how a machine's cgroup hierarchies are arranged.
type Layout int

const (
	None    Layout = iota // no cgroup hierarchy mounted
	Unified               // cgroup v2 only
	Hybrid                // cgroup2 (usually at /sys/fs/cgroup/unified) beside v1 controllers
	Legacy                // v1 only
)

func (l Layout) String() string {
	return [...]string{"none", "unified (cgroup v2)", "hybrid (cgroup v1 controllers and cgroup2)", "legacy (cgroup v1)"}[l]
}

// LayoutOf tells the layout from the hierarchies Parse found.
func LayoutOf(hs []Hierarchy) Layout {
	var v1, v2 bool
	for _, h := range hs {
		if h.Version == 2 {
			v2 = true
		} else {
			v1 = true
		}
	}
	switch {
	case v1 && v2:
		return Hybrid
	case v2:
		return Unified
	case v1:
		return Legacy
	}
	return None
}

// V2 returns the cgroup2 hierarchy among hs.
func V2(hs []Hierarchy) (Hierarchy, bool) {
	for _, h := range hs {
		if h.Version == 2 {
			return h, true
		}
	}
	return Hierarchy{}, false
}

// V1 returns the v1 hierarchy carrying controller (or "name=X").
func V1(hs []Hierarchy, controller string) (Hierarchy, bool) {
	for _, h := range hs {
		if h.Version == 1 && h.Has(controller) {
			return h, true
		}
	}
	return Hierarchy{}, false
}

// Available lists the v2 controllers the caller's cgroup can hand to its
// children (its cgroup.controllers). On a hybrid machine it is usually
// empty: the controllers are bound to v1.
func (h Hierarchy) Available() ([]string, error) {
	p := filepath.Join(h.Dir(), "cgroup.controllers")
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, unwrapPath(err))
	}
	return strings.Fields(string(data)), nil
}

// Enable enables v2 controllers for the children of the caller's cgroup
// (cgroup.subtree_control), where they are not already.
func (h Hierarchy) Enable(controllers []string) error {
	p := filepath.Join(h.Dir(), "cgroup.subtree_control")
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, unwrapPath(err))
	}
	on := strings.Fields(string(data))
	for _, c := range controllers {
		if contains(on, c) {
			continue
		}
		if err := writeFile(p, "+"+c); err != nil {
			if errors.Is(err, unix.EBUSY) {
				// The "no internal processes" rule: a non-root cgroup that
				// has processes of its own cannot enable domain controllers
				// for its children.
				return fmt.Errorf("enable the %s controller in %s: the cgroup has processes of its own, and cgroup v2 then refuses controllers below it; run from a cgroup without other processes (or from the root cgroup)", c, p)
			}
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// writeFile writes value to an existing control file in one write, as
// cgroupfs wants (no O_CREAT, no O_TRUNC).
func writeFile(p, value string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(value)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, unwrapPath(err))
	}
	return nil
}
