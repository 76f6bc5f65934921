// Package devices is the device cgroup policy: which device nodes a
// container may create (mknod) and open. The same allow-list is rendered
// for both kernels' mechanisms: the cgroup v1 devices controller's
// devices.allow lines, and a cgroup v2 BPF_CGROUP_DEVICE program.
//
// The policy matters because the seed's capability set keeps CAP_SYS_ADMIN:
// container root can mount devtmpfs or remount a tree with "dev", and then
// only the device cgroup stops it from opening the host's disks.
package devices

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Access is a set of device operations, with the kernel's
// BPF_DEVCG_ACC_* bit values (the v1 controller's "m", "r", "w").
type Access uint8

const (
	Mknod Access = 1 // BPF_DEVCG_ACC_MKNOD
	Read  Access = 2 // BPF_DEVCG_ACC_READ
	Write Access = 4 // BPF_DEVCG_ACC_WRITE
	All          = Mknod | Read | Write
)

func (a Access) String() string {
	var b strings.Builder
	for _, x := range []struct {
		bit Access
		c   byte
	}{{Read, 'r'}, {Write, 'w'}, {Mknod, 'm'}} {
		if a&x.bit != 0 {
			b.WriteByte(x.c)
		}
	}
	return b.String()
}

// ParseAccess reads "rwm" letters (any order, at least one).
func ParseAccess(s string) (Access, error) {
	var a Access
	if s == "" {
		return 0, errors.New("no access given (letters r, w, m)")
	}
	for _, c := range s {
		switch c {
		case 'r':
			a |= Read
		case 'w':
			a |= Write
		case 'm':
			a |= Mknod
		default:
			return 0, fmt.Errorf("access %q: only the letters r, w and m are allowed", s)
		}
	}
	return a, nil
}

// Type is a device type: 'c' (character), 'b' (block) or 'a' (both).
type Type byte

const (
	Char  Type = 'c'
	Block Type = 'b'
	Any   Type = 'a'
)

// Wildcard is a major or minor number matching every number ("*").
const Wildcard = -1

// Rule allows Access to the devices of Type with Major:Minor.
type Rule struct {
	Type         Type
	Major, Minor int64 // Wildcard for "*"
	Access       Access
}

func number(n int64) string {
	if n == Wildcard {
		return "*"
	}
	return strconv.FormatInt(n, 10)
}

// String is the rule as --device-allow takes it: TYPE:MAJOR:MINOR:ACCESS.
func (r Rule) String() string {
	return fmt.Sprintf("%c:%s:%s:%s", r.Type, number(r.Major), number(r.Minor), r.Access)
}

// V1 is the rule as the v1 devices controller's devices.allow reads it.
func (r Rule) V1() string {
	return fmt.Sprintf("%c %s:%s %s", r.Type, number(r.Major), number(r.Minor), r.Access)
}

// Matches reports whether the rule allows access (every bit of it) to the
// device of type t (Char or Block) with the given numbers.
func (r Rule) Matches(t Type, major, minor int64, access Access) bool {
	return (r.Type == Any || r.Type == t) &&
		(r.Major == Wildcard || r.Major == major) &&
		(r.Minor == Wildcard || r.Minor == minor) &&
		access&^r.Access == 0
}

// Rules is an allow-list: everything no rule allows is denied.
type Rules []Rule

// Allows reports whether some rule allows access to the device. It is the
// reference the BPF program and the v1 lines are checked against.
func (rs Rules) Allows(t Type, major, minor int64, access Access) bool {
	for _, r := range rs {
		if r.Matches(t, major, minor, access) {
			return true
		}
	}
	return false
}

func charDev(major, minor int64) Rule {
	return Rule{Type: Char, Major: major, Minor: minor, Access: All}
}

// Closed is the default policy: the API devices every container has, and
// nothing else. Major 136 holds every pty of every devpts instance (its
// 2^20 minors are more than kernel.pty.max allows).
var Closed = Rules{
	charDev(1, 3),          // null
	charDev(1, 5),          // zero
	charDev(1, 7),          // full
	charDev(1, 8),          // random
	charDev(1, 9),          // urandom
	charDev(5, 0),          // tty
	charDev(5, 1),          // console
	charDev(5, 2),          // ptmx
	charDev(136, Wildcard), // pts/*
}

// Devices a later option may bind into the container, and must then add
// to the policy.
var (
	Tun  = charDev(10, 200) // /dev/net/tun
	Fuse = charDev(10, 229) // /dev/fuse
)

// Parse reads one --device-allow value: TYPE:MAJOR:MINOR[:ACCESS] (TYPE c,
// b or a; MAJOR and MINOR numbers or *), or PATH[:ACCESS] naming a device
// node (stat'ed now). ACCESS is letters of rwm and defaults to rwm.
func Parse(s string) (Rule, error) {
	if strings.HasPrefix(s, "/") {
		return parsePath(s)
	}
	f := strings.Split(s, ":")
	if len(f) != 3 && len(f) != 4 {
		return Rule{}, errors.New("want TYPE:MAJOR:MINOR[:ACCESS] (e.g. c:10:200:rwm) or a device path (e.g. /dev/net/tun)")
	}
	var r Rule
	switch f[0] {
	case "c", "b", "a":
		r.Type = Type(f[0][0])
	default:
		return Rule{}, fmt.Errorf("device type %q: want c, b or a", f[0])
	}
	var err error
	if r.Major, err = parseNumber(f[1], "major", 1<<12-1); err != nil {
		return Rule{}, err
	}
	if r.Minor, err = parseNumber(f[2], "minor", 1<<20-1); err != nil {
		return Rule{}, err
	}
	if r.Type == Any && (r.Major != Wildcard || r.Minor != Wildcard) {
		return Rule{}, errors.New("type a (all devices) takes only *:* as numbers")
	}
	r.Access = All
	if len(f) == 4 {
		if r.Access, err = ParseAccess(f[3]); err != nil {
			return Rule{}, err
		}
	}
	return r, nil
}

// parseNumber reads a major or minor number (Linux: 12 and 20 bits) or *.
func parseNumber(s, what string, max int64) (int64, error) {
	if s == "*" {
		return Wildcard, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > max {
		return 0, fmt.Errorf("%s number %q: want 0..%d or *", what, s, max)
	}
	return n, nil
}

func parsePath(s string) (Rule, error) {
	path, access := s, All
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		a, err := ParseAccess(s[i+1:])
		if err != nil {
			return Rule{}, err
		}
		path, access = s[:i], a
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Rule{}, fmt.Errorf("%s: %w", path, err)
	}
	r := Rule{Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)), Access: access}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		r.Type = Char
	case unix.S_IFBLK:
		r.Type = Block
	default:
		return Rule{}, fmt.Errorf("%s: not a device node", path)
	}
	return r, nil
}

// V1Writes are the writes that set the policy on a v1 devices cgroup, in
// order: {file, line}. Everything is denied, then each rule allowed; the
// kernel refuses (EPERM) to allow what the parent cgroup does not, so a
// policy can only narrow.
func (rs Rules) V1Writes() [][2]string {
	w := [][2]string{{"devices.deny", "a"}}
	for _, r := range rs {
		w = append(w, [2]string{"devices.allow", r.V1()})
	}
	return w
}

// V1Apply sets the policy on the v1 devices cgroup directory dir.
func (rs Rules) V1Apply(dir string) error {
	for _, w := range rs.V1Writes() {
		p := dir + "/" + w[0]
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteString(w[1])
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return fmt.Errorf("write %q to %s: %w", w[1], p, err)
		}
	}
	return nil
}
