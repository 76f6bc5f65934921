// With --as-pid2 this program stays inside the container as its init. The
// Go runtime's cgroup-aware GOMAXPROCS keeps the cgroup's cpu.cfs_quota_us
// and cpu.cfs_period_us open for the process's whole life, and
// /proc/1/fd/N would let container root reopen them for writing and lift
// its own CPU limit: keep the runtime away from the cgroup files.
//
//go:debug containermaxprocs=0

// Command spawn-ns runs PROG as PID 1 of new namespaces; see docs/spawn-ns.md.
package main

import (
	"os"

	"spawn/stage/ns"
)

func main() { os.Exit(ns.Stage.Main(os.Args)) }
