// Package front is spawn, the front door: it takes systemd-nspawn's command
// line and executes the chain of stages with each option handed to the
// stage that owns its step. It has no set-up logic of its own, and no
// option list of its own either: it accepts exactly the stages' options.
package front

import (
	"fmt"
	"os"
	"strings"

	"github.com/kballard/go-shellquote"
	"github.com/urfave/cli/v2"

	"spawn/lib/chain"
	"spawn/stage/caps"
	"spawn/stage/cgroup"
	"spawn/stage/ns"
	"spawn/stage/relay"
	"spawn/stage/rootfs"
)

// Chain is the stages in order, outermost first.
var Chain = []*chain.Stage{relay.Stage, cgroup.Stage, ns.Stage, rootfs.Stage, caps.Stage}

const description = `spawn runs PROG (default: the user's login shell) in a container made from
the OS tree DIR, by executing the chain

  spawn-relay -- spawn-cgroup -- spawn-ns -- spawn-rootfs -D DIR -- spawn-caps -- PROG ARGS

with each option below handed to the stage that owns it. --print prints that
chain as one shell-quoted line instead of running it. The stages are found
beside spawn's own executable first, then in PATH.

Exit status: PROG's; 125 if a stage failed; 126/127 if PROG could not be
executed or found; 128+N if the container was killed by signal N.

Examples:
  spawn -D /srv/debian
  spawn -D /srv/busybox -u alice --private-network -- sh -c 'id; ip link'
  spawn --print -D /srv/busybox -- make -C /src`

// Stage is the front door.
var Stage = &chain.Stage{
	Name:        "spawn",
	Usage:       "run a command in a minimal namespace container (systemd-nspawn's command line)",
	Description: description,
	Action:      run,
}

func init() {
	// Only flag definitions are gathered here; nothing runs.
	Stage.Flags = append([]cli.Flag{
		&cli.BoolFlag{Name: "print", Usage: "print the chain as one shell-quoted line instead of running it"},
	}, stageFlags()...)
}

// stageFlags is every visible option of every stage, once.
func stageFlags() []cli.Flag {
	var flags []cli.Flag
	seen := map[string]bool{}
	for _, s := range Chain {
		for _, f := range s.Flags {
			if hidden(f) || seen[f.Names()[0]] {
				continue
			}
			seen[f.Names()[0]] = true
			flags = append(flags, f)
		}
	}
	return flags
}

func hidden(f cli.Flag) bool {
	v, ok := f.(cli.VisibleFlag)
	return ok && !v.IsVisible()
}

// Compose is the chain's argv for these options and PROG ARGS; stage
// programs are named by path(name). A stage's action option (a job of its
// own, such as spawn-cgroup --cleanup) makes it that stage alone.
func Compose(c *cli.Context, prog []string, path func(string) (string, error)) ([]string, error) {
	for _, s := range Chain {
		for _, a := range s.Actions {
			if c.Bool(a) {
				return composeAlone(c, s, a, prog, path)
			}
		}
	}
	var argv []string
	for i, s := range Chain {
		words, err := invocation(c, s, path)
		if err != nil {
			return nil, err
		}
		argv = append(argv, words...)
		if i < len(Chain)-1 || len(prog) > 0 {
			argv = append(argv, "--")
		}
	}
	return append(argv, prog...), nil
}

// composeAlone is the argv that runs stage s alone for its action option:
// with its own options, no PROG and no other stage's options.
func composeAlone(c *cli.Context, s *chain.Stage, action string, prog []string, path func(string) (string, error)) ([]string, error) {
	if len(prog) > 0 {
		return nil, chain.Failf("--%s runs no program, but one was given: %q", action, prog[0])
	}
	own := map[string]bool{}
	for _, f := range s.Flags {
		own[f.Names()[0]] = true
	}
	for _, f := range stageFlags() {
		if n := f.Names()[0]; c.IsSet(n) && !own[n] {
			return nil, chain.Failf("--%s runs %s alone: option --%s does not apply to it", action, s.Name, n)
		}
	}
	return invocation(c, s, path)
}

// invocation is stage s with the options given for it.
func invocation(c *cli.Context, s *chain.Stage, path func(string) (string, error)) ([]string, error) {
	p, err := path(s.Name)
	if err != nil {
		return nil, err
	}
	argv := []string{p}
	for _, f := range s.Flags {
		if !hidden(f) {
			argv = append(argv, render(c, f)...)
		}
	}
	return argv, nil
}

// render spells a set option for the stage: "-D DIR" where it has a
// one-letter name, else "--name=VALUE".
func render(c *cli.Context, f cli.Flag) []string {
	name := f.Names()[0]
	if !c.IsSet(name) {
		return nil
	}
	spell := func(v string) []string {
		for _, n := range f.Names() {
			if len(n) == 1 {
				return []string{"-" + n, v}
			}
		}
		return []string{"--" + name + "=" + v}
	}
	switch f.(type) {
	case *cli.BoolFlag:
		if !c.Bool(name) {
			return nil
		}
		for _, n := range f.Names() {
			if len(n) == 1 {
				return []string{"-" + n}
			}
		}
		return []string{"--" + name}
	case *cli.StringSliceFlag:
		var out []string
		for _, v := range c.StringSlice(name) {
			out = append(out, spell(v)...)
		}
		return out
	default:
		return spell(fmt.Sprint(c.Value(name)))
	}
}

func run(c *cli.Context, prog []string) error {
	argv, err := Compose(c, prog, chain.FindStage)
	if err != nil {
		return err
	}
	if c.Bool("print") {
		fmt.Fprintln(c.App.Writer, quote(argv))
		return nil
	}
	return chain.ExecPath(argv[0], argv, os.Environ())
}

// quote joins argv into one line that sh splits back into argv. It is
// shellquote.Join except for a word starting with '#', which go-shellquote
// leaves bare and sh would read as the start of a comment.
func quote(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = shellquote.Join(a)
		if strings.HasPrefix(words[i], "#") {
			words[i] = `\` + words[i]
		}
	}
	return strings.Join(words, " ")
}
