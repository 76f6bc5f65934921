package rootfs

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"spawn/lib/mount"
)

// hostFile reads a host file for the container: nil, nil when missing.
func hostFile(p string) ([]byte, error) {
	data, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil, nil
	}
	return data, err
}

// timezone applies --timezone to the tree's /etc/localtime:
//
//	off   left as it is
//	copy  the host's zone written into the tree (a regular file)
//	bind  the host's file bound read-only over the tree's (created empty
//	      when missing)
//	auto  bind where both exist (the host's zone follows the host), else
//	      nothing
func timezone(r *mount.Root, mode string) error {
	const p = "/etc/localtime"
	if mode == "off" {
		return nil
	}
	if _, err := os.Stat(p); err != nil {
		if mode == "auto" {
			return nil
		}
		return fmt.Errorf("--timezone=%s: the host's %s: %w", mode, p, unwrapPath(err))
	}
	if mode == "auto" {
		if !r.Exists(p) {
			return nil
		}
		mode = "bind"
	}
	if !r.Exists("/etc") {
		return fmt.Errorf("--timezone=%s: %s: no /etc in the tree", mode, r.HostPath("/etc"))
	}
	if mode == "copy" {
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("--timezone=copy: %w", err)
		}
		return r.WriteFile(p, data, 0o644)
	}
	if err := r.CreateFile(p, 0o644); err != nil {
		return fmt.Errorf("--timezone=bind: %w", err)
	}
	return r.BindFrom(p, p, true, 0)
}

// resolvConf applies --resolv-conf to the tree's /etc/resolv.conf, as
// nspawn does with the host's file:
//
//	off        left as it is
//	copy-host  the host's copied in, unless the tree's is something other
//	           than a regular file (a symlink to a resolver's file, say)
//	bind-host  the host's bound read-only over the tree's (created empty
//	           when missing)
//	auto       off in a private network namespace (the host's servers are
//	           not reachable there) or when the tree's is not a regular
//	           file; else bind-host when the root is read-only (off if the
//	           tree has none: no mount point is made in a read-only tree),
//	           copy-host otherwise
func resolvConf(r *mount.Root, o *Options) error {
	const p = "/etc/resolv.conf"
	mode := o.ResolvConf
	if mode == "off" || mode == "auto" && o.PrivateNet {
		return nil
	}
	host, err := hostFile(p)
	if err != nil {
		return fmt.Errorf("--resolv-conf=%s: %w", mode, err)
	}
	if host == nil {
		if mode == "auto" {
			return nil
		}
		return fmt.Errorf("--resolv-conf=%s: the host has no %s", mode, p)
	}
	if !r.Exists("/etc") {
		if mode == "auto" {
			return nil
		}
		return fmt.Errorf("--resolv-conf=%s: %s: no /etc in the tree", mode, r.HostPath("/etc"))
	}
	st, err := r.Lstat(p)
	regular := err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG
	if err == nil && !regular && mode != "bind-host" {
		if mode == "copy-host" && !o.Quiet {
			fmt.Fprintf(os.Stderr, "spawn-rootfs: %s is not a regular file: left as it is\n", r.HostPath(p))
		}
		return nil
	}
	if mode == "auto" {
		mode = "copy-host"
		if o.readOnlyRoot() {
			if err != nil {
				return nil // no mount point, and a read-only tree is not written to
			}
			mode = "bind-host"
		}
	}
	if mode == "bind-host" {
		if err := r.CreateFile(p, 0o644); err != nil {
			return fmt.Errorf("--resolv-conf=bind-host: %w", err)
		}
		return r.BindFrom(p, p, true, 0)
	}
	if regular && sameContent(r, p, host) {
		return nil
	}
	return r.WriteFile(p, host, 0o644)
}

func sameContent(r *mount.Root, p string, data []byte) bool {
	fd, err := r.Open(p)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	g, err := os.Open(mount.ProcFD(fd))
	if err != nil {
		return false
	}
	defer g.Close()
	have, err := io.ReadAll(io.LimitReader(g, int64(len(data))+1))
	return err == nil && bytes.Equal(have, data)
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
