// Command spawn-rootfs sets up a tree and switches root into it; see
// docs/spawn-rootfs.md.
package main

import (
	"os"

	"spawn/stage/rootfs"
)

func main() { os.Exit(rootfs.Stage.Main(os.Args)) }
