// Package mount makes the container's mounts. Targets inside the tree are
// resolved with openat2(RESOLVE_IN_ROOT) and mounted through
// /proc/self/fd/N, so a hostile tree whose dev, proc or etc/localtime is a
// symlink to a host path can never make us mount onto the host: a symlink
// is followed, but only inside the tree.
package mount

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

var flagNames = []struct {
	flag uintptr
	name string
}{
	{unix.MS_RDONLY, "ro"},
	{unix.MS_NOSUID, "nosuid"},
	{unix.MS_NODEV, "nodev"},
	{unix.MS_NOEXEC, "noexec"},
	{unix.MS_SYNCHRONOUS, "sync"},
	{unix.MS_REMOUNT, "remount"},
	{unix.MS_MANDLOCK, "mand"},
	{unix.MS_DIRSYNC, "dirsync"},
	{unix.MS_NOATIME, "noatime"},
	{unix.MS_NODIRATIME, "nodiratime"},
	{unix.MS_BIND, "bind"},
	{unix.MS_MOVE, "move"},
	{unix.MS_REC, "rec"},
	{unix.MS_SILENT, "silent"},
	{unix.MS_UNBINDABLE, "unbindable"},
	{unix.MS_PRIVATE, "private"},
	{unix.MS_SLAVE, "slave"},
	{unix.MS_SHARED, "shared"},
	{unix.MS_RELATIME, "relatime"},
	{unix.MS_STRICTATIME, "strictatime"},
}

// FlagString renders mount flags by name, e.g. "bind,rec" or "nosuid,nodev".
func FlagString(flags uintptr) string {
	var names []string
	for _, f := range flagNames {
		if flags&f.flag != 0 {
			names = append(names, f.name)
			flags &^= f.flag
		}
	}
	if flags != 0 {
		names = append(names, fmt.Sprintf("%#x", flags))
	}
	if len(names) == 0 {
		return "defaults"
	}
	return strings.Join(names, ",")
}

// Error is a failed mount, naming the operation the way mount(8) would.
type Error struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
	Err                    error
}

func (e *Error) Error() string {
	what := e.FSType
	if e.Flags&(unix.MS_BIND|unix.MS_MOVE) != 0 || what == "" {
		what = e.Source
	}
	opts := FlagString(e.Flags)
	if e.Data != "" {
		opts += "," + e.Data
	}
	if what == "" { // a remount or a propagation change names no source
		return fmt.Sprintf("mount on %s (%s): %v", e.Target, opts, e.Err)
	}
	return fmt.Sprintf("mount %s on %s (%s): %v", what, e.Target, opts, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Mount is mount(2) with an error that names everything involved.
func Mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &Error{Source: source, Target: target, FSType: fstype, Flags: flags, Data: data, Err: err}
	}
	return nil
}

// Root is an OS tree being prepared. Paths given to its methods are inside
// the tree ("/dev/null"), whatever symlinks the tree holds.
type Root struct {
	Dir string // absolute host path of the tree
	fd  int
}

// OpenRoot opens dir as the root that later paths are resolved in. Open it
// after anything is mounted on dir itself, or walks from it would not see
// that mount.
func OpenRoot(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	return &Root{Dir: dir, fd: fd}, nil
}

// Close releases the root's descriptor.
func (r *Root) Close() error { return unix.Close(r.fd) }

// HostPath is where p lies on the host, for messages.
func (r *Root) HostPath(p string) string { return path.Join(r.Dir, p) }

func (r *Root) open(p string, flags uint64) (int, error) {
	how := unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	rel := strings.TrimLeft(p, "/")
	if rel == "" {
		rel = "."
	}
	for {
		fd, err := unix.Openat2(r.fd, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: r.HostPath(p), Err: err}
		}
		return fd, nil
	}
}

// Open opens p inside the tree as an O_PATH descriptor.
func (r *Root) Open(p string) (int, error) { return r.open(p, unix.O_PATH) }

// inParent runs f on the descriptor of p's directory, resolved in the tree,
// and p's last element, taken as it is (for the *at system calls).
func (r *Root) inParent(p string, f func(dirfd int, base string) error) error {
	dir, base := path.Split(path.Clean("/" + p))
	fd, err := r.Open(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return f(fd, base)
}

// Lstat reports on p inside the tree, not following a final symlink.
func (r *Root) Lstat(p string) (*unix.Stat_t, error) {
	var st unix.Stat_t
	err := r.inParent(p, func(fd int, base string) error {
		if err := unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &fs.PathError{Op: "stat", Path: r.HostPath(p), Err: err}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// Stat reports on p inside the tree, following symlinks inside it.
func (r *Root) Stat(p string) (*unix.Stat_t, error) {
	fd, err := r.Open(p)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: r.HostPath(p), Err: err}
	}
	return &st, nil
}

// Exists reports whether p exists inside the tree.
func (r *Root) Exists(p string) bool {
	_, err := r.Stat(p)
	return err == nil
}

// Resolve follows p inside the tree the way the kernel does with
// RESOLVE_IN_ROOT (symlinks, absolute or relative, and "..", never above
// the tree's root) and returns the in-tree path it leads to, free of
// symlinks. From the first component that does not exist on, the rest is
// kept as written: it is what MkdirAll and CreateFile are to make. A
// symlink to a missing path thus leads to where its target is to be made,
// inside the tree, as nspawn's chase does.
func (r *Root) Resolve(p string) (string, error) {
	todo := strings.Split(p, "/")
	cur, links := "/", 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		st, err := r.Lstat(next)
		if errors.Is(err, unix.ENOENT) {
			return path.Join(append([]string{next}, todo...)...), nil
		}
		if err != nil {
			return "", err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			cur = next
			continue
		}
		if links++; links > 40 {
			return "", &fs.PathError{Op: "resolve", Path: r.HostPath(p), Err: unix.ELOOP}
		}
		target, err := r.Readlink(next)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return cur, nil
}

// MkdirAll creates p and its missing parents inside the tree, following
// symlinks inside the tree (see Resolve).
func (r *Root) MkdirAll(p string, mode uint32) error {
	resolved, err := r.Resolve(p)
	if err != nil {
		return err
	}
	return r.mkdirAll(resolved, mode)
}

// mkdirAll creates the components of p, a resolved path, that are missing.
func (r *Root) mkdirAll(p string, mode uint32) error {
	if p == "/" {
		return nil
	}
	st, err := r.Lstat(p)
	if err == nil {
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return &fs.PathError{Op: "mkdir", Path: r.HostPath(p), Err: unix.ENOTDIR}
		}
		return nil
	}
	if !errors.Is(err, unix.ENOENT) {
		return err
	}
	dir, base := path.Split(p)
	if err := r.mkdirAll(path.Clean(dir), 0o755); err != nil {
		return err
	}
	fd, err := r.Open(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Mkdirat(fd, base, mode); err != nil && !errors.Is(err, unix.EEXIST) {
		return &fs.PathError{Op: "mkdir", Path: r.HostPath(p), Err: err}
	}
	return nil
}

// CreateFile creates an empty regular file at p (a bind-mount target) if
// nothing is there, following symlinks inside the tree (see Resolve).
func (r *Root) CreateFile(p string, mode uint32) error {
	resolved, err := r.Resolve(p)
	if err != nil {
		return err
	}
	dir, base := path.Split(resolved)
	if base == "" {
		return nil // the root
	}
	if err := r.mkdirAll(path.Clean(dir), 0o755); err != nil {
		return err
	}
	fd, err := r.Open(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// O_EXCL: whatever is there already is left alone (an open for writing
	// would block on a FIFO); the mount resolves it in the tree.
	nfd, err := unix.Openat(fd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil
		}
		return &fs.PathError{Op: "create", Path: r.HostPath(resolved), Err: err}
	}
	return unix.Close(nfd)
}

// Mknod creates a device node at p inside the tree.
func (r *Root) Mknod(p string, mode uint32, dev uint64) error {
	return r.inParent(p, func(fd int, base string) error {
		if err := unix.Mknodat(fd, base, mode, int(dev)); err != nil {
			return &fs.PathError{Op: "mknod", Path: r.HostPath(p), Err: err}
		}
		return nil
	})
}

// Remove removes the file p inside the tree.
func (r *Root) Remove(p string) error {
	return r.inParent(p, func(fd int, base string) error {
		if err := unix.Unlinkat(fd, base, 0); err != nil {
			return &fs.PathError{Op: "remove", Path: r.HostPath(p), Err: err}
		}
		return nil
	})
}

// Symlink creates a symlink at p inside the tree pointing to target.
func (r *Root) Symlink(target, p string) error {
	return r.inParent(p, func(fd int, base string) error {
		if err := unix.Symlinkat(target, fd, base); err != nil {
			return &fs.PathError{Op: "symlink", Path: r.HostPath(p), Err: err}
		}
		return nil
	})
}

// Mount mounts source (a host path, or a file system name) on p inside the
// tree. The error names p as the container sees it.
func (r *Root) Mount(source, p, fstype string, flags uintptr, data string) error {
	fd, err := r.Open(p)
	if err != nil {
		return &Error{Source: source, Target: p, FSType: fstype, Flags: flags, Data: data, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Mount(source, procFD(fd), fstype, flags, data); err != nil {
		return &Error{Source: source, Target: p, FSType: fstype, Flags: flags, Data: data, Err: err}
	}
	return nil
}

// BindReadOnly binds p inside the tree onto itself and makes that read-only
// (a bind mount ignores MS_RDONLY until remounted).
func (r *Root) BindReadOnly(p string, extra uintptr) error {
	fd, err := r.Open(p)
	if err != nil {
		return &Error{Source: p, Target: p, Flags: unix.MS_BIND | unix.MS_REC, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Mount(procFD(fd), procFD(fd), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return &Error{Source: p, Target: p, Flags: unix.MS_BIND | unix.MS_REC, Err: err}
	}
	return r.Remount(p, unix.MS_RDONLY|extra)
}

// BindFrom binds the host path src onto p inside the tree, read-only with
// ro; src may itself be a /proc/self/fd link.
func (r *Root) BindFrom(src, p string, ro bool, extra uintptr) error {
	if err := r.Mount(src, p, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	if ro {
		return r.Remount(p, unix.MS_RDONLY|extra)
	}
	return nil
}

// Remount changes the per-mount flags of the bind mount at p, keeping the
// locked ones (nosuid, nodev, noexec) that the mount already has.
func (r *Root) Remount(p string, flags uintptr) error {
	fd, err := r.Open(p)
	if err != nil {
		return &Error{Target: p, Flags: unix.MS_REMOUNT | unix.MS_BIND | flags, Err: err}
	}
	defer unix.Close(fd)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err == nil {
		flags |= uintptr(sfs.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	}
	flags |= unix.MS_REMOUNT | unix.MS_BIND
	if err := unix.Mount("", procFD(fd), "", flags, ""); err != nil {
		return &Error{Target: p, Flags: flags, Err: err}
	}
	return nil
}

func procFD(fd int) string { return ProcFD(fd) }

// ProcFD is the /proc/self/fd path that names descriptor fd, usable as a
// mount source or target.
func ProcFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// MakePrivate stops mount events crossing between the container's mount
// namespace and the host's in either direction; pivot_root also refuses
// a shared root.
func MakePrivate() error {
	return Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
}

// SwitchRoot makes the tree (a mount point) the root of this mount
// namespace: pivot_root and a lazy unmount of the old root, which leaves no
// path back to the host. Where pivot_root is impossible (an initramfs root
// cannot be pivoted) it falls back to MoveRoot.
func (r *Root) SwitchRoot() error {
	if err := unix.Fchdir(r.fd); err != nil {
		return fmt.Errorf("chdir %s: %w", r.Dir, err)
	}
	err := unix.PivotRoot(".", ".")
	switch {
	case err == nil:
		if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detach the old root: %w", err)
		}
	case errors.Is(err, unix.EINVAL):
		if merr := r.MoveRoot(); merr != nil {
			return fmt.Errorf("pivot_root %s: %v, and the fallback failed: %w", r.Dir, err, merr)
		}
	default:
		return fmt.Errorf("pivot_root %s: %w", r.Dir, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// InsidePath checks p as a path inside the tree given on a command line:
// absolute, with no ".." (the kernel would keep it inside the tree, but a
// path that means to leave the tree is a mistake or an attack either way).
// It returns p cleaned.
func InsidePath(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("%s: not an absolute path", p)
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return "", fmt.Errorf("%s: \"..\" is not allowed in a path inside the tree", p)
		}
	}
	return path.Clean(p), nil
}

// ReadOnly makes the mount at p read-only, with the mounts below it when
// recursive (mount_setattr; before Linux 5.12, the top mount only).
func (r *Root) ReadOnly(p string, recursive bool) error {
	fd, err := r.Open(p)
	if err != nil {
		return &Error{Target: p, Flags: unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY, Err: err}
	}
	defer unix.Close(fd)
	flags := uint(unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	err = unix.MountSetattr(fd, "", flags, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
	if errors.Is(err, unix.ENOSYS) {
		return r.Remount(p, unix.MS_RDONLY)
	}
	if err != nil {
		return &Error{Target: p, Flags: unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY, Err: err}
	}
	return nil
}

// Readlink reads the symlink at p inside the tree.
func (r *Root) Readlink(p string) (string, error) {
	var target string
	err := r.inParent(p, func(fd int, base string) error {
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(fd, base, buf)
		if err != nil {
			return &fs.PathError{Op: "readlink", Path: r.HostPath(p), Err: err}
		}
		target = string(buf[:n])
		return nil
	})
	return target, err
}

// WriteFile puts a regular file holding data at p inside the tree,
// replacing whatever file or symlink is there in one rename, so that the
// payload never sees a half-written file. p's directory must exist.
func (r *Root) WriteFile(p string, data []byte, mode uint32) error {
	dir, base := path.Split(path.Clean("/" + p))
	dfd, err := r.open(dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	tmp := fmt.Sprintf(".#%s.spawn-%d", base, unix.Getpid())
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return &fs.PathError{Op: "create", Path: r.HostPath(path.Join(dir, tmp)), Err: err}
	}
	werr := writeAll(fd, data)
	if werr == nil {
		werr = unix.Fchmod(fd, mode) // the umask applied at creation
	}
	if cerr := unix.Close(fd); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = unix.Renameat(dfd, tmp, dfd, base)
	}
	if werr != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return &fs.PathError{Op: "write", Path: r.HostPath(p), Err: werr}
	}
	return nil
}

func writeAll(fd int, data []byte) error {
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// MoveRoot is the root switch where pivot_root is impossible: the tree is
// moved over / and chrooted into. The old root stays reachable underneath
// for a process with CAP_SYS_ADMIN, so this is the fallback only.
func (r *Root) MoveRoot() error {
	if err := unix.Fchdir(r.fd); err != nil {
		return fmt.Errorf("chdir %s: %w", r.Dir, err)
	}
	if err := Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return err
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot %s: %w", r.Dir, err)
	}
	return unix.Chdir("/")
}
