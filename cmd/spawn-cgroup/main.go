// Command spawn-cgroup runs PROG in a cgroup of its own; see docs/spawn-cgroup.md.
package main

import (
	"os"

	"spawn/stage/cgroup"
)

func main() { os.Exit(cgroup.Stage.Main(os.Args)) }
