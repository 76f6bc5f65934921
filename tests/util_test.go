package tests

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// door is one way into a container: the front door, or the chain
// composed by hand.
type door struct {
	name string
	cmd  func(t *testing.T, tree string, prog ...string) *exec.Cmd
}

var doors = []door{
	{"front door", func(t *testing.T, tree string, prog ...string) *exec.Cmd {
		return command(t, append([]string{"spawn", "-q", "-D", tree, "--"}, prog...)...)
	}},
	{"hand-composed chain", func(t *testing.T, tree string, prog ...string) *exec.Cmd {
		return command(t, append([]string{bin("spawn-relay"), "--", bin("spawn-cgroup"), "--", bin("spawn-ns"), "--",
			bin("spawn-rootfs"), "-q", "-D", tree, "--", bin("spawn-caps"), "--"}, prog...)...)
	}},
	// The stages by name from PATH: spawn-rootfs takes spawn-caps from the
	// host, though the tree has none.
	{"chain by name", func(t *testing.T, tree string, prog ...string) *exec.Cmd {
		cmd := command(t, append([]string{"spawn-relay", "--", "spawn-cgroup", "--", "spawn-ns", "--",
			"spawn-rootfs", "-qD", tree, "--", "spawn-caps", "--"}, prog...)...)
		cmd.Env = append(cmd.Env, "PATH="+binDir+":/usr/bin:/bin")
		return cmd
	}},
}

// inside runs prog in a container through the front door and returns its
// stdout, failing the test unless it exits 0.
func inside(t *testing.T, tree string, args ...string) string {
	t.Helper()
	r := spawn(t, tree, args...)
	if r.Code != 0 {
		t.Fatalf("spawn %q = %d, stderr %q", args, r.Code, r.Stderr)
	}
	return r.Stdout
}

// field is the value of "name:" in a /proc/PID/status text.
func field(status, name string) string {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func hexMask(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		t.Fatalf("capability mask %q: %v", s, err)
	}
	return v
}

// hostStatus is the test process's own /proc/self/status.
func hostStatus(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// retained is the contract's bounding set (0x94acafff) as far as the
// test's own bounding set allows.
func retained(t *testing.T) uint64 {
	return 0x94acafff & hexMask(t, field(hostStatus(t), "CapBnd"))
}

// marker is a unique number for a payload's command line (sleep MARKER
// sleeps for decades), so the test can find exactly its own processes.
func marker() string {
	return fmt.Sprintf("7%08d", rand.IntN(1e8))
}

// findProcess waits (at most 20 s: a loaded machine starts containers
// slowly) for a process whose argv is exactly argv and returns its host pid.
func findProcess(t *testing.T, argv ...string) int {
	t.Helper()
	want := []byte(strings.Join(argv, "\x00") + "\x00")
	deadline := time.Now().Add(20 * time.Second)
	for {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if cl, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && slices.Equal(cl, want) {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no process %q appeared", argv)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gone waits (at most 10 s) until no process has marker in its command
// line, and fails the test if one is still there, killing it so that a
// failure leaves nothing running.
func gone(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(processes(marker)) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	noProcess(t, marker)
	for _, pid := range processes(marker) {
		if n, err := strconv.Atoi(pid); err == nil {
			syscall.Kill(n, syscall.SIGKILL)
		}
	}
}

// running is a started command whose stdout the test reads as it goes.
type running struct {
	cmd    *exec.Cmd
	stdout *os.File
	r      *bufio.Reader
	stderr strings.Builder
}

// begin starts cmd with its stdout on a pipe the test reads.
func begin(t *testing.T, cmd *exec.Cmd) *running {
	t.Helper()
	// A pipe of our own rather than StdoutPipe, which Wait closes: what
	// the payload wrote last must still be readable after it ended.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	l := &running{cmd: cmd, stdout: pr, r: bufio.NewReader(pr)}
	cmd.Stdout = pw
	cmd.Stderr = &l.stderr
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		pr.Close()
	})
	return l
}

// line reads one line of the payload's output, failing the test if none
// comes within 30 s.
func (l *running) line(t *testing.T) string {
	t.Helper()
	l.stdout.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := l.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read a line from %q: %q, %v; stderr %q", l.cmd.Args, line, err, l.stderr.String())
	}
	return strings.TrimSuffix(line, "\n")
}

// finish waits for the command and returns how it ended, with the rest
// of its stdout. Output still held open 5 s after the command ended means
// a process of the container was left behind: that fails the test.
func (l *running) finish(t *testing.T) result {
	t.Helper()
	err := l.cmd.Wait()
	l.stdout.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, rerr := io.ReadAll(l.r)
	r := result{Stdout: string(rest), Stderr: l.stderr.String()}
	if rerr != nil {
		t.Errorf("%q: stdout still open after it ended (a process left behind?): %v", l.cmd.Args, rerr)
	}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok || !ee.Exited() {
			t.Fatalf("%q: %v, stderr %q", l.cmd.Args, err, r.Stderr)
		}
		r.Code = ee.ExitCode()
	}
	return r
}
