package chain

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

var testFlags = []cli.Flag{
	&cli.StringSliceFlag{Name: "setenv", Aliases: []string{"E"}},
	&cli.StringFlag{Name: "user", Aliases: []string{"u"}},
	&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}},
	&cli.BoolFlag{Name: "ephemeral", Aliases: []string{"x"}},
	&OptionalFlag{StringFlag: cli.StringFlag{Name: "volatile"}, Bare: "yes"},
}

func TestCanonicalArgs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// One form each: untouched.
		{"s -E A=1 -u alice -- sh", "s -E A=1 -u alice -- sh"},
		{"s -E A=1 -E B=2 sh -E C", "s -E A=1 -E B=2 sh -E C"},
		// Mixed forms: that option by its first name, the others as written.
		{"s -E A=1 --setenv=B=2 -u alice -- sh", "s --setenv A=1 --setenv=B=2 -u alice -- sh"},
		{"s --setenv -E -E --setenv -- sh", "s --setenv -E --setenv --setenv -- sh"},
		{"s -qxE A=1 --setenv B -q prog -E x", "s -q -x --setenv A=1 --setenv B -q prog -E x"},
		{"s -q --quiet --volatile -E x --setenv y prog", "s --quiet --quiet --volatile --setenv x --setenv y prog"},
		{"s -x --ephemeral --bogus -E a", "s --ephemeral --ephemeral --bogus -E a"},
		// After PROG or "--", nothing is an option.
		{"s prog -E a --setenv b", "s prog -E a --setenv b"},
	} {
		got := strings.Join(canonicalArgs(testFlags, strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("canonicalArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestOptionalFlag(t *testing.T) {
	s := &Stage{Name: "s", Flags: testFlags}
	for _, tc := range []struct {
		args     string
		volatile string
		prog     string
	}{
		{"s --volatile prog", "yes", "prog"},
		{"s --volatile=state prog", "state", "prog"},
		{"s --volatile state", "yes", "state"},
		{"s prog", "", "prog"},
	} {
		var gotV, gotProg string
		s.Action = func(c *cli.Context, prog []string) error {
			gotV, gotProg = c.String("volatile"), strings.Join(prog, " ")
			return nil
		}
		var out, errs strings.Builder
		if code := s.Run(strings.Fields(tc.args), &out, &errs); code != 0 {
			t.Fatalf("run(%q) = %d: %s", tc.args, code, errs.String())
		}
		if gotV != tc.volatile || gotProg != tc.prog {
			t.Errorf("run(%q): volatile = %q, prog = %q; want %q, %q", tc.args, gotV, gotProg, tc.volatile, tc.prog)
		}
	}
}
