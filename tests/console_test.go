package tests

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"spawn/lib/pty"
)

// term is a terminal the test types on as a person would: a pty whose
// peer is the stdin, stdout, stderr and controlling terminal of the
// command run on it (a session of its own, like a login shell's).
type term struct {
	t             *testing.T
	master, slave *os.File
	before        unix.Termios // the slave's attributes before the command

	mu   sync.Mutex
	out  bytes.Buffer
	seen int // how far expect has consumed out

	cmd    *exec.Cmd
	exited chan struct{}
	code   int
}

const termRows, termCols = 33, 101

func newTerm(t *testing.T) *term {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	tm := &term{t: t, master: master, slave: slave}
	t.Cleanup(func() {
		slave.Close()
		master.Close()
	})
	tm.resize(termRows, termCols)
	attrs, err := pty.GetAttr(int(slave.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	tm.before = *attrs
	go func() {
		buf := make([]byte, 32*1024)
		for {
			n, err := master.Read(buf)
			tm.mu.Lock()
			tm.out.Write(buf[:n])
			tm.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return tm
}

// start runs argv (a stage name is taken from the build) on the terminal.
func (tm *term) start(argv ...string) {
	tm.t.Helper()
	cmd := command(tm.t, argv...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tm.slave, tm.slave, tm.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		tm.t.Fatal(err)
	}
	tm.cmd = cmd
	tm.exited = make(chan struct{})
	go func() {
		cmd.Wait()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			tm.code = 128 + int(ws.Signal())
		} else {
			tm.code = ws.ExitStatus()
		}
		close(tm.exited)
	}()
	tm.t.Cleanup(func() {
		select {
		case <-tm.exited:
		default:
			cmd.Process.Kill()
			<-tm.exited
		}
	})
}

// send types s.
func (tm *term) send(s string) {
	tm.t.Helper()
	if _, err := tm.master.Write([]byte(s)); err != nil {
		tm.t.Fatalf("type %q: %v", s, err)
	}
}

// output is everything the terminal has shown so far.
func (tm *term) output() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.out.String()
}

// expect waits until want shows on the terminal after what earlier
// expects consumed, and consumes up to its end.
func (tm *term) expect(want string) {
	tm.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tm.mu.Lock()
		i := strings.Index(tm.out.String()[tm.seen:], want)
		if i >= 0 {
			tm.seen += i + len(want)
		}
		tm.mu.Unlock()
		if i >= 0 {
			return
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("terminal never showed %q; it shows:\n%q", want, tm.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wait waits for the command to end and returns its exit status.
func (tm *term) wait() int {
	tm.t.Helper()
	select {
	case <-tm.exited:
		return tm.code
	case <-time.After(30 * time.Second):
		tm.t.Fatalf("%v still running; terminal shows:\n%q", tm.cmd.Args, tm.output())
	}
	return 0
}

// resize changes the terminal's window size, as a terminal emulator does:
// its foreground process group gets SIGWINCH.
func (tm *term) resize(rows, cols uint16) {
	tm.t.Helper()
	if err := pty.SetSize(int(tm.master.Fd()), &unix.Winsize{Row: rows, Col: cols}); err != nil {
		tm.t.Fatal(err)
	}
}

// checkRestored fails unless the terminal's attributes are what they were
// before the command ran.
func (tm *term) checkRestored() {
	tm.t.Helper()
	after, err := pty.GetAttr(int(tm.slave.Fd()))
	if err != nil {
		tm.t.Fatal(err)
	}
	if *after != tm.before {
		tm.t.Errorf("terminal attributes after = %+v, want %+v (as before)", *after, tm.before)
	}
}

// processState is the state letter of pid (R, S, T...), or "" when gone.
func processState(pid int) string {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(st)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
		return s[i+2 : i+3]
	}
	return ""
}

// waitState waits until pid's state is (or, with not, is no longer) state.
func waitState(t *testing.T, pid int, state string, not bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if s := processState(pid); (s == state) != not {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d: state stayed %q", pid, processState(pid))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// containerInit is the host PID of the container's PID 1 whose command
// line holds marker.
func containerInit(t *testing.T, marker string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, p := range processes(marker) {
			status, err := os.ReadFile("/proc/" + p + "/status")
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(status), "\n") {
				f := strings.Fields(line)
				if len(f) == 3 && f[0] == "NSpid:" && f[2] == "1" {
					pid, _ := strconv.Atoi(p)
					return pid
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no container PID 1 with %q in its command line", marker)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A shell at a terminal: /dev/console, the window size and its changes,
// TERM, typed input, the exit status, and the terminal given back as it was.
func TestConsoleShell(t *testing.T) {
	tree := newTree(t, "console")
	before := snapshot(t)
	tm := newTerm(t)
	tm.start("spawn", "-q", "-D", tree)

	tm.send("echo ok-$((40+2))\r")
	tm.expect("ok-42")
	tm.send("tty\r")
	tm.expect("\n/dev/console\r\n")
	tm.send("stty size\r")
	tm.expect(fmt.Sprintf("\n%d %d\r\n", termRows, termCols))
	tm.send("echo term=$TERM\r")
	tm.expect("term=xterm-test\r\n")
	tm.send("echo fds $(for f in 0 1 2; do readlink /proc/$$/fd/$f; done)\r")
	tm.expect("fds /dev/console /dev/console /dev/console\r\n")

	// SIGWINCH reaches the relay (the terminal's foreground process
	// group), which passes the size on; it arrives asynchronously, so ask
	// again until it shows.
	tm.resize(45, 132)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(tm.output(), "\n45 132\r\n") {
		if time.Now().After(deadline) {
			t.Fatalf("stty size never showed 45 132 after the resize; terminal shows:\n%q", tm.output())
		}
		tm.send("stty size\r")
		time.Sleep(100 * time.Millisecond)
	}

	tm.send("read line; echo \"got:$line\"\r")
	tm.send("typed by hand\r")
	tm.expect("got:typed by hand")

	tm.send("exit 3\r")
	if code := tm.wait(); code != 3 {
		t.Errorf("exit status = %d, want 3; terminal shows:\n%q", code, tm.output())
	}
	tm.checkRestored()
	checkHost(t, before)
	noProcess(t, tree)
}

// ^C and ^Z reach the foreground job inside, which needs the console to be
// the controlling terminal of the container's session.
func TestConsoleJobControl(t *testing.T) {
	for _, extra := range [][]string{nil, {"--as-pid2"}} {
		name := "pid1"
		if extra != nil {
			name = "as-pid2"
		}
		t.Run(name, func(t *testing.T) {
			tree := newTree(t, "jobs")
			before := snapshot(t)
			tm := newTerm(t)
			tm.start(append([]string{"spawn", "-q", "-D", tree}, extra...)...)
			n := strconv.Itoa(3000000 + os.Getpid())

			tm.send("sleep " + n + "\r")
			pid := findProcess(t, "sleep", n)
			tm.send("\x03")
			tm.send("echo status=$?\r")
			tm.expect("status=130")
			if processState(pid) != "" {
				t.Errorf("sleep (pid %d) still there after ^C", pid)
			}

			tm.send("sleep " + n + "\r")
			pid = findProcess(t, "sleep", n)
			tm.send("\x1a")
			waitState(t, pid, "T", false)
			tm.send("echo status=$?\r")
			tm.expect("status=148")
			tm.send("fg\r")
			waitState(t, pid, "T", true)
			tm.send("\x03")
			tm.send("echo status=$?\r")
			tm.expect("status=130")

			tm.send("exit\r")
			if code := tm.wait(); code != 0 {
				t.Errorf("exit status = %d, want 0", code)
			}
			tm.checkRestored()
			checkHost(t, before)
			noProcess(t, tree)
		})
	}
}

// However the container ends, the terminal is given back as it was and
// nothing is left behind.
func TestConsoleRestored(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, tm *term, marker string)
		code int
		says string
		opts []string
	}{
		{"exit", func(t *testing.T, tm *term, marker string) {
			tm.send("x\r")
		}, 5, "", nil},
		{"pid1-killed", func(t *testing.T, tm *term, marker string) {
			syscall.Kill(containerInit(t, marker), syscall.SIGKILL)
		}, 137, "", nil},
		{"relay-sigterm", func(t *testing.T, tm *term, marker string) {
			tm.cmd.Process.Signal(syscall.SIGTERM)
		}, 137, "", nil},
		{"relay-sighup", func(t *testing.T, tm *term, marker string) {
			tm.cmd.Process.Signal(syscall.SIGHUP)
		}, 137, "", nil},
		{"relay-sigint", func(t *testing.T, tm *term, marker string) {
			tm.cmd.Process.Signal(syscall.SIGINT)
		}, 137, "", nil},
		{"escape", func(t *testing.T, tm *term, marker string) {
			tm.send("\x1d\x1d\x1d")
		}, 137, "killing the container", nil},
		// PID 2 cannot lead a session, so the relay's child still leads the
		// pty's: the end must still go through the chain, leaving nothing.
		{"escape-as-pid2", func(t *testing.T, tm *term, marker string) {
			tm.send("\x1d\x1d\x1d")
		}, 137, "killing the container", []string{"--as-pid2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := newTree(t, "restore")
			before := snapshot(t)
			tm := newTerm(t)
			marker := "marker-" + tc.name
			// PID 1 waits for a typed line (^] bytes, passed on as typed,
			// do not end it), and on it exits 5.
			args := append([]string{"spawn", "-q", "-D", tree}, tc.opts...)
			tm.start(append(args, "--", "sh", "-c", "echo ready; read x; exit 5", marker)...)
			tm.expect("ready")
			tc.end(t, tm, marker)
			if code := tm.wait(); code != tc.code {
				t.Errorf("exit status = %d, want %d; terminal shows:\n%q", code, tc.code, tm.output())
			}
			if tc.says != "" && strings.Count(tm.output(), tc.says) != 1 {
				t.Errorf("terminal shows %q, want one line saying %q", tm.output(), tc.says)
			}
			tm.checkRestored()
			checkHost(t, before)
			noProcess(t, tree)
		})
	}
}

// spawn-relay alone: when it fails (PROG cannot be executed), the failure
// is one line and the terminal is as it was; without -q it first says how
// to kill the container.
func TestConsoleRelayFailure(t *testing.T) {
	requireRoot(t)
	bad := filepath.Join(t.TempDir(), "not-a-program")
	if err := os.WriteFile(bad, []byte{0, 1, 2, 3}, 0o755); err != nil {
		t.Fatal(err)
	}
	tm := newTerm(t)
	tm.start("spawn-relay", "--", bad)
	if code := tm.wait(); code != 126 {
		t.Errorf("exit status = %d, want 126", code)
	}
	tm.expect("press ^] three times within 1s")
	tm.expect("spawn-relay: exec not-a-program: ")
	tm.expect("exec format error\r\n")
	tm.checkRestored()
}

// spawn-relay alone: a background process that keeps the pty open does
// not keep the relay waiting once PROG has exited.
func TestConsoleRelayBackgroundHolder(t *testing.T) {
	requireRoot(t)
	n := strconv.Itoa(4000000 + os.Getpid())
	tm := newTerm(t)
	tm.start("spawn-relay", "-q", "--", "sh", "-c", "trap '' HUP; sleep "+n+" & echo bg-started; exit 8")
	pid := findProcess(t, "sleep", n)
	defer syscall.Kill(pid, syscall.SIGKILL)
	if code := tm.wait(); code != 8 {
		t.Errorf("exit status = %d, want 8", code)
	}
	tm.expect("bg-started")
	tm.checkRestored()
	if processState(pid) == "" {
		t.Errorf("the background holder (pid %d) is gone: the test proved nothing", pid)
	}
}

// With -u the console belongs to the user, who can reopen it.
func TestConsoleUser(t *testing.T) {
	tree := newTree(t, "user")
	tm := newTerm(t)
	tm.start("spawn", "-q", "-D", tree, "-u", "alice", "--", "sh", "-c",
		"id -un; echo reopened-$((6*7)) >/dev/console && stat -c 'owner=%U' /dev/console; tty")
	tm.expect("alice\r\n")
	tm.expect("reopened-42\r\n")
	tm.expect("owner=alice\r\n")
	tm.expect("/dev/console\r\n")
	if code := tm.wait(); code != 0 {
		t.Errorf("exit status = %d, want 0; terminal shows:\n%q", code, tm.output())
	}
	tm.checkRestored()
}

// --console=pipe at a terminal: no pty, one warning about TIOCSTI (none with
// -q), and the caller's terminal is neither bound as /dev/console nor taken.
func TestConsolePipeAtTerminal(t *testing.T) {
	tree := newTree(t, "pipetty")
	for _, quiet := range []bool{false, true} {
		tm := newTerm(t)
		args := []string{"spawn", "--console=pipe", "-D", tree, "--", "sh", "-c", "test -e /dev/console && echo console=yes || echo console=no; exit 4"}
		if quiet {
			args = append(args[:1], append([]string{"-q"}, args[1:]...)...)
		}
		tm.start(args...)
		if code := tm.wait(); code != 4 {
			t.Errorf("quiet=%v: exit status = %d, want 4; terminal shows:\n%q", quiet, code, tm.output())
		}
		tm.expect("console=no")
		want := 1
		if quiet {
			want = 0
		}
		if got := strings.Count(tm.output(), "TIOCSTI"); got != want {
			t.Errorf("quiet=%v: %d TIOCSTI warnings, want %d; terminal shows:\n%q", quiet, got, want, tm.output())
		}
		tm.checkRestored()
	}
}

// Without a terminal (autopipe) and with --console=pipe, stdin reaches the
// payload and bytes come back unchanged.
func TestConsolePipe(t *testing.T) {
	tree := newTree(t, "pipe")
	data := make([]byte, 2<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"", "--console=pipe"} {
		args := []string{"spawn", "-q", "-D", tree}
		if mode != "" {
			args = append(args, mode)
		}
		r := run(t, string(data), append(args, "--", "cat")...)
		if r.Code != 0 {
			t.Fatalf("%q: cat exit status = %d, want 0; stderr: %s", mode, r.Code, r.Stderr)
		}
		if r.Stdout != string(data) {
			t.Errorf("%q: %d bytes came back, want the %d sent unchanged", mode, len(r.Stdout), len(data))
		}
	}
}

// --console=interactive with a pipe on stdin: the bytes go through the pty
// and the pipe's end becomes the pty's end of file.
func TestConsoleInteractiveFromPipe(t *testing.T) {
	tree := newTree(t, "ipipe")
	r := run(t, "one\ntwo", "spawn", "-q", "--console=interactive", "-D", tree, "--", "sh", "-c", "tty; wc -l")
	if r.Code != 0 {
		t.Fatalf("exit status = %d, want 0; stderr: %s", r.Code, r.Stderr)
	}
	// The pty echoes what is typed; wc sees both lines (the last one
	// completed by the end of file) and cat then sees the end at once.
	if !strings.Contains(r.Stdout, "/dev/console\r\n") || !strings.Contains(r.Stdout, "1\r\n") {
		t.Errorf("output = %q, want /dev/console and wc's count", r.Stdout)
	}
}

// --console=passive: a pty connected to nothing. read-only: output only.
func TestConsolePassiveReadOnly(t *testing.T) {
	tree := newTree(t, "passive")
	r := run(t, "typed", "spawn", "-q", "--console=passive", "-D", tree, "--", "sh", "-c", "tty; echo lost; exit 6")
	if r.Code != 6 || r.Stdout != "" {
		t.Errorf("passive: exit %d, stdout %q; want 6 and nothing", r.Code, r.Stdout)
	}
	r = run(t, "typed\n", "spawn", "-q", "--console=read-only", "-D", tree, "--", "sh", "-c", "tty; read -t 1 x || echo nothing-read; exit 6")
	if r.Code != 6 || !strings.Contains(r.Stdout, "/dev/console\r\n") || !strings.Contains(r.Stdout, "nothing-read") {
		t.Errorf("read-only: exit %d, stdout %q; want 6, /dev/console and nothing read", r.Code, r.Stdout)
	}
}

func TestConsoleBadMode(t *testing.T) {
	for _, argv := range [][]string{
		{"spawn", "--console=bogus", "-D", "/nonexistent", "--", "true"},
		{"spawn-relay", "--console=bogus", "--", "true"},
		{"spawn-rootfs", "--console=bogus", "-D", "/nonexistent", "--", "true"},
	} {
		r := run(t, "", argv...)
		lines := strings.Split(strings.TrimSuffix(r.Stderr, "\n"), "\n")
		if r.Code != 125 || len(lines) != 1 || !strings.Contains(r.Stderr, "--console=bogus") {
			t.Errorf("%v = %d, stderr %q; want 125 and one line naming --console=bogus", argv, r.Code, r.Stderr)
		}
	}
}

// An interactive shell in the container, driven through tmux as a person
// would use it.
func TestConsoleTmux(t *testing.T) {
	tree := newTree(t, "tmux")
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if mustWork {
			t.Fatal("tmux not installed, and SPAWN_MUST_WORK=1 (.ci/run installs it)")
		}
		t.Skip("tmux not installed")
	}
	before := snapshot(t)
	sock := filepath.Join(t.TempDir(), "sock")
	tm := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tmux, append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	// Only our own server, on our own socket, is ever killed.
	t.Cleanup(func() { exec.Command(tmux, "-S", sock, "kill-server").Run() })
	// The pane runs sh, which reports how spawn ended (tmux 3.3a's own
	// #{pane_dead_status} at times never comes: it leaves its child a
	// zombie). From a script, so that the tree's name is not in the tmux
	// server's command line.
	script := filepath.Join(t.TempDir(), "pane")
	if err := os.WriteFile(script, []byte(bin("spawn")+" -q -D "+tree+"\necho spawn-exit=$?\nexec sleep 1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tm("-f", "/dev/null", "new-session", "-d", "-x", "90", "-y", "30", "sh "+script)
	capture := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			screen := tm("capture-pane", "-p")
			if strings.Contains(screen, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("pane never showed %q; it shows:\n%s", want, screen)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	tm("send-keys", "echo tmux-$((6*7)) $(tty) $(hostname); stty size", "Enter")
	capture("tmux-42 /dev/console tmux")
	capture("30 90")
	tm("send-keys", "exit 9", "Enter")
	capture("spawn-exit=9")
	checkHost(t, before)
	noProcess(t, tree)
}
