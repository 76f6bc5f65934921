// Command spawn is the front door: systemd-nspawn's command line, executed
// as the chain of spawn-* stages; see docs/spawn.md.
package main

import (
	"os"

	"spawn/stage/front"
)

func main() { os.Exit(front.Stage.Main(os.Args)) }
