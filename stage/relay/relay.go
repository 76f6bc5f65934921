// Package relay is spawn-relay: when stdin is a terminal, PROG gets a
// fresh pty relayed to the caller's terminal; otherwise PROG is executed
// straight away, its stdio passing through untouched.
package relay

import (
	"os"

	"github.com/urfave/cli/v2"

	"spawn/lib/chain"
)

const description = `spawn-relay is the outermost stage. When stdin is not a terminal it
executes PROG directly: stdin, stdout and stderr pass through byte-exact.

Exit status: 125 if spawn-relay failed; 126/127 if PROG could not be
executed or found; otherwise PROG's.

Example:
  spawn-relay -- spawn-cgroup -- spawn-ns -- spawn-rootfs -D /srv/tree -- spawn-caps -- sh`

// Stage is spawn-relay.
var Stage = &chain.Stage{
	Name:        "spawn-relay",
	Usage:       "relay the caller's terminal to PROG through a new pty",
	Description: description,
	Flags:       []cli.Flag{},
	Action:      run,
}

func run(c *cli.Context, prog []string) error {
	if err := chain.NeedProg("spawn-relay", prog); err != nil {
		return err
	}
	return chain.Exec(prog, os.Environ(), os.Getenv("PATH"))
}
