//go:build !amd64

package main

import "syscall"

func int80(nr, a1, a2, a3 uintptr) error { return syscall.ENOSYS }
