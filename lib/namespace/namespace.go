// Package namespace creates and identifies namespaces.
package namespace

import (
	"fmt"
	"os"

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

// Private reports whether we are in a kind namespace other than the one of
// the host's init (PID 1 in the procfs mounted at /proc, which until the
// container mounts its own is the host's).
func Private(kind string) (bool, error) {
	self, err := ID("self", kind)
	if err != nil {
		return false, err
	}
	host, err := ID("1", kind)
	if err != nil {
		return false, err
	}
	return self != host, nil
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
