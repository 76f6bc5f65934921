// Package pty allocates pseudo-terminals and handles terminal modes,
// window sizes and controlling terminals, with x/sys/unix only (no cgo,
// no path lookups in /dev/pts).
package pty

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Open allocates a new pty. peer is the other side of master, opened with
// TIOCGPTPEER rather than by its /dev/pts path, so that nothing mounted
// over /dev/pts (or another devpts instance) can hand us a different
// terminal. Both are close-on-exec and neither becomes our controlling
// terminal. Both are blocking: a goroutine per direction blocked in
// read(2) relays small writes faster than Go's poller (which adds an
// EAGAIN and an epoll wake-up to every read).
func Open() (master, peer *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &os.PathError{Op: "open", Path: "/dev/ptmx", Err: err}
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, _ := unix.IoctlGetInt(mfd, unix.TIOCGPTN)
	// x/sys/unix's IoctlRetInt passes 0 as the argument, which here would
	// mean O_RDONLY: call it with the flags the peer needs.
	pfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER,
		uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("open the peer of pty %d: %w", n, errno)
	}
	return os.NewFile(uintptr(mfd), "/dev/ptmx"), os.NewFile(pfd, fmt.Sprintf("/dev/pts/%d", n)), nil
}

// IsTerminal reports whether fd is a terminal.
func IsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// GetAttr reads fd's terminal attributes. On a pty master they are the
// peer's.
func GetAttr(fd int) (*unix.Termios, error) {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("read terminal attributes: %w", err)
	}
	return t, nil
}

// SetAttr sets fd's terminal attributes at once (TCSANOW): waiting for
// output to drain could block for ever on a terminal whose output is
// stopped, and a restore must never hang.
func SetAttr(fd int, t *unix.Termios) error {
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("set terminal attributes: %w", err)
	}
	return nil
}

// Raw is t in raw mode, as cfmakeraw(3) makes it: bytes pass unchanged
// both ways, one at a time, with no echo and no signals from ^C, ^Z or ^\.
func Raw(t unix.Termios) unix.Termios {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return t
}

// State is a terminal's saved attributes.
type State struct {
	fd    int
	saved unix.Termios
}

// MakeRaw puts the terminal on fd in raw mode and returns its previous
// state for Restore.
func MakeRaw(fd int) (*State, error) {
	t, err := GetAttr(fd)
	if err != nil {
		return nil, err
	}
	s := &State{fd: fd, saved: *t}
	raw := Raw(*t)
	if err := SetAttr(fd, &raw); err != nil {
		return nil, err
	}
	return s, nil
}

// Restore sets the attributes saved by MakeRaw back. It may be called
// more than once.
func (s *State) Restore() error {
	if s == nil {
		return nil
	}
	return SetAttr(s.fd, &s.saved)
}

// GetSize reads the window size of the terminal on fd.
func GetSize(fd int) (*unix.Winsize, error) {
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil {
		return nil, fmt.Errorf("read window size: %w", err)
	}
	return ws, nil
}

// SetSize sets the window size of the terminal on fd; on a pty master it
// is the peer's, and the peer's foreground process group gets SIGWINCH
// when it changes.
func SetSize(fd int, ws *unix.Winsize) error {
	if err := unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, ws); err != nil {
		return fmt.Errorf("set window size %dx%d: %w", ws.Col, ws.Row, err)
	}
	return nil
}

// Session is the session ID (in the caller's PID namespace) of the
// process that has the peer of master as its controlling terminal: the
// session leader. It is 0 when no session has it, or when its leader is
// not visible from here.
func Session(master *os.File) int {
	// On a master, TIOCGSID answers for the peer, whoever's terminal it is.
	sid, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGSID)
	if err != nil {
		return 0
	}
	return sid
}

// TakeConsole makes the calling process the leader of a new session whose
// controlling terminal is the terminal at path, and makes that terminal
// its stdin, stdout and stderr. The terminal is taken from any session
// that has it (which needs CAP_SYS_ADMIN), so call it only where that
// session is ours: a pty made for us, never the caller's own terminal.
//
// A process group leader cannot make a session (setsid fails with EPERM).
// When the terminal is already its controlling terminal, it keeps the
// session it is in: spawn-ns --as-pid2 starts PID 2 as such a leader, in a
// group it makes the terminal's foreground group.
func TakeConsole(path string) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer func() {
		if fd > 2 {
			unix.Close(fd)
		}
	}()
	if _, err := unix.Setsid(); err == nil {
		if err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 1); err != nil {
			return fmt.Errorf("make %s the controlling terminal: %w", path, err)
		}
	} else if !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("new session: %w", err)
	} else if _, err := unix.IoctlGetInt(fd, unix.TIOCGSID); err != nil {
		// TIOCGSID answers only for one's own controlling terminal.
		return fmt.Errorf("new session for %s: a process group leader cannot make one, and %s is not its controlling terminal", path, path)
	}
	for target := 0; target <= 2; target++ {
		if target == fd {
			// It was opened close-on-exec; as stdio it must survive exec.
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
				return fmt.Errorf("make %s fd %d: %w", path, target, err)
			}
			continue
		}
		if err := unix.Dup3(fd, target, 0); err != nil {
			return fmt.Errorf("make %s fd %d: %w", path, target, err)
		}
	}
	return nil
}
