package rootfs

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"

	"spawn/lib/mount"
)

// maskedFiles expose the host's kernel to container root: memory (kcore),
// addresses that defeat KASLR (kallsyms, timer_list), other containers'
// and the host's keys, and a button that reboots or crashes the host
// (sysrq-trigger). Each is covered by an empty read-only file.
var maskedFiles = []string{
	"/proc/kcore", "/proc/keys", "/proc/sysrq-trigger", "/proc/timer_list", "/proc/kallsyms",
}

// readOnlyProc are host-wide settings and hardware under /proc.
var readOnlyProc = []string{"/proc/acpi", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/scsi"}

// emptyFile is where the masks' empty file is made, on the container's own
// /run tmpfs; it is unlinked again once bound, and the binds keep it.
const emptyFile = "/run/.spawn-masked"

// maskProc applies the masks. A mask that fails is fatal: a silent failure
// would leave the hole open while looking closed. What the kernel does not
// have (no /proc/keys without CONFIG_KEYS) needs no mask.
func maskProc(r *mount.Root) error {
	if err := r.CreateFile(emptyFile, 0); err != nil {
		return err
	}
	empty, err := r.Open(emptyFile)
	if err != nil {
		return err
	}
	defer unix.Close(empty)
	for _, p := range maskedFiles {
		if !r.Exists(p) {
			continue
		}
		if err := r.BindFrom(mount.ProcFD(empty), p, true, 0); err != nil {
			return err
		}
	}
	if err := r.Remove(emptyFile); err != nil {
		return err
	}
	for _, p := range readOnlyProc {
		if _, err := r.Stat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := r.BindReadOnly(p, 0); err != nil {
			return err
		}
	}
	return nil
}
