// Package chain holds what every stage of the chain shares: the argv
// convention (options, then PROG ARGS), the contract's exit codes and error
// format, and the exec of the next program.
package chain

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
)

// Version is stamped by the Makefile (-X spawn/lib/chain.Version=...).
var Version = "dev"

// Exit codes fixed by the contract.
const (
	ExitFailure    = 125 // the stage itself failed
	ExitCannotExec = 126 // PROG was found but could not be executed
	ExitNotFound   = 127 // PROG was not found
)

// Error is a failure with the exit code the stage must end with.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ExitCode lets urfave/cli and callers read the code.
func (e *Error) ExitCode() int { return e.Code }

// Failf is a set-up failure: exit 125.
func Failf(format string, args ...any) error {
	return &Error{Code: ExitFailure, Err: fmt.Errorf(format, args...)}
}

// Status is an error that only carries an exit status to pass on (the
// child's), with nothing to print.
type Status int

func (s Status) Error() string { return "" }
func (s Status) ExitCode() int { return int(s) }

// Stage describes one program of the chain.
type Stage struct {
	Name        string // e.g. "spawn-rootfs"
	Usage       string // one line
	Description string // the doc text shown by --help
	Flags       []cli.Flag
	// Actions names the boolean flags that make the stage do a job of its
	// own instead of running PROG (spawn-cgroup --cleanup): the front door
	// runs the stage alone for them, not the chain.
	Actions []string
	// Action runs the stage with its parsed options and PROG ARGS.
	Action func(c *cli.Context, prog []string) error
}

// App builds the urfave/cli app with the conventions every stage follows:
// options stop at the first non-option, a leading "--" is removed, usage
// errors are one line and exit 125, and os.Exit is left to main.
func (s *Stage) App(stdout, stderr io.Writer) *cli.App {
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version and exit"}
	// urfave/cli's own help flag treats the first argument after it as a
	// command to show help for ("spawn-ns -h sh" failed, exit 3): the
	// stages have no commands, so help is a plain flag handled in Action.
	cli.HelpFlag = nil
	return &cli.App{
		Name:            s.Name,
		Usage:           s.Usage,
		UsageText:       s.Name + " [OPTIONS] [--] PROG [ARGS...]",
		Description:     s.Description,
		Version:         Version,
		Flags:           append(s.Flags[:len(s.Flags):len(s.Flags)], helpFlag),
		HideHelpCommand: true,
		Writer:          stdout,
		ErrWriter:       stderr,
		// A usage error is a failed set-up step like any other: one line,
		// exit 125, no help dump.
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return s.usageError(usageMessage(err))
		},
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.Bool(helpFlag.Name) {
				return cli.ShowAppHelp(c)
			}
			return s.Action(c, c.Args().Slice())
		},

		// A value is one value: --setenv=A=x,y and --tmpfs=/t:mode=0700,size=1M
		// are not cut at commas (options that take lists split them).
		DisableSliceFlagSeparator: true,
	}
}

var helpFlag = &cli.BoolFlag{Name: "help", Aliases: []string{"h"}, Usage: "show help", DisableDefaultText: true}

// usageMessage rewords the flag package's errors as a user of getopt
// programs expects: "unknown option --bogus", "option -D needs a value".
func usageMessage(err error) string {
	msg := err.Error()
	for prefix, format := range map[string]string{
		"flag provided but not defined: ": "unknown option %s",
		"flag needs an argument: ":        "option %s needs a value",
	} {
		if name, ok := strings.CutPrefix(msg, prefix); ok {
			name = strings.TrimLeft(name, "-")
			if len(name) > 1 {
				name = "--" + name
			} else {
				name = "-" + name
			}
			return fmt.Sprintf(format, name)
		}
	}
	return msg
}

// Main runs the stage on argv (argv[0] included), prints a failure once as
// "STAGE: what failed: why" and returns the exit code for os.Exit.
func (s *Stage) Main(argv []string) int {
	return s.Run(argv, os.Stdout, os.Stderr)
}

// Run is Main with the stage's output going to stdout and stderr.
func (s *Stage) Run(argv []string, stdout, stderr io.Writer) int {
	if len(argv) == 0 {
		argv = []string{s.Name}
	}
	app := s.App(stdout, stderr)
	args, err := s.getopt(app.Flags, argv[1:])
	if err == nil {
		err = app.Run(canonicalArgs(s.Flags, append(argv[:1:1], args...)))
	}
	return Report(s.Name, err, stderr)
}

func (s *Stage) usageError(msg string) error {
	return &Error{Code: ExitFailure, Err: fmt.Errorf("%s (see %s --help)", msg, s.Name)}
}

// getopt rewrites the options at the head of args the way getopt(3) reads
// them, which the flag package does not: short options bundle ("-qD DIR"),
// and a short option's value may be attached ("-D/srv/tree"; "-Dq" is -D
// with the value "q", not -D -q). Long options, and the flag package's
// single-dash spelling of them ("-hostname"), pass through unchanged.
func (s *Stage) getopt(flags []cli.Flag, args []string) ([]string, error) {
	byName := map[string]cli.Flag{}
	for _, f := range flags {
		for _, n := range f.Names() {
			byName[n] = f
		}
	}
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" || len(arg) < 2 || arg[0] != '-' {
			return append(out, args[i:]...), nil
		}
		name, _, attached := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if f, ok := byName[name]; ok || strings.HasPrefix(arg, "--") {
			out = append(out, arg)
			if ok && !attached && takesValue(f) && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
			continue
		}
		for j, r := range arg[1:] {
			f, ok := byName[string(r)]
			if !ok {
				return nil, s.usageError(fmt.Sprintf("unknown option -%c", r))
			}
			out = append(out, "-"+string(r))
			if takesValue(f) {
				if rest := arg[1+j+utf8.RuneLen(r):]; rest != "" {
					out = append(out, rest)
				} else if i+1 < len(args) {
					i++
					out = append(out, args[i])
				}
				break
			}
		}
	}
	return out, nil
}

// Report prints err the contract's way and returns the exit code it means.
func Report(stage string, err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	code := ExitFailure
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "%s: %s\n", stage, msg)
	}
	return code
}
