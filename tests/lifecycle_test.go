package tests

import (
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKillPID1FromHost: when the container's PID 1 is killed by SIGKILL
// from the host, every stage passes on 128+9.
func TestKillPID1FromHost(t *testing.T) {
	for _, d := range doors {
		t.Run(d.name, func(t *testing.T) {
			tree := newTree(t, "kill")
			before := snapshot(t)
			m := marker()
			cmd := d.cmd(t, tree, "sh", "-c", "echo ready; exec sleep "+m)
			l := begin(t, cmd)
			if line := l.line(t); line != "ready" {
				t.Fatalf("payload said %q, want ready", line)
			}
			pid := findProcess(t, "sleep", m)
			status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
			if err != nil {
				t.Fatal(err)
			}
			// The process found is the container's PID 1.
			if ns := strings.Fields(field(string(status), "NSpid")); len(ns) != 2 || ns[1] != "1" {
				t.Fatalf("sleep %s: NSpid %q, want host pid and 1", m, ns)
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if r := l.finish(t); r.Code != 137 {
				t.Errorf("exit = %d, want 137; stderr %q", r.Code, r.Stderr)
			}
			gone(t, m)
			checkHost(t, before)
		})
	}
}

// TestSignalToFrontDoor: SIGTERM, SIGINT or SIGHUP to the front door
// (which is spawn-cgroup by then, spawn and spawn-relay having exec'd)
// reach spawn-ns, which kills PID 1 with SIGKILL (--kill-signal's
// default): the container ends with 137 and leaves nothing behind.
func TestSignalToFrontDoor(t *testing.T) {
	tree := newTree(t, "sigterm")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			before := snapshot(t)
			m := marker()
			// PID 1 is sh, which has no handler for these signals: only
			// SIGKILL ends it.
			cmd := command(t, "spawn", "-q", "-D", tree, "--", "sh", "-c", "echo ready; sleep "+m+"; echo woke")
			l := begin(t, cmd)
			if line := l.line(t); line != "ready" {
				t.Fatalf("payload said %q, want ready", line)
			}
			findProcess(t, "sleep", m)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if r := l.finish(t); r.Code != 137 || r.Stdout != "" {
				t.Errorf("after %v: exit %d, stdout %q, stderr %q; want 137", sig, r.Code, r.Stdout, r.Stderr)
			}
			gone(t, m)
			checkHost(t, before)
		})
	}
}

// TestKillSignalOption: --kill-signal is what PID 1 gets instead.
func TestKillSignalOption(t *testing.T) {
	tree := newTree(t, "killsignal")
	for _, tc := range []struct {
		opt  string
		sent syscall.Signal
		trap string
		code int
	}{
		{"--kill-signal=SIGTERM", syscall.SIGTERM, "TERM", 3},
		{"--kill-signal=hup", syscall.SIGINT, "HUP", 4},
		{"--kill-signal=10", syscall.SIGTERM, "USR1", 5},
	} {
		t.Run(tc.opt, func(t *testing.T) {
			before := snapshot(t)
			m := marker()
			script := "trap 'exit " + strconv.Itoa(tc.code) + "' " + tc.trap + "; echo ready; sleep " + m + " & wait"
			cmd := command(t, "spawn", "-q", "-D", tree, tc.opt, "--", "sh", "-c", script)
			l := begin(t, cmd)
			if line := l.line(t); line != "ready" {
				t.Fatalf("payload said %q, want ready", line)
			}
			findProcess(t, "sleep", m)
			if err := cmd.Process.Signal(tc.sent); err != nil {
				t.Fatal(err)
			}
			if r := l.finish(t); r.Code != tc.code {
				t.Errorf("exit %d, stderr %q; want %d (PID 1 trapped %s)", r.Code, r.Stderr, tc.code, tc.trap)
			}
			gone(t, m)
			checkHost(t, before)
		})
	}
}

// TestDaemonLeftBehind: a payload that leaves a background process and
// exits takes it along.
func TestDaemonLeftBehind(t *testing.T) {
	tree := newTree(t, "daemon")
	for _, tc := range []struct {
		name string
		argv func(m string) []string
	}{
		{"front door", func(m string) []string {
			return []string{"spawn", "-q", "-D", tree, "--", "sh", "-c", "sleep " + m + " & echo started; read x; exit 0"}
		}},
		{"front door, reparented daemon", func(m string) []string {
			return []string{"spawn", "-q", "-D", tree, "--", "sh", "-c", "(sleep " + m + " &); echo started; read x; exit 0"}
		}},
		// Without a PID namespace, spawn-cgroup alone must kill it.
		{"spawn-cgroup", func(m string) []string {
			return []string{"spawn-cgroup", "--", "sh", "-c", "sleep " + m + " & echo started; read x; exit 0"}
		}},
		{"spawn-cgroup, reparented daemon", func(m string) []string {
			return []string{"spawn-cgroup", "--", "sh", "-c", "(setsid sleep " + m + " &); echo started; read x; exit 0"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t)
			m := marker()
			cmd := command(t, tc.argv(m)...)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			l := begin(t, cmd)
			if line := l.line(t); line != "started" {
				t.Fatalf("payload said %q, want started", line)
			}
			// The daemon really runs before the payload ends.
			findProcess(t, "sleep", m)
			stdin.Close()
			if r := l.finish(t); r.Code != 0 {
				t.Errorf("exit %d, stderr %q; want 0", r.Code, r.Stderr)
			}
			gone(t, m)
			checkHost(t, before)
		})
	}
}

// TestPID1DiesWithSpawnNS: if spawn-ns is killed outright, PID 1 (and so
// the namespace) goes with it, also when PID 1 went through spawn-rootfs
// and spawn-caps, and became a user on the way.
func TestPID1DiesWithSpawnNS(t *testing.T) {
	tree := newTree(t, "pdeath")
	rootfs := []string{bin("spawn-rootfs"), "-q", "-D", tree, "--", bin("spawn-caps")}
	for _, tc := range []struct {
		name   string
		stages []string
	}{
		{"sh", []string{"--"}},
		{"private network", []string{"--private-network", "--"}},
		{"through spawn-caps", append([]string{"--"}, append(rootfs, "--")...)},
		{"as alice", append([]string{"--"}, append(rootfs, "-u", "alice", "--")...)},
		{"private network, as 1001", append([]string{"--private-network", "--"}, append(rootfs, "-u", "1001", "--")...)},
		{"as PID 2, as alice", append([]string{"--as-pid2", "-D", tree, "--"}, append(rootfs, "-u", "alice", "--")...)},
	} {
		stages := tc.stages
		t.Run(tc.name, func(t *testing.T) {
			m := marker()
			cmd := command(t, append(append([]string{"spawn-ns"}, stages...), "sh", "-c", "echo ready; sleep "+m+"; true")...)
			l := begin(t, cmd)
			if line := l.line(t); line != "ready" {
				t.Fatalf("payload said %q, want ready", line)
			}
			findProcess(t, "sleep", m)
			cmd.Process.Kill()
			cmd.Wait()
			gone(t, m)
			l.stdout.SetReadDeadline(time.Now().Add(5 * time.Second))
			if rest, err := io.ReadAll(l.r); err != nil {
				t.Errorf("stdout still open after spawn-ns was killed: %q, %v", rest, err)
			}
		})
	}
}

// TestSpawnCgroupForwardsSignals: spawn-cgroup passes SIGTERM on as it is.
func TestSpawnCgroupForwardsSignals(t *testing.T) {
	requireRoot(t)
	before := snapshot(t)
	m := marker()
	cmd := command(t, "spawn-cgroup", "--", "sh", "-c", "trap 'exit 5' TERM; echo ready; sleep "+m+" & wait")
	l := begin(t, cmd)
	if line := l.line(t); line != "ready" {
		t.Fatalf("payload said %q, want ready", line)
	}
	findProcess(t, "sleep", m)
	cmd.Process.Signal(syscall.SIGTERM)
	if r := l.finish(t); r.Code != 5 {
		t.Errorf("exit %d, stderr %q; want 5", r.Code, r.Stderr)
	}
	gone(t, m)
	checkHost(t, before)
}
