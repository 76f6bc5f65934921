package chain

import (
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
)

// Forwarded are the signals a resident stage passes on to its child.
var Forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP}

// Child is a resident stage's one child: started with Pdeathsig so it dies
// with the stage, sent the forwarded signals, and waited for.
type Child struct {
	Cmd *exec.Cmd
	// Signal maps a forwarded signal to the one the child gets; nil
	// forwards it unchanged.
	Signal func(os.Signal) syscall.Signal
	// Prepare runs on the thread that forks the child, just before the
	// fork: what it changes about that thread (its v1 cgroups, say) the
	// child inherits. Started runs after the child is started, on the same
	// thread, before signals are forwarded or the child is waited for.
	Prepare func() error
	Started func(pid int) error
}

// NewCmd prepares prog (looked up in the caller's PATH) to run with the
// stage's own stdio and environment.
func NewCmd(prog []string) (*exec.Cmd, error) {
	p, err := LookPath(prog[0], os.Getenv("PATH"))
	if err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{Path: p, Args: prog, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	return cmd, nil
}

// Run starts the child, forwards signals to it until it ends and returns
// its exit status (128+N when killed by signal N).
func (c *Child) Run() (int, error) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, Forwarded...)
	defer signal.Stop(sigs)

	// Pdeathsig fires when the thread that forked dies, not the process:
	// keep this goroutine on its thread for the stage's whole life.
	runtime.LockOSThread()
	c.Cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := CloseExtraFDs(); err != nil {
		return 0, err
	}
	if c.Prepare != nil {
		if err := c.Prepare(); err != nil {
			return 0, err
		}
	}
	if err := c.Cmd.Start(); err != nil {
		return 0, execError(filepath.Base(c.Cmd.Path), err)
	}
	pid := c.Cmd.Process.Pid
	if c.Started != nil {
		if err := c.Started(pid); err != nil {
			c.Cmd.Process.Kill()
			c.Cmd.Wait()
			return 0, err
		}
	}
	done := make(chan error, 1)
	go func() { done <- c.Cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			sig := s.(syscall.Signal)
			if c.Signal != nil {
				sig = c.Signal(s)
			}
			syscall.Kill(pid, sig)
		case <-done:
			return ExitStatus(c.Cmd.ProcessState.Sys().(syscall.WaitStatus)), nil
		}
	}
}
