package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The CLI tests run every binary without root: nothing they do reaches a
// set-up step (the ones marked root do, and clean up).

var binaries = []string{"spawn", "spawn-relay", "spawn-cgroup", "spawn-ns", "spawn-rootfs", "spawn-caps"}

// oneError checks that r is a failure with code and exactly one stderr
// line "STAGE: ..." containing each of want, and nothing on stdout. An
// empty stage is any stage's.
func oneError(t *testing.T, r result, code int, stage string, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(r.Stderr, "\n"), "\n")
	prefix := regexp.MustCompile(`^spawn(-[a-z0-9]+)?: `)
	if stage != "" {
		prefix = regexp.MustCompile("^" + regexp.QuoteMeta(stage+": "))
	}
	if r.Code != code || len(lines) != 1 || !prefix.MatchString(lines[0]) {
		t.Errorf("exit %d, stderr %q; want %d and one line starting %q", r.Code, r.Stderr, code, prefix)
		return
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("stderr %q does not name %q", lines[0], w)
		}
	}
	if r.Stdout != "" {
		t.Errorf("stdout %q, want nothing", r.Stdout)
	}
}

func TestCLIHelpAndVersion(t *testing.T) {
	for _, b := range binaries {
		for _, args := range [][]string{{"--help"}, {"-h"}, {"-h", "sh"}, {"--help", "--", "help"}} {
			r := run(t, "", append([]string{b}, args...)...)
			if r.Code != 0 || r.Stderr != "" || !strings.Contains(r.Stdout, "USAGE:") || !strings.Contains(r.Stdout, b+" [OPTIONS]") {
				t.Errorf("%s %q = %d, stdout %q, stderr %q; want 0 and the usage on stdout", b, args, r.Code, r.Stdout, r.Stderr)
			}
		}
		r := run(t, "", b, "--version")
		if r.Code != 0 || r.Stderr != "" || !strings.HasPrefix(r.Stdout, b+" version ") || strings.Count(r.Stdout, "\n") != 1 {
			t.Errorf("%s --version = %d, stdout %q, stderr %q; want 0 and one line %q", b, r.Code, r.Stdout, r.Stderr, b+" version ...")
		}
	}
}

func TestCLIUsageErrors(t *testing.T) {
	type usage struct {
		args []string
		want []string // named in the error line
	}
	common := []usage{
		{[]string{"--bogus", "x"}, []string{"unknown option --bogus"}},
		{[]string{"--bogus=1", "x"}, []string{"unknown option --bogus"}},
		{[]string{"-Z", "x"}, []string{"unknown option -Z"}},
	}
	for _, tc := range []struct {
		bin    string
		errors []usage
	}{
		{"spawn", []usage{
			{[]string{"-D"}, []string{"option -D needs a value"}},
			{[]string{"--directory"}, []string{"option --directory needs a value"}},
			{[]string{"-u"}, []string{"option -u needs a value"}},
			{[]string{"-q", "-D"}, []string{"option -D needs a value"}},
			{[]string{"--hostname"}, []string{"option --hostname needs a value"}},
			{[]string{"--capability"}, []string{"option --capability needs a value"}},
			{[]string{"-qZ", "x"}, []string{"unknown option -Z"}},
			{[]string{"--pid1", "x"}, []string{"unknown option --pid1"}},
			{[]string{"--private-network=maybe", "x"}, []string{"maybe", "private-network"}},
		}},
		{"spawn-relay", []usage{
			{[]string{"--console"}, []string{"option --console needs a value"}},
			{[]string{"-q", "--console"}, []string{"option --console needs a value"}},
			{[]string{"-qZ", "x"}, []string{"unknown option -Z"}},
			{nil, []string{"no program given"}},
			{[]string{"--"}, []string{"no program given"}},
		}},
		{"spawn-cgroup", []usage{
			{[]string{"--name"}, []string{"option --name needs a value"}},
			{nil, []string{"no program given"}},
			{[]string{"--name", "a/b", "x"}, []string{`"a/b"`, "not a valid cgroup name"}},
			{[]string{"--name=..", "x"}, []string{`".."`}},
		}},
		{"spawn-ns", []usage{
			{[]string{"--kill-signal"}, []string{"option --kill-signal needs a value"}},
			{nil, []string{"no program given"}},
			{[]string{"--kill-signal", "SIGBOGUS", "x"}, []string{"--kill-signal", `"SIGBOGUS"`}},
			{[]string{"--pid1", "x"}, []string{"--pid1", "spawn-ns's own"}},
		}},
		{"spawn-rootfs", []usage{
			{[]string{"-D"}, []string{"option -D needs a value"}},
			{[]string{"-q", "-D"}, []string{"option -D needs a value"}},
			{[]string{"--hostname"}, []string{"option --hostname needs a value"}},
			{[]string{"-qZ", "x"}, []string{"unknown option -Z"}},
			{nil, []string{"no program given"}},
			{[]string{"-D", "/nonexistent-spawn-tree", "x"}, []string{"/nonexistent-spawn-tree", "no such file or directory"}},
			{[]string{"-D", "/", "x"}, []string{"/", "refusing"}},
			{[]string{"-D", "/proc/..", "x"}, []string{"refusing"}},
			{[]string{"-D", "/proc/self/root", "x"}, []string{"refusing"}},
			{[]string{"-D", "/etc/passwd", "x"}, []string{"/etc/passwd", "not a directory"}},
			{[]string{"-D", "/proc", "x"}, []string{"/proc", "not an OS tree", "bin/sh"}},
		}},
		{"spawn-caps", []usage{
			{[]string{"-u"}, []string{"option -u needs a value"}},
			{[]string{"--capability"}, []string{"option --capability needs a value"}},
			{[]string{"--drop-capability"}, []string{"option --drop-capability needs a value"}},
			{[]string{"--capability=sys_admin,bogus", "x"}, []string{"--capability", `unknown capability "bogus"`}},
			{[]string{"--drop-capability", "CAP_NOPE", "x"}, []string{"--drop-capability", `unknown capability "CAP_NOPE"`}},
		}},
	} {
		for _, u := range append(common, tc.errors...) {
			t.Run(tc.bin+" "+strings.Join(u.args, " "), func(t *testing.T) {
				oneError(t, run(t, "", append([]string{tc.bin}, u.args...)...), 125, tc.bin, u.want...)
			})
		}
	}
}

func TestCLIRelayRunsProg(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\necho ran\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		err    string // in the one stderr line, when code is 125-127
	}{
		// "--" is accepted and removed; options stop at PROG.
		{[]string{"--", "echo", "a"}, 0, "a\n", ""},
		{[]string{"echo", "-x"}, 0, "-x\n", ""},
		{[]string{"/bin/echo", "-h", "--help=x", "--", "--version"}, 0, "-h --help=x -- --version\n", ""},
		{[]string{"sh", "-c", "exit 7"}, 7, "", ""},
		{[]string{"sh", "-c", `printf "%s|" "$@"`, "sh", "", "a b", "--"}, 0, "|a b|--|", ""},
		// A program named help or h is run (here: looked up and not found).
		{[]string{"help"}, 127, "", "exec help"},
		{[]string{"h"}, 127, "", "exec h"},
		{[]string{"--", "help"}, 127, "", "exec help"},
		{[]string{"--", "--", "x"}, 127, "", "exec --"},
		{[]string{"nosuch-spawn-prog"}, 127, "", "nosuch-spawn-prog"},
		{[]string{"/nonexistent/prog"}, 127, "", "/nonexistent/prog"},
		{[]string{noexec}, 126, "", noexec},
		{[]string{dir}, 126, "", dir},
	} {
		// A PATH the test controls: execvp, and so spawn-relay, reports a
		// PATH directory it may not search (the caller's /root/go/bin when
		// run as nobody) as 126.
		cmd := command(t, append([]string{"spawn-relay"}, tc.args...)...)
		cmd.Env = append(cmd.Env, "PATH=/usr/bin:/bin")
		r := wait(t, cmd)
		if tc.err != "" {
			t.Run(strings.Join(tc.args, " "), func(t *testing.T) { oneError(t, r, tc.code, "spawn-relay", tc.err) })
			continue
		}
		if r.Code != tc.code || r.Stdout != tc.stdout || r.Stderr != "" {
			t.Errorf("spawn-relay %q = %d, stdout %q, stderr %q; want %d, %q", tc.args, r.Code, r.Stdout, r.Stderr, tc.code, tc.stdout)
		}
	}
}

// TestCLIRelayPipesByteExact: without a terminal, spawn-relay is out of
// the way: stdin and stdout pass through untouched.
func TestCLIRelayPipesByteExact(t *testing.T) {
	var in strings.Builder
	for i := 0; i < 1<<16; i++ {
		in.WriteByte(byte(i * 7))
	}
	in.WriteString("\r\n\x03\x04\x1a no newline at the end")
	r := run(t, in.String(), "spawn-relay", "--", "cat")
	if r.Code != 0 || r.Stdout != in.String() {
		t.Errorf("spawn-relay cat = %d, %d bytes out of %d, stderr %q", r.Code, len(r.Stdout), in.Len(), r.Stderr)
	}
}

// TestCLIRelayNotExecutableEarlierInPath: like execvp, a non-executable
// file earlier in PATH is passed over.
func TestCLIRelayNotExecutableEarlierInPath(t *testing.T) {
	early, late := t.TempDir(), t.TempDir()
	for dir, mode := range map[string]os.FileMode{early: 0o644, late: 0o755} {
		script := "#!/bin/sh\necho " + filepath.Base(dir) + "\n"
		if err := os.WriteFile(filepath.Join(dir, "prog"), []byte(script), mode); err != nil {
			t.Fatal(err)
		}
	}
	cmd := command(t, "spawn-relay", "prog")
	cmd.Env = append(cmd.Env, "PATH="+early+":"+late+":/usr/bin:/bin")
	if r := wait(t, cmd); r.Code != 0 || r.Stdout != filepath.Base(late)+"\n" {
		t.Errorf("spawn-relay prog = %d, stdout %q, stderr %q; want the executable one in %s", r.Code, r.Stdout, r.Stderr, late)
	}
	cmd = command(t, "spawn-relay", "prog")
	cmd.Env = append(cmd.Env, "PATH="+early)
	oneError(t, wait(t, cmd), 126, "spawn-relay", "prog")
}

// TestCLIExecCodes: PROG not found is 127 and not executable is 126 in
// every stage that runs PROG directly on the host (spawn-rootfs and
// spawn-caps are covered inside containers).
func TestCLIExecCodes(t *testing.T) {
	requireRoot(t)
	before := snapshot(t)
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"spawn-relay", "spawn-cgroup", "spawn-ns"} {
		for _, tc := range []struct {
			prog string
			code int
		}{
			{"nosuch-spawn-prog", 127},
			{"help", 127},
			{"h", 127},
			{noexec, 126},
			{dir, 126},
		} {
			t.Run(b+" "+tc.prog, func(t *testing.T) {
				oneError(t, run(t, "", b, "--", tc.prog), tc.code, b, tc.prog)
			})
		}
		r := run(t, "", b, "--", "sh", "-c", "exit 7")
		if r.Code != 7 {
			t.Errorf("%s sh -c 'exit 7' = %d, want 7; stderr %q", b, r.Code, r.Stderr)
		}
	}
	checkHost(t, before)
}

// TestCLIBundledShortOptions: short options bundle and take attached
// values, getopt style, where a stage has several.
func TestCLIBundledShortOptions(t *testing.T) {
	for _, args := range [][]string{
		{"-qD", "/nonexistent-spawn-tree", "x"},
		{"-qD/nonexistent-spawn-tree", "x"},
		{"-D/nonexistent-spawn-tree", "-q", "x"},
	} {
		oneError(t, run(t, "", append([]string{"spawn-rootfs"}, args...)...), 125, "spawn-rootfs", "/nonexistent-spawn-tree:")
	}
	r := run(t, "", "spawn", "--print", "-qD/srv/t", "-ualice", "--", "id")
	if want := "/spawn-rootfs -D /srv/t -q -- " + bin("spawn-caps") + " -u alice -- id\n"; r.Code != 0 || !strings.HasSuffix(r.Stdout, want) {
		t.Errorf("spawn --print -qD/srv/t -ualice id = %d, %q, stderr %q; want it to end %q", r.Code, r.Stdout, r.Stderr, want)
	}
}

// TestCLIFrontDoorFindsStagesBesideItself: the stages are taken from
// spawn's own directory before PATH.
func TestCLIFrontDoorFindsStagesBesideItself(t *testing.T) {
	cmd := command(t, "spawn", "--print", "x")
	cmd.Env = append(cmd.Env, "PATH=/nonexistent")
	r := wait(t, cmd)
	want := bin("spawn-relay") + " -- " + bin("spawn-cgroup") + " -- " + bin("spawn-ns") + " -- " +
		bin("spawn-rootfs") + " -- " + bin("spawn-caps") + " -- x\n"
	if r.Code != 0 || r.Stdout != want {
		t.Errorf("spawn --print x = %d, %q, stderr %q; want %q", r.Code, r.Stdout, r.Stderr, want)
	}
}
