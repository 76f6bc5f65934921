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
	"strings"

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

  /           DIR (bound onto itself), or as -x / --volatile say
  /proc       proc (nosuid,noexec,nodev); /proc/sys read-only; kcore, keys,
              sysrq-trigger, timer_list and kallsyms covered by an empty
              read-only file; acpi, bus, fs, irq and scsi read-only (a mask
              that fails is fatal)
  /sys        sysfs, read-only; /sys/fs/selinux read-only where the host has it
  /dev        tmpfs (mode 755) with null zero full random urandom tty (the
              host's device numbers), a fresh devpts instance on /dev/pts,
              /dev/ptmx, /dev/shm, /dev/fd and /dev/std{in,out,err};
              /dev/console bound to the terminal on stdin (see --console)
  /run        tmpfs (mode 755)
  /etc/localtime, /etc/resolv.conf   as --timezone and --resolv-conf say
  then the --bind, --tmpfs, --overlay and --inaccessible mounts, parents
  before children (sorted by destination)

Every destination is resolved inside DIR (openat2 RESOLVE_IN_ROOT, mounted
through /proc/self/fd): a symlink in the tree never leads a mount onto the
host. A destination must be absolute and may not contain "..". Sources are
host paths (relative ones taken from the working directory), or, written
"+PATH", paths inside the tree. In a path, "\:" is a colon.

  --bind=SRC[:DST[:OPTS]]   bind SRC on DST (default: the same path),
                            recursively; OPTS "norbind" binds SRC alone.
                            DST is created when missing: a directory or an
                            empty file, to match SRC. --bind-ro: read-only
                            (recursively), writes fail with EROFS.
  --tmpfs=DST[:OPTS]        a tmpfs, nodev, mode 0755 unless OPTS (mount
                            flags like ro,nosuid,noexec and tmpfs options
                            like size=64M,mode=1777,uid=,gid=) say otherwise
  --overlay=LOWER[:LOWER...]:UPPER:DST
                            an overlay of the host directories, lowest
                            first; writes go to UPPER, with a work
                            directory .#NAME.spawn-work beside it. An empty
                            UPPER is a tmpfs: "--overlay=+/usr::/usr" makes
                            the tree's /usr writable for this run only.
                            With two paths, the second is also DST.
                            --overlay-ro: every layer a lower one, read-only.
  --inaccessible=PATH       PATH (which must exist) covered with an empty
                            node of its type, mode 000, read-only

The root:
  --read-only               the root mount is made read-only last (mount
                            points missing for the options above are made
                            first); /proc, /dev, /run and the option mounts
                            keep their own flags
  -x, --ephemeral           DIR under an overlay whose upper layer is a
                            tmpfs: the payload may write anywhere, nothing
                            reaches DIR, and several runs may share one DIR
  --volatile=MODE           yes: the root is a tmpfs holding only DIR's
                            /usr, read-only (and DIR's top-level symlinks
                            into it, like bin -> usr/bin); state: DIR
                            read-only with a tmpfs on /var; overlay: as -x;
                            no: DIR itself (default). A bare --volatile is
                            yes. Not with -x.

Files in /etc:
  --timezone=MODE           /etc/localtime. off: left alone; copy: the
                            host's zone written into the tree; bind: the
                            host's bound read-only over the tree's; auto
                            (default): bind where both exist
  --resolv-conf=MODE        /etc/resolv.conf. off: left alone; copy-host:
                            the host's copied in, unless the tree's is not
                            a regular file; bind-host: the host's bound
                            read-only over it; auto (default): off in a
                            private network namespace or when the tree's is
                            not a regular file, else bind-host with a
                            read-only root (if the tree has one) and
                            copy-host otherwise
  The copy modes write into DIR (into the overlay with -x), and are refused
  with a read-only root.

Identity:
  -M, --machine=NAME        the machine name, which becomes the hostname
                            unless --hostname is given: 1 to 64 letters,
                            digits, "-" and "_", in dot-separated labels
  --hostname=NAME           the hostname (default: the machine name, else
                            the basename of DIR), set only in a private UTS
                            namespace
  --uuid=UUID               exported to PROG as container_uuid=UUID
                            (8-4-4-4-12 form, lower case; 32 hex digits
                            accepted with or without dashes, not all zero).
                            A container_uuid in spawn-rootfs's own
                            environment is never passed on; spawn-caps keeps
                            this one in the payload's environment.

The root is switched with pivot_root and the old root detached (MS_MOVE +
chroot only where pivot_root is impossible, as on an initramfs).

The console: with --console=interactive, read-only or passive, or with
autopipe (the default) when stdin and stdout are terminals, the terminal on
stdin (spawn-relay's pty) is bound over /dev/console; with pipe nothing is.
When spawn-rootfs runs in a PID namespace of its own (as PID 1 under
spawn-ns) it then makes a new session whose controlling terminal is
/dev/console, taking it from the session that had it, and makes
/dev/console its stdin, stdout and stderr: PROG then gets ^C and ^Z as a
shell at a terminal does. (As PID 2 under spawn-ns --as-pid2, whose init
gave it a process group of its own in the foreground, it keeps the session
it is in.) Without spawn-relay in front, at your own terminal, pass
--console=pipe, or your shell's terminal is taken.

PROG is then looked up inside the new root, except a spawn-* program, which
is taken from the host installation (beside spawn-rootfs, then in PATH),
opened before the switch and executed by descriptor: the tree needs none of
our binaries.

Exit status: 125 if spawn-rootfs failed (a bad option, a missing source, a
failed mount: one line naming the option and the path); 126/127 if PROG
could not be executed or found; otherwise it is PROG.

Examples:
  unshare -m -u -- spawn-rootfs -D /srv/tree --hostname t1 -- /bin/sh -c 'hostname'
  spawn-ns -- spawn-rootfs -x -D /srv/debian --bind=$PWD:/src -- \
    spawn-caps --chdir=/src -- make`

// Stage is spawn-rootfs.
var Stage = &chain.Stage{
	Name:        "spawn-rootfs",
	Usage:       "mount API file systems and /dev in DIR, switch root into it, exec PROG",
	Description: description,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "directory", Aliases: []string{"D"}, Usage: "the OS tree `DIR` (default: the current directory)"},
		&cli.StringFlag{Name: "hostname", Usage: "hostname in the container (default: the machine name, else the basename of DIR)"},
		&cli.StringFlag{Name: "machine", Aliases: []string{"M"}, Usage: "machine `NAME` (the hostname unless --hostname)"},
		&cli.StringFlag{Name: "uuid", Usage: "container `UUID`, exported to the payload as container_uuid"},
		&cli.StringSliceFlag{Name: "bind", Usage: "bind the host's `SRC[:DST[:OPTS]]` into the tree (OPTS: rbind, norbind)"},
		&cli.StringSliceFlag{Name: "bind-ro", Usage: "the same, read-only: `SRC[:DST[:OPTS]]`"},
		&cli.StringSliceFlag{Name: "tmpfs", Usage: "a tmpfs on `DST[:OPTS]` (default mode=0755)"},
		&cli.StringSliceFlag{Name: "overlay", Usage: "an overlay of `LOWER[:LOWER...]:UPPER:DST`, lowest first (empty UPPER: a tmpfs)"},
		&cli.StringSliceFlag{Name: "overlay-ro", Usage: "a read-only overlay of `LOWER[:LOWER...]:DST`"},
		&cli.StringSliceFlag{Name: "inaccessible", Usage: "cover `PATH` in the tree with an empty node, mode 000"},
		&cli.BoolFlag{Name: "read-only", Usage: "mount the root read-only"},
		&cli.BoolFlag{Name: "ephemeral", Aliases: []string{"x"}, Usage: "run on a throw-away overlay of DIR; nothing reaches DIR"},
		&chain.OptionalFlag{StringFlag: cli.StringFlag{Name: "volatile", Usage: "the root from DIR's /usr only (`MODE` yes), DIR read-only with /var a tmpfs (state), as -x (overlay), or DIR (no); bare: yes"}, Bare: "yes"},
		&cli.StringFlag{Name: "resolv-conf", Value: "auto", Usage: "/etc/resolv.conf: `MODE` off, copy-host, bind-host or auto"},
		&cli.StringFlag{Name: "timezone", Value: "auto", Usage: "/etc/localtime: `MODE` off, copy, bind or auto"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no informational messages"},
		// Same name as spawn-relay's: the front door hands it to both.
		&cli.StringFlag{Name: "console", Value: string(pty.AutoPipe), Usage: "connect the console as `MODE`: interactive, read-only, passive, pipe or autopipe"},
		// For attack tests only: switch a defence off to prove the test
		// catches its absence. Hidden, and never passed on by spawn.
		&cli.StringSliceFlag{Name: "unsafe-disable", Hidden: true},
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
	takeConsole := console != nil
	dir, err := Tree(c.String("directory"))
	if err != nil {
		return err
	}
	hostname := c.String("hostname")
	if c.IsSet("machine") {
		if err := checkMachine(c.String("machine")); err != nil {
			return chain.Failf("%w", err)
		}
		if hostname == "" {
			hostname = c.String("machine")
		}
	}
	if hostname == "" {
		hostname = filepath.Base(dir)
	}
	if len(hostname) > 64 {
		return chain.Failf("hostname %q: longer than 64 characters", hostname)
	}
	env := withoutVar(os.Environ(), "container_uuid")
	if c.IsSet("uuid") {
		id, err := parseUUID(c.String("uuid"))
		if err != nil {
			return chain.Failf("%w", err)
		}
		env = append(env, "container_uuid="+id)
	}
	o, err := parseOptions(c)
	if err != nil {
		return chain.Failf("%w", err)
	}
	if err := chain.NeedRoot("setting up a root file system"); err != nil {
		return err
	}
	// A host binary about to run inside the container: keep its
	// /proc/PID/exe out of the container's reach (see spawn-caps).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return chain.Failf("make spawn-rootfs not dumpable: %w", err)
	}
	if private, err := namespace.Private("mnt"); err != nil {
		return chain.Failf("find the mount namespace: %w", err)
	} else if !private {
		return chain.Failf("not in a private mount namespace: refusing to change the host's mounts (run under spawn-ns or unshare -m)")
	}
	// The container's first process makes the container's session; a
	// spawn-rootfs run in the host's PID namespace leaves sessions alone.
	if privatePID, err := namespace.Private("pid"); err != nil {
		return chain.Failf("find the PID namespace: %w", err)
	} else if !privatePID {
		takeConsole = false
	}
	privateUTS, err := namespace.Private("uts")
	if err != nil {
		return chain.Failf("find the UTS namespace: %w", err)
	}
	if o.PrivateNet, err = namespace.Private("net"); err != nil {
		return chain.Failf("find the network namespace: %w", err)
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

	unsafe := map[string]bool{}
	for _, d := range c.StringSlice("unsafe-disable") {
		if d != "proc-masks" && d != "pivot-root" && d != "devpts" {
			return chain.Failf("--unsafe-disable=%q: want proc-masks, pivot-root or devpts", d)
		}
		unsafe[d] = true
	}
	if err := Setup(dir, o, console, unsafe); err != nil {
		return chain.Failf("%w", err)
	}
	if privateUTS {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			return chain.Failf("set hostname %q: %w", hostname, err)
		}
	} else if !c.Bool("quiet") {
		fmt.Fprintln(c.App.ErrWriter, "spawn-rootfs: not in a private UTS namespace: hostname left unchanged")
	}
	// The container's first process leads the container's session: ^C and
	// ^Z on the console reach its foreground job. The relay's session had
	// the pty so far.
	if takeConsole {
		if err := pty.TakeConsole("/dev/console"); err != nil {
			return chain.Failf("%w", err)
		}
	}
	if next >= 0 {
		return chain.ExecFD(next, prog, env)
	}
	return chain.Exec(prog, env, os.Getenv("PATH"))
}

// withoutVar is env without any NAME=... entry.
func withoutVar(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
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

// Setup mounts everything in dir as o says and switches root into it.
// console, when not nil and a terminal, is bound over /dev/console. o may be nil: the
// seed's defaults. unsafe names defences to leave out, for attack tests.
func Setup(dir string, o *Options, console *os.File, unsafe map[string]bool) error {
	if o == nil {
		o = &Options{ResolvConf: "off", Timezone: "auto"}
	}
	if err := mount.MakePrivate(); err != nil {
		return err
	}
	r, err := mountRoot(dir, o)
	if err != nil {
		return err
	}
	defer r.Close()
	steps := []func(*mount.Root) error{mountProc, mountSys, mountDev, mountRun, maskProc}
	if unsafe["proc-masks"] {
		steps = []func(*mount.Root) error{mountProc, mountSys, mountDev, mountRun}
	}
	for _, step := range steps {
		if err := step(r); err != nil {
			return err
		}
	}
	if err := timezone(r, o.Timezone); err != nil {
		return err
	}
	if err := resolvConf(r, o); err != nil {
		return err
	}
	if err := customMounts(r, o.Mounts); err != nil {
		return err
	}
	if unsafe["devpts"] {
		if err := r.Mount("/dev/pts", "/dev/pts", "", unix.MS_BIND, ""); err != nil {
			return err
		}
	}
	if console != nil && pty.IsTerminal(int(console.Fd())) {
		if err := bindConsole(r, console); err != nil {
			return err
		}
	}
	if o.readOnlyRoot() {
		// The root mount only: what is mounted on it keeps its own flags.
		if err := r.ReadOnly("/", false); err != nil {
			return err
		}
	}
	if unsafe["pivot-root"] {
		return r.MoveRoot()
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
	if err := unix.Chmod(mount.ProcFD(fd), mode); err != nil {
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
