package pty

import (
	"fmt"
	"strings"
)

// Console is how the container's console is connected, with
// systemd-nspawn's --console meanings.
type Console string

const (
	// Interactive: a new pty, relayed both ways to the caller's terminal.
	Interactive Console = "interactive"
	// ReadOnly: a new pty whose output is relayed; nothing is read from
	// the caller.
	ReadOnly Console = "read-only"
	// Passive: a new pty connected to nothing on the caller's side.
	Passive Console = "passive"
	// Pipe: no pty; stdin, stdout and stderr are passed on untouched.
	Pipe Console = "pipe"
	// AutoPipe: Interactive when stdin and stdout are terminals, else Pipe.
	AutoPipe Console = "autopipe"
)

// Consoles are the modes, in the order --help lists them.
var Consoles = []Console{Interactive, ReadOnly, Passive, Pipe, AutoPipe}

// ParseConsole reads a --console value.
func ParseConsole(s string) (Console, error) {
	for _, c := range Consoles {
		if s == string(c) {
			return c, nil
		}
	}
	names := make([]string, len(Consoles))
	for i, c := range Consoles {
		names[i] = string(c)
	}
	return "", fmt.Errorf("--console=%s: unknown console mode (want one of %s)", s, strings.Join(names, ", "))
}

// Resolve turns AutoPipe into Interactive or Pipe by looking at stdin and
// stdout; the other modes stay as they are.
func (c Console) Resolve() Console {
	if c != AutoPipe {
		return c
	}
	if IsTerminal(0) && IsTerminal(1) {
		return Interactive
	}
	return Pipe
}
