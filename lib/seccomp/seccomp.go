// Package seccomp builds and installs the container's system call filter:
// a deny list answered with EPERM, in pure Go (no libseccomp, no cgo).
//
// The filter checks the architecture first and has one block per system
// call ABI the kernel accepts on this machine: on x86-64 that is the 64-bit
// ABI, x32 (the same audit arch with bit 30 set in the number) and i386
// (int 0x80). A filter that only compared x86-64 numbers would be bypassed
// by calling the same system call through int 0x80.
package seccomp

//go:generate go run mktables.go

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Default is what the container may never call, unless allowed by name:
// ways out of the container (open_by_handle_at: "shocker" reads host files
// by inode), into the kernel (modules, kexec, bpf, perf), to host-wide state
// (keyrings, swap, accounting, quotas, the kernel log, fanotify) and
// userfaultfd (a tool for exploiting kernel races).
var Default = []string{
	"open_by_handle_at", "kexec_load", "kexec_file_load", "init_module",
	"finit_module", "delete_module", "bpf", "perf_event_open", "add_key",
	"request_key", "keyctl", "swapon", "swapoff", "acct", "quotactl",
	"quotactl_fd", "fanotify_init", "syslog", "lookup_dcookie", "userfaultfd",
}

// Filter is a set of denied system call names.
type Filter map[string]bool

// New is the default filter adjusted by nspawn-style --system-call-filter
// values: names (space- or comma-separated) are allowed, a list starting
// with "~" is denied.
func New(adjust []string) (Filter, error) {
	f := Filter{}
	for _, n := range Default {
		f[n] = true
	}
	for _, a := range adjust {
		deny := strings.HasPrefix(a, "~")
		for _, n := range strings.FieldsFunc(strings.TrimPrefix(a, "~"), func(r rune) bool { return r == ' ' || r == ',' }) {
			if !Known(n) {
				return nil, fmt.Errorf("unknown system call %q", n)
			}
			if deny {
				f[n] = true
			} else {
				delete(f, n)
			}
		}
	}
	return f, nil
}

// Known reports whether name is a system call of some ABI we filter.
func Known(name string) bool {
	for _, a := range allABIs {
		if _, ok := a.table[name]; ok {
			return true
		}
	}
	return false
}

// Names lists the denied system calls, sorted.
func (f Filter) Names() []string {
	names := make([]string, 0, len(f))
	for n := range f {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// An abi is one way of making system calls: an audit arch and its table.
type abi struct {
	arch  uint32
	table map[string]uint32
	// bit is or'ed into every number (x32's __X32_SYSCALL_BIT); numbers
	// with it set belong to this ABI and not to the plain one.
	bit uint32
	// extra numbers of this ABI for a name (x32's own entries, 512-547).
	extra map[string]uint32
}

const (
	auditArchX8664   = 0xc000003e
	auditArchI386    = 0x40000003
	auditArchAarch64 = 0xc00000b7
	auditArchARM     = 0x40000028
	x32Bit           = 0x40000000
)

// x32's own entries: where the 64-bit entry takes a pointer-sized struct,
// x32 calls a compat entry with its own number.
var x32Extra = map[string]uint32{
	"rt_sigaction": 512, "rt_sigreturn": 513, "ioctl": 514, "readv": 515,
	"writev": 516, "recvfrom": 517, "sendmsg": 518, "recvmsg": 519,
	"execve": 520, "ptrace": 521, "rt_sigpending": 522, "rt_sigtimedwait": 523,
	"rt_sigqueueinfo": 524, "sigaltstack": 525, "timer_create": 526,
	"mq_notify": 527, "kexec_load": 528, "waitid": 529, "set_robust_list": 530,
	"get_robust_list": 531, "vmsplice": 532, "move_pages": 533, "preadv": 534,
	"pwritev": 535, "rt_tgsigqueueinfo": 536, "recvmmsg": 537, "sendmmsg": 538,
	"process_vm_readv": 539, "process_vm_writev": 540, "setsockopt": 541,
	"getsockopt": 542, "io_setup": 543, "io_submit": 544, "execveat": 545,
	"preadv2": 546, "pwritev2": 547,
}

var (
	x8664   = abi{arch: auditArchX8664, table: sysnum_x86_64}
	x32     = abi{arch: auditArchX8664, table: sysnum_x86_64, bit: x32Bit, extra: x32Extra}
	i386    = abi{arch: auditArchI386, table: sysnum_i386}
	aarch64 = abi{arch: auditArchAarch64, table: sysnum_aarch64}
	arm     = abi{arch: auditArchARM, table: sysnum_arm}
	allABIs = []abi{x8664, i386, aarch64, arm}
)

// abis are the ABIs a process on this machine can call the kernel through.
func abis() []abi {
	switch runtime.GOARCH {
	case "amd64":
		return []abi{x8664, x32, i386}
	case "arm64":
		return []abi{aarch64, arm}
	}
	return nil
}

// BPF return values and instruction codes (linux/seccomp.h, linux/filter.h).
const (
	retKillProcess = 0x80000000
	retErrno       = 0x00050000
	retAllow       = 0x7fff0000

	ldAbsW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	jeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	jgeK   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	jaK    = unix.BPF_JMP | unix.BPF_JA
	retK   = unix.BPF_RET | unix.BPF_K

	offNr   = 0 // struct seccomp_data.nr
	offArch = 4 // struct seccomp_data.arch
)

// Program compiles the filter for this machine's ABIs.
func (f Filter) Program() ([]unix.SockFilter, error) {
	as := abis()
	if len(as) == 0 {
		return nil, fmt.Errorf("no system call filter for %s", runtime.GOARCH)
	}
	return f.program(as), nil
}

// program lays out a dispatch on the audit arch ("jeq arch; ja body" per
// arch, then kill: an arch we do not know is not let through), then one
// body per arch. A body loads the number and tests it against each denied
// one, every test followed by its own "return EPERM", so no conditional
// jump is longer than one instruction however long the list grows. x86-64
// and x32 share an arch: numbers with the x32 bit go to the x32 part.
func (f Filter) program(as []abi) []unix.SockFilter {
	names := f.Names()
	denials := func(a abi) []unix.SockFilter {
		var p []unix.SockFilter
		seen := map[uint32]bool{}
		deny := func(nr uint32) {
			if !seen[nr] {
				seen[nr] = true
				p = append(p,
					unix.SockFilter{Code: jeqK, Jt: 0, Jf: 1, K: nr},
					unix.SockFilter{Code: retK, K: retErrno | uint32(unix.EPERM)})
			}
		}
		for _, n := range names {
			if nr, ok := a.table[n]; ok {
				deny(nr | a.bit)
			}
			if nr, ok := a.extra[n]; ok {
				deny(nr | a.bit)
			}
		}
		return append(p, unix.SockFilter{Code: retK, K: retAllow})
	}

	var archs []uint32
	bodies := map[uint32][]unix.SockFilter{}
	for _, a := range as {
		body, ok := bodies[a.arch]
		if !ok {
			archs = append(archs, a.arch)
			body = []unix.SockFilter{{Code: ldAbsW, K: offNr}}
		}
		if a.bit == 0 {
			body = append(body, denials(a)...)
		} else {
			// Here body is [ld nr, plain denials...]: put a test in front
			// of the plain part that jumps over it for numbers with the bit.
			plain := body[1:]
			body = append([]unix.SockFilter{
				{Code: ldAbsW, K: offNr},
				{Code: jgeK, Jt: 0, Jf: 1, K: a.bit},
				{Code: jaK, K: uint32(len(plain))},
			}, plain...)
			body = append(body, denials(a)...)
		}
		bodies[a.arch] = body
	}

	n := len(archs)
	prog := []unix.SockFilter{{Code: ldAbsW, K: offArch}}
	start := 2 + 2*n // index of the first body
	for _, arch := range archs {
		ja := len(prog) + 1
		prog = append(prog,
			unix.SockFilter{Code: jeqK, Jt: 0, Jf: 1, K: arch},
			unix.SockFilter{Code: jaK, K: uint32(start - ja - 1)})
		start += len(bodies[arch])
	}
	prog = append(prog, unix.SockFilter{Code: retK, K: retKillProcess})
	for _, arch := range archs {
		prog = append(prog, bodies[arch]...)
	}
	return prog
}

// Install loads prog as the filter of every thread of this process
// (SECCOMP_FILTER_FLAG_TSYNC: Go runs on several threads and a filter is
// per thread). Without no_new_privs this needs CAP_SYS_ADMIN.
func Install(prog []unix.SockFilter) error {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("install the system call filter: %w", errno)
	}
	return nil
}
