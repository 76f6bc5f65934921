package main

import "syscall"

// rawInt80 enters the kernel through int 0x80, the i386 system call ABI,
// which a 64-bit process may use when the kernel has IA32 emulation.
func rawInt80(nr, a1, a2, a3 uintptr) uintptr

func int80(nr, a1, a2, a3 uintptr) error {
	r := rawInt80(nr, a1, a2, a3)
	if int32(r) < 0 && int32(r) > -4096 {
		return syscall.Errno(-int32(r))
	}
	return nil
}
