package rootfs

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"spawn/lib/mount"
)

// mountRoot makes DIR's mount point the container's root as o.Root says,
// and returns the tree opened on it.
func mountRoot(dir string, o *Options) (*mount.Root, error) {
	switch o.Root {
	case RootOverlay:
		if err := overlayRoot(dir); err != nil {
			return nil, err
		}
	case RootVolatile:
		if err := volatileRoot(dir); err != nil {
			return nil, err
		}
	default:
		// pivot_root needs the new root to be a mount point.
		if err := mount.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return nil, err
		}
	}
	r, err := mount.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	if o.Root == RootStateless {
		if err := mountTmpfs(r, "/var", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_STRICTATIME, "mode=0755"); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// overlayRoot puts an overlay on DIR whose lower layer is DIR and whose
// upper layer is in a tmpfs: the payload may write anywhere, nothing
// reaches DIR, and any number of these can use one DIR at once, each in
// its own mount namespace. The tmpfs holding the upper and work
// directories is mounted on DIR itself, under the overlay, so nothing is
// created on the host; DIR is reached below it through a descriptor.
func overlayRoot(dir string) error {
	lower, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(lower)
	var st unix.Stat_t
	if err := unix.Fstat(lower, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: dir, Err: err}
	}
	if err := mount.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700"); err != nil {
		return err
	}
	upper, work, err := upperWork(dir, st.Mode&0o7777, int(st.Uid), int(st.Gid))
	if err != nil {
		return err
	}
	defer unix.Close(upper)
	defer unix.Close(work)
	return mount.Mount("overlay", dir, "overlay", 0, overlayData([]int{lower}, upper, work))
}

// upperWork makes the upper and work directories of an overlay in the
// directory dir (a fresh tmpfs); the upper one gets the mode and owner the
// overlay's root is to have.
func upperWork(dir string, mode uint32, uid, gid int) (upper, work int, err error) {
	t, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, -1, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(t)
	for _, name := range []string{"upper", "work"} {
		if err := unix.Mkdirat(t, name, 0o700); err != nil {
			return -1, -1, &fs.PathError{Op: "mkdir", Path: dir + "/" + name, Err: err}
		}
	}
	if err := unix.Fchownat(t, "upper", uid, gid, 0); err != nil {
		return -1, -1, &fs.PathError{Op: "chown", Path: dir + "/upper", Err: err}
	}
	if err := unix.Fchmodat(t, "upper", mode, 0); err != nil {
		return -1, -1, &fs.PathError{Op: "chmod", Path: dir + "/upper", Err: err}
	}
	if upper, err = unix.Openat(t, "upper", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return -1, -1, &fs.PathError{Op: "open", Path: dir + "/upper", Err: err}
	}
	if work, err = unix.Openat(t, "work", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		unix.Close(upper)
		return -1, -1, &fs.PathError{Op: "open", Path: dir + "/work", Err: err}
	}
	return upper, work, nil
}

// overlayData is the overlay mount data for layers given as descriptors,
// lowers listed lowest first; upper < 0 makes a read-only overlay. Naming
// layers by /proc/self/fd needs no escaping of colons or commas in paths,
// and reaches directories that a mount now hides.
func overlayData(lowers []int, upper, work int) string {
	var ls []string
	for i := len(lowers) - 1; i >= 0; i-- { // overlayfs lists the top layer first
		ls = append(ls, mount.ProcFD(lowers[i]))
	}
	data := "lowerdir=" + strings.Join(ls, ":")
	if upper >= 0 {
		data += ",upperdir=" + mount.ProcFD(upper) + ",workdir=" + mount.ProcFD(work)
	}
	return data
}

// volatileRoot makes DIR's mount point a tmpfs holding only DIR's /usr,
// read-only, and the tree's top-level symlinks into it (bin -> usr/bin on
// a merged-/usr system): nspawn's --volatile=yes, an OS that boots from
// /usr alone.
func volatileRoot(dir string) error {
	orig, err := mount.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer orig.Close()
	usr, err := orig.Open("/usr")
	if err != nil {
		return fmt.Errorf("--volatile=yes: %w", err)
	}
	defer unix.Close(usr)
	var st unix.Stat_t
	if err := unix.Fstat(usr, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("--volatile=yes: %s: not a directory", orig.HostPath("/usr"))
	}
	links := map[string]string{}
	for _, name := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		if st, err := orig.Lstat("/" + name); err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			if target, err := orig.Readlink("/" + name); err == nil {
				links[name] = target
			}
		}
	}
	if err := mount.Mount("tmpfs", dir, "tmpfs", unix.MS_STRICTATIME, "mode=0755"); err != nil {
		return err
	}
	r, err := mount.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.MkdirAll("/usr", 0o755); err != nil {
		return err
	}
	if err := r.Mount(mount.ProcFD(usr), "/usr", "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := r.ReadOnly("/usr", true); err != nil {
		return err
	}
	for name, target := range links {
		if err := r.Symlink(target, "/"+name); err != nil {
			return err
		}
	}
	return nil
}

func mountTmpfs(r *mount.Root, p string, flags uintptr, data string) error {
	if err := r.MkdirAll(p, 0o755); err != nil {
		return err
	}
	return r.Mount("tmpfs", p, "tmpfs", flags, data)
}

// customMounts mounts the --bind, --tmpfs, --overlay and --inaccessible
// mounts, in order. Every destination is resolved inside the tree.
func customMounts(r *mount.Root, ms []*Custom) error {
	var stage *inaccessibleStage
	for _, m := range ms {
		if m.Kind == KindInaccessible && stage == nil {
			// Made before any of the mounts, which could cover /run.
			var err error
			if stage, err = newInaccessibleStage(r); err != nil {
				return err
			}
			defer stage.close()
		}
	}
	for _, m := range ms {
		var err error
		switch m.Kind {
		case KindBind:
			err = bind(r, m)
		case KindTmpfs:
			err = mountTmpfs(r, m.Dest, m.Flags, m.Data)
		case KindOverlay:
			err = overlay(r, m)
		case KindInaccessible:
			err = stage.apply(r, m)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", m.Option, err)
		}
	}
	if stage != nil {
		return stage.close()
	}
	return nil
}

// openSource opens a mount's source: a host path, or a "+" path inside
// the tree.
func openSource(r *mount.Root, src string) (int, error) {
	if in, ok := strings.CutPrefix(src, "+"); ok {
		return r.Open(in)
	}
	fd, err := unix.Open(src, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: src, Err: err}
	}
	return fd, nil
}

// bind binds the source onto the destination, which is created to match
// it (a directory, or an empty file) when missing.
func bind(r *mount.Root, m *Custom) error {
	src, err := openSource(r, m.Sources[0])
	if err != nil {
		return err
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: m.Sources[0], Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = r.MkdirAll(m.Dest, 0o755)
	} else {
		err = r.CreateFile(m.Dest, 0o644)
	}
	if err != nil {
		return err
	}
	flags := uintptr(unix.MS_BIND)
	if m.Recursive {
		flags |= unix.MS_REC
	}
	if err := r.Mount(mount.ProcFD(src), m.Dest, "", flags, ""); err != nil {
		return err
	}
	if m.ReadOnly {
		return r.ReadOnly(m.Dest, m.Recursive)
	}
	return nil
}

// overlay mounts an overlay of the layers on the destination. An empty
// upper layer is a tmpfs, mounted on the destination under the overlay; a
// host upper layer gets its work directory beside it (overlayfs needs one
// on the same file system), named .#NAME.spawn-work and kept for the next
// run.
func overlay(r *mount.Root, m *Custom) error {
	layers := m.Sources
	var lowers []int
	defer func() {
		for _, fd := range lowers {
			unix.Close(fd)
		}
	}()
	top := len(layers)
	if !m.ReadOnly {
		top--
	}
	// Open the lower layers first: "+/var::/var" has a lower layer that the
	// upper tmpfs is about to hide.
	for _, l := range layers[:top] {
		fd, err := openSource(r, l)
		if err != nil {
			return err
		}
		lowers = append(lowers, fd)
	}
	if err := r.MkdirAll(m.Dest, 0o755); err != nil {
		return err
	}
	upper, work := -1, -1
	if !m.ReadOnly {
		var err error
		upper, work, err = upperLayer(r, m.Dest, layers[top])
		if err != nil {
			return err
		}
		defer unix.Close(upper)
		defer unix.Close(work)
	}
	var flags uintptr
	if m.ReadOnly {
		flags = unix.MS_RDONLY
	}
	return r.Mount("overlay", m.Dest, "overlay", flags, overlayData(lowers, upper, work))
}

func upperLayer(r *mount.Root, dst, upper string) (int, int, error) {
	if upper == "" {
		st, err := r.Stat(dst)
		if err != nil {
			return -1, -1, err
		}
		if err := r.Mount("tmpfs", dst, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700"); err != nil {
			return -1, -1, err
		}
		fd, err := r.Open(dst)
		if err != nil {
			return -1, -1, err
		}
		defer unix.Close(fd)
		return upperWork(mount.ProcFD(fd), st.Mode&0o7777, int(st.Uid), int(st.Gid))
	}
	var workDir string
	if in, ok := strings.CutPrefix(upper, "+"); ok {
		w := path.Join(path.Dir(in), ".#"+path.Base(in)+".spawn-work")
		if err := r.MkdirAll(w, 0o700); err != nil {
			return -1, -1, err
		}
		workDir = "+" + w
	} else {
		workDir = filepath.Join(filepath.Dir(upper), ".#"+filepath.Base(upper)+".spawn-work")
		if err := unix.Mkdir(workDir, 0o700); err != nil && err != unix.EEXIST {
			return -1, -1, &fs.PathError{Op: "mkdir", Path: workDir, Err: err}
		}
	}
	u, err := openSource(r, upper)
	if err != nil {
		return -1, -1, err
	}
	w, err := openSource(r, workDir)
	if err != nil {
		unix.Close(u)
		return -1, -1, err
	}
	return u, w, nil
}

// inaccessibleStage holds the empty, mode 000 nodes that --inaccessible
// binds over files: a small tmpfs mounted at /run/.spawn-inaccessible
// while the custom mounts are made, then detached and its mount point
// removed, so the payload never sees it.
type inaccessibleStage struct {
	run, dir int // /run, and the stage's root
	nodes    map[uint32]int
}

const stageName = ".spawn-inaccessible"

func newInaccessibleStage(r *mount.Root) (*inaccessibleStage, error) {
	run, err := r.Open("/run")
	if err != nil {
		return nil, err
	}
	s := &inaccessibleStage{run: run, dir: -1, nodes: map[uint32]int{}}
	if err := r.MkdirAll("/run/"+stageName, 0o700); err != nil {
		s.close()
		return nil, err
	}
	if err := r.Mount("tmpfs", "/run/"+stageName, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0700"); err != nil {
		s.close()
		return nil, err
	}
	fd, err := r.Open("/run/" + stageName)
	if err != nil {
		s.close()
		return nil, err
	}
	// Directory descriptor: the nodes are made relative to it.
	if s.dir, err = unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		unix.Close(fd)
		s.close()
		return nil, &fs.PathError{Op: "open", Path: "/run/" + stageName, Err: err}
	}
	unix.Close(fd)
	return s, nil
}

// apply covers m.Dest (which must exist) with an empty node of its own
// type, mode 000, read-only: a directory gets a tmpfs, anything else a
// bind of a node from the stage.
func (s *inaccessibleStage) apply(r *mount.Root, m *Custom) error {
	st, err := r.Stat(m.Dest)
	if err != nil {
		return err
	}
	kind := st.Mode & unix.S_IFMT
	if kind == unix.S_IFDIR {
		return r.Mount("tmpfs", m.Dest, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=000")
	}
	node, ok := s.nodes[kind]
	if !ok {
		name := fmt.Sprintf("%o", kind)
		if kind == unix.S_IFREG {
			fd, err := unix.Openat(s.dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0)
			if err != nil {
				return &fs.PathError{Op: "create", Path: "/run/" + stageName + "/" + name, Err: err}
			}
			unix.Close(fd)
		} else if err := unix.Mknodat(s.dir, name, kind, 0); err != nil {
			return &fs.PathError{Op: "mknod", Path: "/run/" + stageName + "/" + name, Err: err}
		}
		if err := unix.Fchmodat(s.dir, name, 0, 0); err != nil {
			return &fs.PathError{Op: "chmod", Path: "/run/" + stageName + "/" + name, Err: err}
		}
		if node, err = unix.Openat(s.dir, name, unix.O_PATH|unix.O_CLOEXEC, 0); err != nil {
			return &fs.PathError{Op: "open", Path: "/run/" + stageName + "/" + name, Err: err}
		}
		s.nodes[kind] = node
	}
	if err := r.Mount(mount.ProcFD(node), m.Dest, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	return r.ReadOnly(m.Dest, false)
}

// close detaches the stage and removes its mount point; the binds made
// from it stay.
func (s *inaccessibleStage) close() error {
	var first error
	for _, fd := range s.nodes {
		unix.Close(fd)
	}
	s.nodes = map[uint32]int{}
	if s.dir >= 0 {
		if err := unix.Unmount(mount.ProcFD(s.dir), unix.MNT_DETACH); err != nil && first == nil {
			first = &fs.PathError{Op: "unmount", Path: "/run/" + stageName, Err: err}
		}
		unix.Close(s.dir)
		s.dir = -1
	}
	if s.run >= 0 {
		if err := unix.Unlinkat(s.run, stageName, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT && first == nil {
			first = &fs.PathError{Op: "rmdir", Path: "/run/" + stageName, Err: err}
		}
		unix.Close(s.run)
		s.run = -1
	}
	return first
}
