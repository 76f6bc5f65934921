package tests

import (
	"bufio"
	"io"
	"strings"
	"syscall"
	"testing"
)

func TestAsPid2(t *testing.T) {
	tree := newTree(t, "pid2")
	before := snapshot(t)
	r := spawn(t, tree, "-a", "--", "sh", "-c", `echo "$$"; cat /proc/1/comm; exit 7`)
	if r.Code != 7 {
		t.Errorf("exit = %d, want PROG's 7; stderr: %q", r.Code, r.Stderr)
	}
	if r.Stdout != "2\nspawn-ns\n" {
		t.Errorf("PROG's PID and PID 1's name = %q, want 2 and spawn-ns", r.Stdout)
	}
	checkHost(t, before)
}

// Orphans are re-parented to PID 1: the init must reap them, or they stay
// zombies for the container's whole life.
func TestAsPid2ReapsOrphans(t *testing.T) {
	tree := newTree(t, "reap")
	before := snapshot(t)
	out := wantOK(t, spawn(t, tree, "-a", "--", "sh", "-c", `
		i=0; while [ $i -lt 20 ]; do (sh -c "touch /tmp/orphan.$i" &); i=$((i+1)); done
		n=0; while :; do
			done=$(ls /tmp/orphan.* 2>/dev/null | wc -l)
			zombies=$(cat /proc/[0-9]*/stat 2>/dev/null | awk '$3 == "Z"' | wc -l)
			if [ "$done" -eq 20 ] && [ "$zombies" -eq 0 ]; then echo "20 orphans ended, no zombies"; exit 0; fi
			n=$((n+1)); [ $n -gt 500 ] && { echo "$done orphans ended, $zombies zombies"; exit 1; }
			sleep 0.01
		done`))
	if out != "20 orphans ended, no zombies\n" {
		t.Errorf("inside: %q", out)
	}
	checkHost(t, before)
}

// Each of the six signals sent to PID 1 reaches PROG.
func TestAsPid2ForwardsSignals(t *testing.T) {
	tree := newTree(t, "sigs")
	out := wantOK(t, spawn(t, tree, "-a", "--", "sh", "-c", `
		for s in TERM INT HUP QUIT USR1 USR2; do
			got=; trap "got=$s" $s
			kill -$s 1
			n=0; while [ -z "$got" ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n+1)); done
			echo "$s:${got:-lost}"
		done`))
	if want := "TERM:TERM\nINT:INT\nHUP:HUP\nQUIT:QUIT\nUSR1:USR1\nUSR2:USR2\n"; out != want {
		t.Errorf("signals sent to PID 1 and caught by PROG = %q, want %q", out, want)
	}
}

// --kill-signal=SIGTERM with --as-pid2: a SIGTERM to the chain reaches
// PROG through the init, and PROG's status is the chain's.
func TestAsPid2KillSignalTerm(t *testing.T) {
	tree := newTree(t, "killsig")
	before := snapshot(t)
	cmd := command(t, "spawn", "-q", "-D", tree, "-a", "--kill-signal=SIGTERM", "--", "sh", "-c",
		`trap 'echo "caught TERM"; exit 42' TERM; echo ready; while :; do sleep 0.01; done`)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewReader(stdout)
	if l, err := lines.ReadString('\n'); l != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("first line = %q, %v; want ready", l, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	rest, _ := io.ReadAll(lines)
	err = cmd.Wait()
	code := 0
	if ee, ok := err.(interface{ ExitCode() int }); ok && err != nil {
		code = ee.ExitCode()
	}
	if code != 42 || string(rest) != "caught TERM\n" {
		t.Errorf("after SIGTERM: exit %d, output %q; want 42 and PROG's trap", code, rest)
	}
	checkHost(t, before)
}

// The init stays for the container's life, inside it: nothing of it may
// lead back to the host. Its root and working directory must be moved
// into the tree by the root switch, it must hold no descriptor but stdio
// (the Go runtime keeps cgroup files open unless told not to), and its
// command line and environment must not show the caller's environment.
func TestAsPid2InitHoldsNothingOfTheHost(t *testing.T) {
	tree := newTree(t, "pin")
	before := snapshot(t)
	r := spawnWith(t, []string{"SPAWN_TEST_SECRET=caller-only"}, t.TempDir(), tree, "-a", "--", "sh", "-c", `
		[ "$(stat -L -c %d:%i /proc/1/root)" = "$(stat -c %d:%i /)" ] && echo "root in the tree"
		[ "$(stat -L -c %d:%i /proc/1/cwd)" = "$(stat -c %d:%i /)" ] && echo "cwd in the tree"
		echo "fds:" $(ls /proc/1/fd)
		tr '\0' '\n' < /proc/1/environ | grep -c SPAWN_TEST_SECRET
		tr '\0' '\n' < /proc/1/cmdline | grep -c SPAWN_TEST_SECRET; true`)
	if want := "root in the tree\ncwd in the tree\nfds: 0 1 2\n0\n0\n"; wantOK(t, r) != want {
		t.Errorf("PID 1 seen from inside = %q, want %q", r.Stdout, want)
	}
	checkHost(t, before)
}

// PROG starts in the caller's working directory, like any chained
// program: relative sources are the caller's.
func TestAsPid2KeepsWorkingDirectory(t *testing.T) {
	tree := newTree(t, "pid2cwd")
	h := hostDir(t)
	writeHostFile(t, h+"/project/file", "relative\n")
	out := wantOK(t, spawnWith(t, nil, h, tree, "-a", "--bind=project:/src", "--", "cat", "/src/file"))
	if out != "relative\n" {
		t.Errorf("bind of a relative source with -a: %q", out)
	}
}

func TestAsPid2BadInput(t *testing.T) {
	tree := newTree(t, "pid2bad")
	before := snapshot(t)
	wantFailure(t, spawn(t, tree, "--as-pid2=sometimes", "--", "true"), "spawn", "sometimes")
	r := run(t, "", "spawn-ns", "-a", "--", "/nonexistent-prog")
	if r.Code != 127 || !strings.Contains(r.Stderr, "spawn-ns: exec /nonexistent-prog") {
		t.Errorf("spawn-ns -a with a missing PROG: exit %d, stderr %q; want 127 naming it", r.Code, r.Stderr)
	}
	wantFailure(t, spawn(t, tree, "-a", "--kill-signal=SIGBOGUS", "--", "true"), "spawn-ns", "SIGBOGUS")
	checkHost(t, before)
}
