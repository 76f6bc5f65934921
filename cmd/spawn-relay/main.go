// Command spawn-relay relays a terminal to PROG; see docs/spawn-relay.md.
package main

import (
	"os"

	"spawn/stage/relay"
)

func main() { os.Exit(relay.Stage.Main(os.Args)) }
