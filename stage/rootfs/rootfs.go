// Package rootfs is spawn-rootfs: inside a private mount namespace, the API
// file systems, /dev and the console are set up in the tree, the root is
// switched into it, the hostname set, and PROG executed.
package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"spawn/lib/chain"
	"spawn/lib/mount"
	"spawn/lib/namespace"
	"spawn/lib/pty"
)

const description = `spawn-rootfs prepares the tree DIR (default: the current directory) and
makes it the root. It refuses to run outside a private mount namespace (so
running it on the host by mistake changes nothing), refuses / and any
directory without bin/sh or usr/bin/sh, and then, with mount events no
longer propagating to or from the host:

  /proc       proc (nosuid,noexec,nodev); /proc/sys read-only
  /sys        sysfs, read-only; /sys/fs/selinux read-only where the host has it
  /dev        tmpfs (mode 755) with null zero full random urandom tty (the
              host's device numbers), a fresh devpts instance on /dev/pts,
              /dev/ptmx, /dev/shm, /dev/fd and /dev/std{in,out,err};
              /dev/console bound to the terminal on stdin (see --console)
  /run        tmpfs (mode 755)
  /etc/localtime  the host's, read-only, where both exist

Targets are resolved inside DIR: a symlink in the tree never leads a mount
onto the host. The root is switched with pivot_root and the old root
detached (MS_MOVE + chroot only where pivot_root is impossible, as on an
initramfs). In a private UTS namespace the hostname becomes the basename of
DIR (or --hostname).

The console: with --console=interactive, read-only or passive, or with
autopipe (the default) when stdin and stdout are terminals, the terminal on
stdin (spawn-relay's pty) is bound over /dev/console; with pipe nothing is.
When spawn-rootfs runs as PID 1 (under spawn-ns) it then makes a new
session whose controlling terminal is /dev/console, taking it from the
session that had it, and makes /dev/console its stdin, stdout and stderr:
PROG then gets ^C and ^Z as a shell at a terminal does. Without spawn-relay
in front, at your own terminal, pass --console=pipe, or your shell's
terminal is taken.

PROG is then looked up inside the new root, except a spawn-* program, which
is taken from the host installation (beside spawn-rootfs, then in PATH),
opened before the switch and executed by descriptor: the tree needs none of
our binaries.

Exit status: 125 if spawn-rootfs failed; 126/127 if PROG could not be
executed or found; otherwise it is PROG.

Example:
  unshare -m -u -- spawn-rootfs -D /srv/tree --hostname t1 -- /bin/sh -c 'hostname'`

// Stage is spawn-rootfs.
var Stage = &chain.Stage{
	Name:        "spawn-rootfs",
	Usage:       "mount API file systems and /dev in DIR, switch root into it, exec PROG",
	Description: description,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "directory", Aliases: []string{"D"}, Usage: "the OS tree `DIR` (default: the current directory)"},
		&cli.StringFlag{Name: "hostname", Usage: "hostname in the container (default: the basename of DIR)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no informational messages"},
		// Same name as spawn-relay's: the front door hands it to both.
		&cli.StringFlag{Name: "console", Value: string(pty.AutoPipe), Usage: "connect the console as `MODE`: interactive, read-only, passive, pipe or autopipe"},
	},
	Action: run,
}

func run(c *cli.Context, prog []string) error {
	if err := chain.NeedProg("spawn-rootfs", prog); err != nil {
		return err
	}
	mode, err := pty.ParseConsole(c.String("console"))
	if err != nil {
		return chain.Failf("%w", err)
	}
	var console *os.File
	if mode.Resolve() != pty.Pipe && pty.IsTerminal(0) {
		console = os.Stdin
	}
	dir, err := Tree(c.String("directory"))
	if err != nil {
		return err
	}
	hostname := c.String("hostname")
	if hostname == "" {
		hostname = filepath.Base(dir)
	}
	if len(hostname) > 64 {
		return chain.Failf("hostname %q: longer than 64 characters", hostname)
	}
	if err := chain.NeedRoot("setting up a root file system"); err != nil {
		return err
	}
	if private, err := namespace.Private("mnt"); err != nil {
		return chain.Failf("find the mount namespace: %w", err)
	} else if !private {
		return chain.Failf("not in a private mount namespace: refusing to change the host's mounts (run under spawn-ns or unshare -m)")
	}
	privateUTS, err := namespace.Private("uts")
	if err != nil {
		return chain.Failf("find the UTS namespace: %w", err)
	}

	next := -1
	if chain.IsStage(prog[0]) {
		p, err := chain.FindStage(prog[0])
		if err != nil {
			return err
		}
		if next, err = unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0); err != nil {
			return chain.Failf("open %s: %w", p, err)
		}
	}

	if err := Setup(dir, console); err != nil {
		return chain.Failf("%w", err)
	}
	if privateUTS {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			return chain.Failf("set hostname %q: %w", hostname, err)
		}
	} else if !c.Bool("quiet") {
		fmt.Fprintln(c.App.ErrWriter, "spawn-rootfs: not in a private UTS namespace: hostname left unchanged")
	}
	// PID 1 is the container's session leader: ^C and ^Z on the console
	// reach its foreground job. The relay's session had the pty so far.
	if console != nil && os.Getpid() == 1 {
		if err := pty.TakeConsole("/dev/console"); err != nil {
			return chain.Failf("%w", err)
		}
	}
	if next >= 0 {
		return chain.ExecFD(next, prog, os.Environ())
	}
	return chain.Exec(prog, os.Environ(), os.Getenv("PATH"))
}

// Tree checks that dir is usable as a container's tree and returns it
// absolute.
func Tree(dir string) (string, error) {
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", chain.Failf("%s: %w", dir, err)
	}
	if abs == "/" {
		return "", chain.Failf("%s: refusing the host's own root as the container's tree", dir)
	}
	st, err := os.Stat(abs)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", chain.Failf("%s: %w", abs, err)
	}
	if !st.IsDir() {
		return "", chain.Failf("%s: not a directory", abs)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil && real == "/" {
		return "", chain.Failf("%s: refusing the host's own root as the container's tree", dir)
	}
	for _, sh := range []string{"bin/sh", "usr/bin/sh"} {
		if _, err := os.Lstat(filepath.Join(abs, sh)); err == nil {
			return abs, nil
		}
	}
	return "", chain.Failf("%s: not an OS tree (no bin/sh or usr/bin/sh)", abs)
}

// Setup mounts everything in dir and switches root into it. console, when
// not nil and a terminal, is bound over /dev/console.
func Setup(dir string, console *os.File) error {
	if err := mount.MakePrivate(); err != nil {
		return err
	}
	// pivot_root needs the new root to be a mount point.
	if err := mount.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	r, err := mount.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, step := range []func(*mount.Root) error{mountProc, mountSys, mountDev, mountRun, bindLocaltime} {
		if err := step(r); err != nil {
			return err
		}
	}
	if console != nil && pty.IsTerminal(int(console.Fd())) {
		if err := bindConsole(r, console); err != nil {
			return err
		}
	}
	return r.SwitchRoot()
}

const (
	nosuidNodevNoexec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
)

func mountProc(r *mount.Root) error {
	if err := r.MkdirAll("/proc", 0o555); err != nil {
		return err
	}
	if err := r.Mount("proc", "/proc", "proc", nosuidNodevNoexec, ""); err != nil {
		return err
	}
	return r.BindReadOnly("/proc/sys", 0)
}

func mountSys(r *mount.Root) error {
	if err := r.MkdirAll("/sys", 0o555); err != nil {
		return err
	}
	if err := r.Mount("sysfs", "/sys", "sysfs", nosuidNodevNoexec|unix.MS_RDONLY, ""); err != nil {
		return err
	}
	var sfs unix.Statfs_t
	if unix.Statfs("/sys/fs/selinux", &sfs) == nil && sfs.Type == unix.SELINUX_MAGIC {
		return r.BindFrom("/sys/fs/selinux", "/sys/fs/selinux", true, 0)
	}
	return nil
}

// devices are the nodes /dev holds, with the host's numbers.
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

func mountDev(r *mount.Root) error {
	if err := r.MkdirAll("/dev", 0o755); err != nil {
		return err
	}
	if err := r.Mount("tmpfs", "/dev", "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755"); err != nil {
		return err
	}
	for _, name := range devices {
		var st unix.Stat_t
		host := "/dev/" + name
		if err := unix.Stat(host, &st); err != nil {
			return &fs.PathError{Op: "stat", Path: host, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR {
			return fmt.Errorf("%s: not a character device on the host", host)
		}
		if err := r.Mknod(host, unix.S_IFCHR|0o666, st.Rdev); err != nil {
			return err
		}
		// mknod applies the umask; the nodes must be usable by anyone.
		if err := chmodIn(r, host, 0o666); err != nil {
			return err
		}
	}
	// A devpts instance of our own: the host's other ptys stay invisible.
	if err := r.MkdirAll("/dev/pts", 0o755); err != nil {
		return err
	}
	if err := r.Mount("devpts", "/dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620,gid=5"); err != nil {
		return err
	}
	for _, l := range [][2]string{
		{"pts/ptmx", "/dev/ptmx"},
		{"/proc/self/fd", "/dev/fd"},
		{"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"},
		{"/proc/self/fd/2", "/dev/stderr"},
	} {
		if err := r.Symlink(l[0], l[1]); err != nil {
			return err
		}
	}
	if err := r.MkdirAll("/dev/shm", 0o1777); err != nil {
		return err
	}
	return r.Mount("tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_STRICTATIME, "mode=1777")
}

func chmodIn(r *mount.Root, p string, mode uint32) error {
	fd, err := r.Open(p)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// An O_PATH descriptor cannot be fchmod'ed; its /proc link can.
	if err := unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", fd), mode); err != nil {
		return &fs.PathError{Op: "chmod", Path: r.HostPath(p), Err: err}
	}
	return nil
}

func mountRun(r *mount.Root) error {
	if err := r.MkdirAll("/run", 0o755); err != nil {
		return err
	}
	return r.Mount("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_STRICTATIME, "mode=755")
}

func bindLocaltime(r *mount.Root) error {
	if _, err := os.Stat("/etc/localtime"); err != nil {
		return nil
	}
	if !r.Exists("/etc/localtime") {
		return nil
	}
	return r.BindFrom("/etc/localtime", "/etc/localtime", true, 0)
}

// bindConsole binds the terminal open on console over /dev/console. That
// descriptor was opened in the caller's mount namespace, and the kernel
// refuses a bind from a mount of another namespace (EINVAL): the terminal
// is opened again by its path in ours, and bound once it is proved to be
// the same file.
func bindConsole(r *mount.Root, console *os.File) error {
	fdPath := fmt.Sprintf("/proc/self/fd/%d", console.Fd())
	p, err := os.Readlink(fdPath)
	if err != nil {
		return fmt.Errorf("find the terminal on stdin: %w", err)
	}
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("terminal on stdin: open %s: %w", p, err)
	}
	defer unix.Close(fd)
	var want, got unix.Stat_t
	if err := unix.Stat(fdPath, &want); err != nil {
		return fmt.Errorf("terminal on stdin: stat: %w", err)
	}
	if err := unix.Fstat(fd, &got); err != nil {
		return fmt.Errorf("terminal on stdin: stat %s: %w", p, err)
	}
	if got.Dev != want.Dev || got.Ino != want.Ino {
		return fmt.Errorf("terminal on stdin: %s is another file in this mount namespace", p)
	}
	if err := r.CreateFile("/dev/console", 0o600); err != nil {
		return err
	}
	return r.BindFrom(fmt.Sprintf("/proc/self/fd/%d", fd), "/dev/console", false, 0)
}
