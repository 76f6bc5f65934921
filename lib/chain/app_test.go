package chain

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestUsageMessage(t *testing.T) {
	for _, tc := range []struct {
		err  string
		want string
	}{
		{"flag provided but not defined: -bogus", "unknown option --bogus"},
		{"flag provided but not defined: -x", "unknown option -x"},
		{"flag needs an argument: -D", "option -D needs a value"},
		{"flag needs an argument: -hostname", "option --hostname needs a value"},
		{"flag needs an argument: --hostname", "option --hostname needs a value"},
		{"bad flag syntax: ---x", "bad flag syntax: ---x"},
	} {
		if got := usageMessage(errors.New(tc.err)); got != tc.want {
			t.Errorf("usageMessage(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// seen is what the test stage's Action was given.
type seen struct {
	dir, hostname string
	quiet         bool
	caps          []string
	prog          []string
}

func testStage(got *seen) *Stage {
	return &Stage{
		Name:  "spawn-test",
		Usage: "a stage for tests",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "directory", Aliases: []string{"D"}},
			&cli.StringFlag{Name: "hostname"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}},
			&cli.StringSliceFlag{Name: "capability"},
		},
		Action: func(c *cli.Context, prog []string) error {
			*got = seen{
				dir:      c.String("directory"),
				hostname: c.String("hostname"),
				quiet:    c.Bool("quiet"),
				caps:     c.StringSlice("capability"),
				prog:     prog,
			}
			return nil
		},
	}
}

func TestRunArgv(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want seen
	}{
		{[]string{"prog"}, seen{prog: []string{"prog"}}},
		{[]string{"--", "prog", "a"}, seen{prog: []string{"prog", "a"}}},
		{[]string{"--", "--", "a"}, seen{prog: []string{"--", "a"}}},
		{[]string{"--", "-q", "a"}, seen{prog: []string{"-q", "a"}}},
		// Options stop at the first non-option: the rest is PROG's.
		{[]string{"echo", "-q", "-D", "x"}, seen{prog: []string{"echo", "-q", "-D", "x"}}},
		{[]string{"-q", "echo", "--", "-x"}, seen{quiet: true, prog: []string{"echo", "--", "-x"}}},
		{[]string{"-", "a"}, seen{prog: []string{"-", "a"}}},
		// help and h are programs, not commands.
		{[]string{"help"}, seen{prog: []string{"help"}}},
		{[]string{"h", "x"}, seen{prog: []string{"h", "x"}}},
		{[]string{"--", "help"}, seen{prog: []string{"help"}}},
		{[]string{"version"}, seen{prog: []string{"version"}}},
		{[]string{"quiet"}, seen{prog: []string{"quiet"}}},
		// Values, getopt style.
		{[]string{"-D", "/t", "p"}, seen{dir: "/t", prog: []string{"p"}}},
		{[]string{"-D/t", "p"}, seen{dir: "/t", prog: []string{"p"}}},
		{[]string{"-D=/t", "p"}, seen{dir: "/t", prog: []string{"p"}}},
		{[]string{"--directory", "/t", "p"}, seen{dir: "/t", prog: []string{"p"}}},
		{[]string{"--directory=/t", "p"}, seen{dir: "/t", prog: []string{"p"}}},
		{[]string{"-D", "-q", "p"}, seen{dir: "-q", prog: []string{"p"}}},
		{[]string{"-D", "--", "p"}, seen{dir: "--", prog: []string{"p"}}},
		{[]string{"--hostname", "-x", "p"}, seen{hostname: "-x", prog: []string{"p"}}},
		{[]string{"--hostname=", "p"}, seen{prog: []string{"p"}}},
		{[]string{"-hostname", "h", "p"}, seen{hostname: "h", prog: []string{"p"}}},
		// Bundled short options.
		{[]string{"-qD", "/t", "p"}, seen{quiet: true, dir: "/t", prog: []string{"p"}}},
		{[]string{"-qD/t", "p"}, seen{quiet: true, dir: "/t", prog: []string{"p"}}},
		{[]string{"-Dq", "p"}, seen{dir: "q", prog: []string{"p"}}},
		{[]string{"-qq", "p"}, seen{quiet: true, prog: []string{"p"}}},
		{[]string{"--quiet", "--capability", "a", "--capability=b,c", "p"},
			seen{quiet: true, caps: []string{"a", "b,c"}, prog: []string{"p"}}},
	} {
		var got seen
		var stdout, stderr bytes.Buffer
		argv := append([]string{"spawn-test"}, tc.args...)
		code := testStage(&got).Run(argv, &stdout, &stderr)
		if code != 0 || stderr.Len() > 0 {
			t.Errorf("Run(%q) = %d, stderr %q; want 0", tc.args, code, stderr.String())
			continue
		}
		if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", tc.want); g != w {
			t.Errorf("Run(%q) gave the stage %s, want %s", tc.args, g, w)
		}
	}
}

func TestRunUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // the one stderr line
	}{
		{[]string{"--bogus", "p"}, "spawn-test: unknown option --bogus"},
		{[]string{"-x", "p"}, "spawn-test: unknown option -x"},
		{[]string{"-qZ", "p"}, "spawn-test: unknown option -Z"},
		{[]string{"-Zq", "p"}, "spawn-test: unknown option -Z"},
		{[]string{"-D"}, "spawn-test: option -D needs a value"},
		{[]string{"-q", "-D"}, "spawn-test: option -D needs a value"},
		{[]string{"-qD"}, "spawn-test: option -D needs a value"},
		{[]string{"--directory"}, "spawn-test: option --directory needs a value"},
		{[]string{"--hostname"}, "spawn-test: option --hostname needs a value"},
		{[]string{"--quiet=maybe", "p"}, "spawn-test: "},
	} {
		var got seen
		var stdout, stderr bytes.Buffer
		argv := append([]string{"spawn-test"}, tc.args...)
		code := testStage(&got).Run(argv, &stdout, &stderr)
		if code != ExitFailure {
			t.Errorf("Run(%q) = %d, want %d", tc.args, code, ExitFailure)
		}
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) {
			t.Errorf("Run(%q) stderr = %q, want one line starting %q", tc.args, stderr.String(), tc.want)
		}
		if stdout.Len() > 0 {
			t.Errorf("Run(%q) stdout = %q, want nothing", tc.args, stdout.String())
		}
		if got.prog != nil {
			t.Errorf("Run(%q) ran the action with %q", tc.args, got.prog)
		}
	}
}

func TestRunHelpAndVersion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in stdout
	}{
		{[]string{"--help"}, "spawn-test - a stage for tests"},
		{[]string{"-h"}, "spawn-test - a stage for tests"},
		{[]string{"-h", "extra"}, "spawn-test - a stage for tests"},
		{[]string{"-qh"}, "spawn-test - a stage for tests"},
		{[]string{"--help", "--", "x"}, "spawn-test - a stage for tests"},
		{[]string{"--version"}, "spawn-test version " + Version},
		{[]string{"--version", "x"}, "spawn-test version " + Version},
	} {
		var got seen
		var stdout, stderr bytes.Buffer
		argv := append([]string{"spawn-test"}, tc.args...)
		code := testStage(&got).Run(argv, &stdout, &stderr)
		if code != 0 || stderr.Len() > 0 || !strings.Contains(stdout.String(), tc.want) {
			t.Errorf("Run(%q) = %d, stdout %q, stderr %q; want 0 and %q on stdout",
				tc.args, code, stdout.String(), stderr.String(), tc.want)
		}
		if got.prog != nil {
			t.Errorf("Run(%q) ran the action with %q", tc.args, got.prog)
		}
	}
}

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		err    error
		code   int
		stderr string
	}{
		{nil, 0, ""},
		{Status(7), 7, ""},
		{Status(0), 0, ""},
		{Failf("x: %w", errors.New("why")), 125, "st: x: why\n"},
		{&Error{Code: 127, Err: errors.New("exec p: not found")}, 127, "st: exec p: not found\n"},
		{fmt.Errorf("wrapped: %w", &Error{Code: 126, Err: errors.New("denied")}), 126, "st: wrapped: denied\n"},
		{errors.New("plain"), 125, "st: plain\n"},
		{flag.ErrHelp, 125, "st: flag: help requested\n"},
	} {
		var stderr bytes.Buffer
		if code := Report("st", tc.err, &stderr); code != tc.code || stderr.String() != tc.stderr {
			t.Errorf("Report(%v) = %d, %q; want %d, %q", tc.err, code, stderr.String(), tc.code, tc.stderr)
		}
	}
}
