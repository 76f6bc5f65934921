package front

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"spawn/lib/chain"
)

// fakeStages puts stand-ins for the stages in a directory that becomes
// PATH; each prints its argv (argv[0] included) NUL-separated, so that
// running a printed chain with sh shows the words sh made of it.
func fakeStages(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, s := range Chain {
		script := "#!/bin/sh\nfor a in \"$0\" \"$@\"; do printf '%s\\0' \"$a\"; done\n"
		if err := os.WriteFile(filepath.Join(dir, s.Name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	return dir
}

// printed runs `spawn --print ARGS` and returns the chain that line makes
// when pasted into sh.
func printed(t *testing.T, args ...string) []string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	argv := append([]string{"spawn", "--print"}, args...)
	if code := Stage.Run(argv, &stdout, &stderr); code != 0 || stderr.Len() > 0 {
		t.Fatalf("spawn --print %q = %d, stderr %q", args, code, stderr.String())
	}
	line := stdout.String()
	// One line, but for newlines inside arguments, which sh can only take
	// quoted as they are.
	if want := 1 + strings.Count(strings.Join(args, ""), "\n"); strings.Count(line, "\n") != want || !strings.HasSuffix(line, "\n") {
		t.Fatalf("spawn --print %q printed %q, want one line", args, line)
	}
	out, err := exec.Command("/bin/sh", "-c", line).Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v", line, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}

func TestPrint(t *testing.T) {
	dir := fakeStages(t)
	// chainOf is the chain with these options for spawn-relay,
	// spawn-cgroup, spawn-ns, spawn-rootfs and spawn-caps, and PROG ARGS.
	chainOf := func(relay, cgroup, ns, rootfs, caps []string, prog ...string) []string {
		var argv []string
		for i, opts := range [][]string{relay, cgroup, ns, rootfs, caps} {
			argv = append(append(append(argv, dir+"/"+Chain[i].Name), opts...), "--")
		}
		if len(prog) == 0 {
			return argv[:len(argv)-1]
		}
		return append(argv, prog...)
	}
	var none []string
	o := func(opts ...string) []string { return opts }
	awkward := []string{"a b", "", "it's", `"q"`, "$HOME", "`id`", "$(id)", `back\slash`,
		"*", "?", "[a]", "{a,b}", "~", "~root", "#not-a-comment", "a#b", "x;y", "a&&b", "a|b",
		"<in", ">out", "!", "new\nline", "tab\there", "üñí", "-", "--", "-x", "a=b", "%"}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		// No PROG: spawn-caps runs the login shell.
		{nil, chainOf(none, none, none, none, none)},
		{o("--"), chainOf(none, none, none, none, none)},
		{o("sh"), chainOf(none, none, none, none, none, "sh")},
		{o("--", "sh", "-c", "exit 7"), chainOf(none, none, none, none, none, "sh", "-c", "exit 7")},
		// Each option goes to the stages that take it.
		{o("-D", "/srv/t", "-u", "alice", "--private-network", "--", "id"),
			chainOf(none, none, o("--private-network", "-D", "/srv/t"), o("-D", "/srv/t"), o("-u", "alice"), "id")},
		{o("--name", "c1", "--kill-signal", "TERM", "--hostname", "h1", "-q",
			"--capability", "sys_time", "--capability=net_admin,mknod", "--drop-capability", "all", "id"),
			chainOf(o("-q"), o("--name=c1", "-q"), o("--kill-signal=TERM"), o("--hostname=h1", "-q"),
				o("--capability=sys_time", "--capability=net_admin,mknod", "--drop-capability=all"), "id")},
		{o("--directory=/srv/t", "--user=1000", "--quiet", "id"),
			chainOf(o("-q"), o("-q"), o("-D", "/srv/t"), o("-D", "/srv/t", "-q"), o("-u", "1000"), "id")},
		// getopt spellings.
		{o("-qD/srv/t", "-ualice", "id"), chainOf(o("-q"), o("-q"), o("-D", "/srv/t"), o("-D", "/srv/t", "-q"), o("-u", "alice"), "id")},
		{o("-qD", "/srv/t", "id"), chainOf(o("-q"), o("-q"), o("-D", "/srv/t"), o("-D", "/srv/t", "-q"), none, "id")},
		{o("-D", "-q", "x"), chainOf(none, none, o("-D", "-q"), o("-D", "-q"), none, "x")},
		// A false boolean is not passed on.
		{o("--private-network=false", "--quiet=false", "id"), chainOf(none, none, none, none, none, "id")},
		// Options stop at PROG; "--" is PROG's own after that.
		{o("ls", "-D", "/x", "--", "-q"), chainOf(none, none, none, none, none, "ls", "-D", "/x", "--", "-q")},
		{o("--", "-D", "/x"), chainOf(none, none, none, none, none, "-D", "/x")},
		{o("--", "--", "x"), chainOf(none, none, none, none, none, "--", "x")},
		{o("--", "--print"), chainOf(none, none, none, none, none, "--print")},
		// help and h are programs.
		{o("help"), chainOf(none, none, none, none, none, "help")},
		{o("h", "x"), chainOf(none, none, none, none, none, "h", "x")},
		// Values and PROG ARGS survive sh whatever they hold.
		{append(o("-D", "/srv/my tree's", "--hostname", "a b", "--", "echo"), awkward...),
			chainOf(none, none, o("-D", "/srv/my tree's"), o("-D", "/srv/my tree's", "--hostname=a b"), none, append(o("echo"), awkward...)...)},
		{o("-u", "#1", "--hostname", "#h", "x"), chainOf(none, none, none, o("--hostname=#h"), o("-u", "#1"), "x")},
	} {
		if got := printed(t, tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("spawn --print %q ran\n%q\nwant\n%q", tc.args, got, tc.want)
		}
	}
}

func TestPrintErrors(t *testing.T) {
	fakeStages(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "spawn: unknown option --bogus"},
		{[]string{"-Z"}, "spawn: unknown option -Z"},
		{[]string{"-D"}, "spawn: option -D needs a value"},
		{[]string{"-u"}, "spawn: option -u needs a value"},
		{[]string{"--hostname"}, "spawn: option --hostname needs a value"},
		// A stage's hidden options are its own business.
		{[]string{"--pid1", "x"}, "spawn: unknown option --pid1"},
	} {
		var stdout, stderr bytes.Buffer
		code := Stage.Run(append([]string{"spawn", "--print"}, tc.args...), &stdout, &stderr)
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		if code != chain.ExitFailure || len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) || stdout.Len() > 0 {
			t.Errorf("spawn --print %q = %d, stdout %q, stderr %q; want 125, nothing, one line %q",
				tc.args, code, stdout.String(), stderr.String(), tc.want)
		}
	}
}

func TestPrintStageNotFound(t *testing.T) {
	dir := fakeStages(t)
	if err := os.Remove(filepath.Join(dir, "spawn-ns")); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := Stage.Run([]string{"spawn", "--print", "x"}, &stdout, &stderr)
	if code != chain.ExitNotFound || !strings.Contains(stderr.String(), "spawn-ns") || stdout.Len() > 0 {
		t.Errorf("spawn --print without spawn-ns = %d, stdout %q, stderr %q; want 127 naming spawn-ns",
			code, stdout.String(), stderr.String())
	}
}

// TestEveryStageOptionRoundTrips sets each visible option of each stage
// through the front door, and has each stage parse its own part of the
// printed chain: every stage that takes the option must see the value it
// would see if given the option directly, and the chain must stay valid
// for the others.
func TestEveryStageOptionRoundTrips(t *testing.T) {
	dir := fakeStages(t)
	for _, owner := range Chain {
		for _, f := range owner.Flags {
			if hidden(f) {
				continue
			}
			name := f.Names()[0]
			args := optionArgs(t, f)
			t.Run(owner.Name+"/"+name, func(t *testing.T) {
				if slices.Contains(owner.Actions, name) {
					// An action runs its stage alone, without PROG.
					argv := printed(t, args...)
					want := parsed(t, owner, name, append([]string{owner.Name}, args...))
					if got := parsed(t, owner, name, append([]string{owner.Name}, argv[1:]...)); argv[0] != filepath.Join(dir, owner.Name) || got != want {
						t.Errorf("spawn --print %q = %q, %s = %s; want %s alone with %s", args, argv, name, got, owner.Name, want)
					}
					return
				}
				argv := printed(t, append(args, "PROG")...)
				for i, s := range Chain {
					seg := segment(t, argv, dir, i)
					if !takes(s, name) {
						parsed(t, s, "", seg)
						continue
					}
					want := parsed(t, s, name, append(append([]string{s.Name}, args...), "PROG"))
					if got := parsed(t, s, name, seg); got != want {
						t.Errorf("%s %s through the front door = %s, want %s (chain %q)", s.Name, name, got, want, argv)
					}
				}
			})
		}
	}
}

// takes reports whether stage s has a visible option called name.
func takes(s *chain.Stage, name string) bool {
	for _, f := range s.Flags {
		if !hidden(f) && f.Names()[0] == name {
			return true
		}
	}
	return false
}

// optionArgs sets flag f on a command line, with an awkward value.
func optionArgs(t *testing.T, f cli.Flag) []string {
	long := "--" + f.Names()[0]
	switch f.(type) {
	case *cli.BoolFlag:
		return []string{long}
	case *chain.OptionalFlag:
		return []string{long + "=v '$x' #y"}
	case *cli.StringFlag, *cli.PathFlag:
		return []string{long, "v '$x' #y"}
	case *cli.StringSliceFlag:
		return []string{long, "a b", long + "=c,d"}
	case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag:
		return []string{long, "42"}
	case *cli.DurationFlag:
		return []string{long, "1m30s"}
	case *cli.Float64Flag:
		return []string{long, "1.5"}
	}
	t.Fatalf("option %s: no test value for a %T", long, f)
	return nil
}

// segment is stage i's argv out of a composed chain: its name, its
// options, "--" and the next program (for the last stage: PROG ARGS).
func segment(t *testing.T, argv []string, dir string, i int) []string {
	t.Helper()
	start := slices.Index(argv, filepath.Join(dir, Chain[i].Name))
	if start < 0 {
		t.Fatalf("%s not in %q", Chain[i].Name, argv)
	}
	end := len(argv)
	if i+1 < len(Chain) {
		end = slices.Index(argv, filepath.Join(dir, Chain[i+1].Name)) + 1
	}
	return append([]string{Chain[i].Name}, argv[start+1:end]...)
}

// parsed runs stage s's own argv parsing on argv and returns the value of
// option name as its Action sees it ("" when name is ""), failing the test
// if s does not accept argv or does not reach its Action.
func parsed(t *testing.T, s *chain.Stage, name string, argv []string) string {
	t.Helper()
	var got string
	ran := false
	probe := *s
	probe.Action = func(c *cli.Context, prog []string) error {
		ran = true
		if name != "" {
			got = fmt.Sprint(c.Value(name))
		}
		return nil
	}
	var stdout, stderr bytes.Buffer
	if code := probe.Run(argv, &stdout, &stderr); code != 0 || !ran {
		t.Fatalf("%s %q = %d (ran %v), stderr %q", s.Name, argv[1:], code, ran, stderr.String())
	}
	return got
}

func TestChainStagesAreStages(t *testing.T) {
	for _, s := range Chain {
		if !chain.IsStage(s.Name) {
			t.Errorf("chain.IsStage(%q) = false: add it to chain.Stages, or spawn-rootfs looks for it inside the tree", s.Name)
		}
	}
	if len(chain.Stages) != len(Chain) {
		t.Errorf("chain.Stages = %q, want the %d stages of front.Chain", chain.Stages, len(Chain))
	}
}
