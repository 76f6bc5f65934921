// Package relay is spawn-relay: when stdin is a terminal, PROG gets a
// fresh pty relayed to the caller's terminal; otherwise PROG is executed
// straight away, its stdio passing through untouched.
package relay

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"spawn/lib/chain"
	"spawn/lib/pty"
)

const description = `spawn-relay is the outermost stage: it gives PROG a terminal of its own.

With --console=autopipe (the default), when stdin and stdout are both
terminals it works as with --console=interactive; otherwise as with
--console=pipe.

  interactive  A new pty is allocated, with the caller's terminal settings
               and window size, and PROG runs on it as a new session whose
               controlling terminal it is. The caller's terminal is put in
               raw mode (no echo, no signals: ^C, ^Z and ^\ go to PROG),
               and bytes are relayed both ways until PROG has exited and its
               output is drained. A window size change (SIGWINCH) is passed
               on to the pty. When stdin is not a terminal it is forwarded
               as it is, and its end is passed on as the pty's end-of-file
               character.
  read-only    As interactive, but nothing is read from stdin and the
               caller's terminal is left in its own mode (^C there ends
               the container through SIGINT, below).
  passive      A new pty as above, connected to nothing: PROG's output is
               read and thrown away, nothing is typed.
  pipe         No pty: spawn-relay executes PROG directly, so stdin, stdout
               and stderr reach PROG untouched and byte-exact. When stdin is
               a terminal one warning is printed: PROG can then inject
               keystrokes into the caller's terminal (TIOCSTI).

In the interactive mode with a terminal, pressing ^] three times within one
second kills the container: the process that has the pty as its
controlling terminal (PROG, or in the full chain the container's PID 1,
which takes the pty as /dev/console) gets SIGKILL, and one line says so.

With a pty, spawn-relay stays resident as PROG's parent: SIGTERM, SIGINT and
SIGHUP are forwarded to PROG, and PROG is killed if spawn-relay dies. The
caller's terminal attributes are restored however PROG ends: on its exit,
when it is killed (also when the container's PID 1 is killed from the
host), after a forwarded signal, and when spawn-relay itself fails.

-q silences the informational line about ^] and the TIOCSTI warning,
never errors.

Exit status: PROG's, or 128+N when it was killed by signal N (137 after
^]^]^]); 125 if spawn-relay failed; 126/127 if PROG could not be executed
or found.

Example:
  spawn-relay -- spawn-cgroup -- spawn-ns -- spawn-rootfs -D /srv/tree -- spawn-caps -- sh`

// Stage is spawn-relay.
var Stage = &chain.Stage{
	Name:        "spawn-relay",
	Usage:       "relay the caller's terminal to PROG through a new pty",
	Description: description,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "console", Value: string(pty.AutoPipe), Usage: "connect the console as `MODE`: interactive, read-only, passive, pipe or autopipe"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no informational messages"},
	},
	Action: run,
}

func run(c *cli.Context, prog []string) error {
	mode, err := pty.ParseConsole(c.String("console"))
	if err != nil {
		return chain.Failf("%w", err)
	}
	if err := chain.NeedProg("spawn-relay", prog); err != nil {
		return err
	}
	quiet := c.Bool("quiet")
	if mode = mode.Resolve(); mode == pty.Pipe {
		if pty.IsTerminal(0) && !quiet {
			fmt.Fprintln(c.App.ErrWriter, "spawn-relay: warning: stdin is a terminal and is passed to PROG as it is (--console=pipe): PROG can inject keystrokes into it (TIOCSTI)")
		}
		return chain.Exec(prog, os.Environ(), os.Getenv("PATH"))
	}
	r := &relay{mode: mode, quiet: quiet, stderr: c.App.ErrWriter}
	code, err := r.run(prog)
	if err != nil {
		return err
	}
	return chain.Status(code)
}

// drainIdle is how long the pty may stay silent after PROG has exited
// before the relay stops reading it. In the chain everything holding the
// pty is dead by then and the end shows at once (EIO); this only bounds
// the wait when a background process PROG left behind still holds it.
const drainIdle = 250 * time.Millisecond

type relay struct {
	mode     pty.Console
	quiet    bool
	stderr   io.Writer
	master   *os.File
	mfd      int
	stdinTTY bool
	cmd      *os.Process
	exited   atomic.Bool
	// lastOutput is when output last moved (UnixNano); writing is set
	// while a write of it is under way (it may block on a slow reader).
	lastOutput atomic.Int64
	writing    atomic.Bool
}

// run relays until PROG has exited and its output is drained, and returns
// PROG's exit status. The caller's terminal is restored before it returns,
// on every path (Main's os.Exit comes after).
func (r *relay) run(prog []string) (int, error) {
	cmd, err := chain.NewCmd(prog)
	if err != nil {
		return 0, err
	}
	master, peer, err := pty.Open()
	if err != nil {
		return 0, chain.Failf("allocate a pty: %w", err)
	}
	defer master.Close()
	peerOpen := true
	defer func() {
		if peerOpen {
			peer.Close()
		}
	}()
	r.master, r.mfd = master, int(master.Fd())
	r.stdinTTY = pty.IsTerminal(0)

	// The pty starts with the caller's settings (erase character, flow
	// control...), as script(1) and ssh -t do.
	if r.stdinTTY {
		t, err := pty.GetAttr(0)
		if err != nil {
			return 0, chain.Failf("stdin: %w", err)
		}
		if err := pty.SetAttr(int(peer.Fd()), t); err != nil {
			return 0, chain.Failf("pty %s: %w", peer.Name(), err)
		}
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	r.resize()
	// A write to a closed pipe on stdout must be an error to handle, not
	// the death of the relay with the caller's terminal left raw.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)

	interactive := r.mode == pty.Interactive
	raw := interactive && r.stdinTTY
	if raw && !r.quiet {
		fmt.Fprintln(r.stderr, "spawn-relay: press ^] three times within 1s to kill the container")
	}
	var state *pty.State
	defer func() { state.Restore() }()

	var dst io.Writer = os.Stdout
	if r.mode == pty.Passive {
		dst = io.Discard
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = peer, peer, peer
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setctty = true
	cmd.SysProcAttr.Ctty = 0 // PROG's stdin, the peer
	drained := make(chan struct{})
	child := &chain.Child{
		Cmd: cmd,
		Started: func(int) error {
			r.cmd = cmd.Process
			// Our copy of the peer would keep the pty open after PROG
			// and everything it started have gone: no EIO, no end.
			peer.Close()
			peerOpen = false
			// Child.Run forwards SIGTERM, SIGINT and SIGHUP while PROG
			// runs (it is catching them by now); these stay caught after
			// PROG has gone too, so that one arriving while the output
			// drains cannot end the relay with the terminal raw. Raw mode
			// starts only here for the same reason: before, such a signal
			// still kills the relay the default way, harmlessly.
			signal.Notify(make(chan os.Signal, 1), chain.Forwarded...)
			if raw {
				var err error
				if state, err = pty.MakeRaw(0); err != nil {
					return chain.Failf("stdin: %w", err)
				}
			}
			go r.output(dst, drained)
			if interactive {
				go r.input()
			}
			go func() {
				for range winch {
					r.resize()
				}
			}()
			return nil
		},
	}
	code, err := child.Run()
	if err != nil {
		return 0, err
	}
	r.exited.Store(true)
	r.drain(drained, time.Now())
	return code, nil
}

// drain waits until the output has ended (drained closed) or, with no
// write of it under way, has not moved for drainIdle since PROG exited.
// The reader left blocked then goes with the process.
func (r *relay) drain(drained <-chan struct{}, exited time.Time) {
	for {
		last := exited
		if t := time.Unix(0, r.lastOutput.Load()); t.After(last) {
			last = t
		}
		wait := drainIdle - time.Since(last)
		if r.writing.Load() {
			wait = drainIdle
		}
		if wait <= 0 {
			return
		}
		select {
		case <-drained:
			return
		case <-time.After(wait):
		}
	}
}

// resize gives the pty the caller's window size (stdout's terminal, else
// stdin's); the pty's foreground process group gets SIGWINCH.
func (r *relay) resize() {
	for _, fd := range []int{1, 0} {
		if ws, err := pty.GetSize(fd); err == nil {
			pty.SetSize(r.mfd, ws)
			return
		}
	}
}

// output copies the pty to dst until the pty ends (EIO once nothing holds
// its peer). When dst fails (caller's terminal hung up, pipe closed) the
// output is still read, and dropped, so that PROG never blocks on a full
// pty.
func (r *relay) output(dst io.Writer, done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, 64*1024)
	for {
		n, err := r.master.Read(buf)
		if n > 0 {
			r.writing.Store(true)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				dst = io.Discard
			}
			r.lastOutput.Store(time.Now().UnixNano())
			r.writing.Store(false)
		}
		if err != nil {
			return
		}
	}
}

// input copies stdin to the pty, watching for ^]^]^] when a person types.
func (r *relay) input() {
	buf := make([]byte, 4096)
	var esc escape
	last := byte('\n')
	for {
		n, err := os.Stdin.Read(buf)
		if n > 0 {
			if r.stdinTTY && esc.pressed(buf[:n], time.Now()) {
				r.kill()
			}
			if _, werr := r.master.Write(buf[:n]); werr != nil {
				return
			}
			last = buf[n-1]
		}
		if err != nil {
			if !r.stdinTTY {
				r.endOfInput(last)
			}
			return
		}
	}
}

// endOfInput passes the end of a stdin that is not a terminal on as the
// pty's end-of-file character: a pty has no other way to say it. A partial
// last line needs one to be delivered and another to read as the end.
func (r *relay) endOfInput(last byte) {
	t, err := pty.GetAttr(r.mfd)
	if err != nil || t.Lflag&unix.ICANON == 0 {
		return
	}
	eof := []byte{t.Cc[unix.VEOF]}
	if last != '\n' {
		eof = append(eof, eof[0])
	}
	r.master.Write(eof)
}

// kill ends the container after ^]^]^]: SIGKILL to the session leader of
// the pty, which is PROG itself or, in the full chain, the container's
// PID 1 (it took the pty as /dev/console). Killing PID 1 rather than our
// direct child lets the resident stages in between clean up (spawn-cgroup
// removes its cgroup). Where our direct child still leads the session
// (PROG alone, or with --as-pid2, where PID 2 cannot start a session of its
// own) it gets SIGTERM instead, which the resident stages turn into the
// container's end and clean up after. Should that not end PROG within two
// seconds, PROG gets SIGKILL.
func (r *relay) kill() {
	nl := "\n"
	if pty.IsTerminal(2) {
		nl = "\r\n" // the terminal is raw: no newline translation
	}
	fmt.Fprintf(r.stderr, "%sspawn-relay: ^] pressed three times within 1s: killing the container%s", nl, nl)
	if err := r.killSession(); err != nil {
		r.cmd.Signal(syscall.SIGTERM)
	}
	time.AfterFunc(2*time.Second, func() {
		if !r.exited.Load() {
			// os.Process signals through a pidfd: never a reused PID.
			r.cmd.Kill()
		}
	})
}

func (r *relay) killSession() error {
	sid := pty.Session(r.master)
	if sid <= 0 || sid == os.Getpid() || sid == r.cmd.Pid {
		return errors.New("no session beyond our child's")
	}
	// The session leader is ours only while it still has the pty: pin it
	// with a pidfd and check again, so a reused PID is never hit.
	pidfd, err := unix.PidfdOpen(sid, 0)
	if err != nil {
		return err
	}
	defer unix.Close(pidfd)
	if pty.Session(r.master) != sid {
		return errors.New("session changed")
	}
	return unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
}

// escape spots ^] pressed three times within one second, nothing else in
// between.
type escape struct {
	count int
	first time.Time
}

const escapeByte = 0x1d // ^]

func (e *escape) pressed(b []byte, now time.Time) bool {
	for _, c := range b {
		switch {
		case c != escapeByte:
			e.count = 0
		case e.count == 0 || now.Sub(e.first) > time.Second:
			e.count, e.first = 1, now
		default:
			e.count++
			if e.count == 3 {
				e.count = 0
				return true
			}
		}
	}
	return false
}
