// Command spawn-caps reduces capabilities, becomes the user and execs the
// payload; see docs/spawn-caps.md.
package main

import (
	"os"

	"spawn/stage/caps"
)

func main() { os.Exit(caps.Stage.Main(os.Args)) }
