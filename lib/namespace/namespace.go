// Package namespace creates and identifies namespaces.
package namespace

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Kinds maps the names used in /proc/PID/ns to clone flags.
var Kinds = map[string]uintptr{
	"pid":    unix.CLONE_NEWPID,
	"mnt":    unix.CLONE_NEWNS,
	"uts":    unix.CLONE_NEWUTS,
	"ipc":    unix.CLONE_NEWIPC,
	"net":    unix.CLONE_NEWNET,
	"cgroup": unix.CLONE_NEWCGROUP,
	"user":   unix.CLONE_NEWUSER,
}

// ID is the namespace identity of kind for process pid ("self" for us), as
// the kernel prints it: "mnt:[4026531841]".
func ID(pid, kind string) (string, error) {
	return os.Readlink(fmt.Sprintf("/proc/%s/ns/%s", pid, kind))
}

// Private reports whether we are in a kind namespace of our own: one that
// an ancestor process is not in. The ancestors are walked (through the
// procfs at /proc, the host's until the container mounts its own) rather
// than compared with PID 1 alone, because PID 1 may not be inspectable even
// by root (a PID 1 with more capabilities than ours fails the ptrace check).
func Private(kind string) (bool, error) {
	self, err := ID("self", kind)
	if err != nil {
		return false, err
	}
	pid, err := parent("self")
	for err == nil && pid > 0 {
		p := strconv.Itoa(pid)
		if id, err := ID(p, kind); err == nil && id != self {
			return true, nil
		}
		if pid == 1 {
			break
		}
		pid, err = parent(p)
	}
	return false, nil
}

// parent reads a process's parent from its status; 0 when the parent is
// outside our PID namespace.
func parent(pid string) (int, error) {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("/proc/%s/status: no PPid", pid)
}

// LoopbackUp brings lo up in the network namespace of the calling thread.
// A fresh network namespace has lo, down, and nothing else.
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring lo up: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: set flags: %w", err)
	}
	return nil
}
