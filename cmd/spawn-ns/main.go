// Command spawn-ns runs PROG as PID 1 of new namespaces; see docs/spawn-ns.md.
package main

import (
	"os"

	"spawn/stage/ns"
)

func main() { os.Exit(ns.Stage.Main(os.Args)) }
