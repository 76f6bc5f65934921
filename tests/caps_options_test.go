package tests

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSetenv(t *testing.T) {
	tree := newTree(t, "setenv")
	r := spawnWith(t, []string{"FROM_CALLER=caller's value", "HIDDEN=not passed"}, "", tree,
		"-E", "A=1", "--setenv=LIST=a,b,c", "-E", "FROM_CALLER", "-E", "UNSET_IN_CALLER",
		"-E", "HOME=/elsewhere", "-E", "A=2", "-E", "EMPTY=",
		"--", "sh", "-c", "env | sort")
	out := wantOK(t, r)
	for _, want := range []string{"A=2", "LIST=a,b,c", "FROM_CALLER=caller's value", "HOME=/elsewhere", "EMPTY=", "container=spawn"} {
		if !strings.Contains("\n"+out, "\n"+want+"\n") {
			t.Errorf("payload environment lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"A=1", "HIDDEN=", "UNSET_IN_CALLER", "HOME=/root"} {
		if strings.Contains("\n"+out, "\n"+unwanted) {
			t.Errorf("payload environment has %q:\n%s", unwanted, out)
		}
	}
}

func TestSetenvPathFindsProg(t *testing.T) {
	tree := newTree(t, "setenvpath")
	writeHostFile(t, tree+"/opt/tools/hello-tool", "#!/bin/sh\necho found in $PATH\n")
	if err := chmodX(tree + "/opt/tools/hello-tool"); err != nil {
		t.Fatal(err)
	}
	out := wantOK(t, spawn(t, tree, "-E", "PATH=/opt/tools:/bin", "--", "hello-tool"))
	if out != "found in /opt/tools:/bin\n" {
		t.Errorf("PROG looked up in -E PATH: %q", out)
	}
}

func TestSetenvBadInput(t *testing.T) {
	tree := newTree(t, "setenvbad")
	for _, w := range []string{"1A=x", "=x", "A-B=x", "A B"} {
		t.Run(w, func(t *testing.T) {
			before := snapshot(t)
			wantFailure(t, spawn(t, tree, "--setenv="+w, "--", "true"), "spawn-caps", "--setenv="+w+": invalid variable name")
			checkHost(t, before)
		})
	}
}

func TestChdir(t *testing.T) {
	tree := newTree(t, "chdir")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--chdir=/etc"}, "/etc"},
		{[]string{"--chdir=/tmp", "-u", "alice"}, "/tmp"},
		{[]string{"-u", "alice"}, "/home/alice"},
		{nil, "/"},
	} {
		out := wantOK(t, spawn(t, tree, append(tc.args, "--", "pwd")...))
		if strings.TrimSpace(out) != tc.want {
			t.Errorf("pwd with %v = %q, want %q", tc.args, out, tc.want)
		}
	}
}

func TestChdirBadInput(t *testing.T) {
	tree := newTree(t, "chdirbad")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"relative", []string{"--chdir=etc"}, "--chdir=etc: not an absolute path"},
		{"missing", []string{"--chdir=/nonexistent"}, "--chdir=/nonexistent: no such file or directory"},
		{"not the user's", []string{"--chdir=/root", "-u", "alice"}, "--chdir=/root: permission denied"},
		{"a file", []string{"--chdir=/etc/passwd"}, "--chdir=/etc/passwd: not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t)
			wantFailure(t, spawn(t, tree, append(tc.args, "--", "true")...), "spawn-caps", tc.want)
			checkHost(t, before)
		})
	}
}

func TestUmask(t *testing.T) {
	tree := newTree(t, "umask")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "0022 644"},
		{[]string{"--umask=0077"}, "0077 600"},
		{[]string{"--umask=2"}, "0002 664"},
	} {
		// Whatever the caller's umask, the payload's is the option's.
		cmd := command(t, append([]string{"/bin/sh", "-c", `umask 0; exec "$@"`, "sh", bin("spawn"), "-q", "-D", tree},
			append(tc.args, "--", "sh", "-c", "umask; rm -f /tmp/f; touch /tmp/f; stat -c %a /tmp/f")...)...)
		out := wantOK(t, wait(t, cmd))
		if got := strings.Join(strings.Fields(out), " "); got != tc.want {
			t.Errorf("umask and new file mode with %v = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestUmaskBadInput(t *testing.T) {
	tree := newTree(t, "umaskbad")
	for _, v := range []string{"999", "abc", "01000", ""} {
		t.Run(v, func(t *testing.T) {
			before := snapshot(t)
			wantFailure(t, spawn(t, tree, "--umask="+v, "--", "true"), "spawn-caps", "--umask="+v+": not an octal mask")
			checkHost(t, before)
		})
	}
}

func TestRlimit(t *testing.T) {
	tree := newTree(t, "rlimit")
	var nproc syscall.Rlimit
	if err := syscall.Getrlimit(unix.RLIMIT_NPROC, &nproc); err != nil {
		t.Fatal(err)
	}
	var core syscall.Rlimit
	if err := syscall.Getrlimit(unix.RLIMIT_CORE, &core); err != nil {
		t.Fatal(err)
	}
	callers := fmt.Sprintf("processes=%s:%s", limitWord(nproc.Cur), limitWord(nproc.Max))
	coreHard := limitWord(core.Max)
	coreOpt := strings.Replace(coreHard, "unlimited", "infinity", 1)
	for _, tc := range []struct {
		args []string
		want string
	}{
		// No option: the caller's limits, soft ones included (the Go
		// stages raise their own soft RLIMIT_NOFILE; the payload must not
		// inherit that).
		{nil, "open files=1000:4096 core file size=0:" + coreHard + " " + callers},
		{[]string{"--rlimit=RLIMIT_NOFILE=512:1024", "--rlimit=core=100:" + coreOpt}, "open files=512:1024 core file size=100:" + coreHard + " " + callers},
		{[]string{"--rlimit=nofile=2048", "--rlimit=Nproc=300:400", "--rlimit=core=0:1000"}, "open files=2048:2048 core file size=0:1000 processes=300:400"},
	} {
		// The caller's limits are set here so that the default case shows
		// something; a hard limit is only raised with CAP_SYS_RESOURCE,
		// which not every test machine grants even to root.
		cmd := command(t, append([]string{"/bin/sh", "-c", `ulimit -Sn 1000 && ulimit -Hn 4096 && ulimit -Sc 0 && exec "$@"`, "sh", bin("spawn"), "-q", "-D", tree},
			append(tc.args, "--", "cat", "/proc/self/limits")...)...)
		if got := limits(wantOK(t, wait(t, cmd)), "open files", "core file size", "processes"); got != tc.want {
			t.Errorf("limits with %v = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// limits picks soft and hard values out of a /proc/PID/limits listing.
func limits(listing string, names ...string) string {
	var out []string
	for _, name := range names {
		for _, line := range strings.Split(listing, "\n") {
			if rest, ok := strings.CutPrefix(line, "Max "+name); ok {
				f := strings.Fields(rest)
				if len(f) >= 2 {
					out = append(out, name+"="+f[0]+":"+f[1])
				}
			}
		}
	}
	return strings.Join(out, " ")
}

func limitWord(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return fmt.Sprint(v)
}

func TestRlimitBadInput(t *testing.T) {
	tree := newTree(t, "rlimitbad")
	for _, tc := range []struct{ opt, want string }{
		{"--rlimit=RLIMIT_BOGUS=1", `unknown limit "RLIMIT_BOGUS"`},
		{"--rlimit=nofile", `unknown limit "nofile"`},
		{"--rlimit=nofile=10:5", "soft limit above the hard one"},
		{"--rlimit=nofile=lots", `"lots" is not a number or infinity`},
		{"--rlimit=core=1:2:3", `"2:3" is not a number`},
	} {
		t.Run(tc.opt, func(t *testing.T) {
			before := snapshot(t)
			wantFailure(t, spawn(t, tree, tc.opt, "--", "true"), "spawn-caps", tc.opt+":", tc.want)
			checkHost(t, before)
		})
	}
}
