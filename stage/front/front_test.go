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
// PATH; spawn-relay prints its argv (argv[0] included) NUL-separated, so
// that running a printed chain with sh shows the words sh made of it.
func fakeStages(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, s := range Chain {
		script := "#!/bin/sh\nexit 99\n"
		if s == Chain[0] {
			script = "#!/bin/sh\nfor a in \"$0\" \"$@\"; do printf '%s\\0' \"$a\"; done\n"
		}
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
	relay, cgroup, ns, rootfs, caps := dir+"/spawn-relay", dir+"/spawn-cgroup", dir+"/spawn-ns", dir+"/spawn-rootfs", dir+"/spawn-caps"
	chainOf := func(words ...string) []string {
		return append([]string{relay, "--", cgroup, "--", ns, "--", rootfs}, words...)
	}
	awkward := []string{"a b", "", "it's", `"q"`, "$HOME", "`id`", "$(id)", `back\slash`,
		"*", "?", "[a]", "{a,b}", "~", "~root", "#not-a-comment", "a#b", "x;y", "a&&b", "a|b",
		"<in", ">out", "!", "new\nline", "tab\there", "üñí", "-", "--", "-x", "a=b", "%"}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		// No PROG: spawn-caps runs the login shell.
		{nil, chainOf("--", caps)},
		{[]string{"--"}, chainOf("--", caps)},
		{[]string{"sh"}, chainOf("--", caps, "--", "sh")},
		{[]string{"--", "sh", "-c", "exit 7"}, chainOf("--", caps, "--", "sh", "-c", "exit 7")},
		// Each option goes to the stage that owns it.
		{[]string{"-D", "/srv/t", "-u", "alice", "--private-network", "--", "id"},
			[]string{relay, "--", cgroup, "--", ns, "--private-network", "--", rootfs, "-D", "/srv/t", "--", caps, "-u", "alice", "--", "id"}},
		{[]string{"--name", "c1", "--kill-signal", "TERM", "--hostname", "h1", "-q",
			"--capability", "sys_time", "--capability=net_admin,mknod", "--drop-capability", "all", "id"},
			[]string{relay, "--", cgroup, "--name=c1", "--", ns, "--kill-signal=TERM", "--", rootfs, "--hostname=h1", "-q", "--",
				caps, "--capability=sys_time", "--capability=net_admin", "--capability=mknod", "--drop-capability=all", "--", "id"}},
		{[]string{"--directory=/srv/t", "--user=1000", "--quiet", "id"},
			chainOf("-D", "/srv/t", "-q", "--", caps, "-u", "1000", "--", "id")},
		// getopt spellings.
		{[]string{"-qD/srv/t", "-ualice", "id"}, chainOf("-D", "/srv/t", "-q", "--", caps, "-u", "alice", "--", "id")},
		{[]string{"-qD", "/srv/t", "id"}, chainOf("-D", "/srv/t", "-q", "--", caps, "--", "id")},
		// A false boolean is not passed on.
		{[]string{"--private-network=false", "--quiet=false", "id"}, chainOf("--", caps, "--", "id")},
		// Options stop at PROG; "--" is PROG's own after that.
		{[]string{"ls", "-D", "/x", "--", "-q"}, chainOf("--", caps, "--", "ls", "-D", "/x", "--", "-q")},
		{[]string{"--", "-D", "/x"}, chainOf("--", caps, "--", "-D", "/x")},
		{[]string{"--", "--", "x"}, chainOf("--", caps, "--", "--", "x")},
		{[]string{"--", "--print"}, chainOf("--", caps, "--", "--print")},
		// help and h are programs.
		{[]string{"help"}, chainOf("--", caps, "--", "help")},
		{[]string{"h", "x"}, chainOf("--", caps, "--", "h", "x")},
		// Values and PROG ARGS survive sh whatever they hold.
		{append([]string{"-D", "/srv/my tree's", "--hostname", "a b", "--", "echo"}, awkward...),
			append(chainOf("-D", "/srv/my tree's", "--hostname=a b", "--", caps, "--", "echo"), awkward...)},
		{[]string{"-u", "#1", "--hostname", "#h", "x"}, chainOf("--hostname=#h", "--", caps, "-u", "#1", "--", "x")},
		{[]string{"-D", "-q", "x"}, chainOf("-D", "-q", "--", caps, "--", "x")},
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
// printed chain: the owner must see the value it would see if given the
// option directly, and the chain must stay valid for every other stage.
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
				want := parsed(t, owner, name, append(append([]string{owner.Name}, args...), "PROG"))
				argv := printed(t, append(args, "PROG")...)
				for i, s := range Chain {
					seg := segment(t, argv, dir, i)
					if !slices.Contains(s.Flags, f) {
						if got := parsed(t, s, "", seg); got != "" {
							t.Errorf("%s got %q", s.Name, got)
						}
						continue
					}
					if got := parsed(t, s, name, seg); got != want {
						t.Errorf("%s %s through the front door = %s, want %s (chain %q)", s.Name, name, got, want, argv)
					}
				}
			})
		}
	}
}

// optionArgs sets flag f on a command line, with an awkward value.
func optionArgs(t *testing.T, f cli.Flag) []string {
	long := "--" + f.Names()[0]
	switch f.(type) {
	case *cli.BoolFlag:
		return []string{long}
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
