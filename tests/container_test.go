package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestInside checks, through each door, what a payload sees: its own
// namespaces and PID 1, the mount table and its flags, read-only /proc/sys
// and /sys, /dev, capabilities, environment, hostname, descriptors and
// exit codes; and that the host is unchanged afterwards.
func TestInside(t *testing.T) {
	for _, d := range doors {
		t.Run(d.name, func(t *testing.T) {
			tree := newTree(t, "inside-"+strings.ReplaceAll(d.name, " ", "-"))
			before := snapshot(t)
			hostname, _ := os.Hostname()
			enter := func(t *testing.T, prog ...string) result {
				t.Helper()
				return wait(t, d.cmd(t, tree, prog...))
			}
			ok := func(t *testing.T, prog ...string) string {
				t.Helper()
				r := enter(t, prog...)
				if r.Code != 0 {
					t.Fatalf("%q = %d, stderr %q", prog, r.Code, r.Stderr)
				}
				return r.Stdout
			}
			t.Run("namespaces", func(t *testing.T) { checkNamespaces(t, ok(t, "sh", "-c", nsScript), false) })
			t.Run("pid 1", func(t *testing.T) {
				if got := ok(t, "sh", "-c", "echo $$"); got != "1\n" {
					t.Errorf("$$ = %q, want 1", got)
				}
			})
			t.Run("mounts", func(t *testing.T) { checkMounts(t, tree, ok(t, "cat", "/proc/self/mountinfo")) })
			t.Run("read-only", func(t *testing.T) { checkReadOnly(t, enter) })
			t.Run("devices", func(t *testing.T) { checkDevices(t, ok(t, "sh", "-c", devScript)) })
			t.Run("capabilities", func(t *testing.T) {
				checkCaps(t, ok(t, "cat", "/proc/self/status"), retained(t), retained(t))
			})
			t.Run("environment", func(t *testing.T) {
				cmd := d.cmd(t, tree, "env")
				cmd.Env = append(cmd.Env, "SPAWN_LEAK_TEST=leaked", "LD_PRELOAD=/leaked.so", "HOME=/leaked", "USER=leaked")
				r := wait(t, cmd)
				want := []string{"HOME=/root", "LOGNAME=root", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
					"TERM=xterm-test", "USER=root", "container=spawn"}
				if got := strings.Fields(r.Stdout); r.Code != 0 || !slices.Equal(sorted(got), want) {
					t.Errorf("env = %d, %q, stderr %q; want %q", r.Code, got, r.Stderr, want)
				}
			})
			t.Run("hostname", func(t *testing.T) {
				if got, want := ok(t, "hostname"), filepath.Base(tree)+"\n"; got != want {
					t.Errorf("hostname = %q, want %q", got, want)
				}
			})
			t.Run("only fds 0-2", func(t *testing.T) {
				cmd := d.cmd(t, tree, "sh", "-c", "ls /proc/$$/fd; true")
				f, err := os.Open("/etc/hostname")
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				pr, pw, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer pr.Close()
				defer pw.Close()
				dir, err := os.Open(tree)
				if err != nil {
					t.Fatal(err)
				}
				defer dir.Close()
				cmd.ExtraFiles = []*os.File{f, pr, pw, dir}
				r := wait(t, cmd)
				if got := strings.Fields(r.Stdout); r.Code != 0 || !slices.Equal(got, []string{"0", "1", "2"}) {
					t.Errorf("PID 1's fds = %d, %q, stderr %q; want 0 1 2", r.Code, got, r.Stderr)
				}
			})
			t.Run("exit codes", func(t *testing.T) {
				if err := os.WriteFile(filepath.Join(tree, "bin/noexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				for _, tc := range []struct {
					prog []string
					code int
					err  string // named in the one stderr line
				}{
					{[]string{"true"}, 0, ""},
					{[]string{"false"}, 1, ""},
					{[]string{"sh", "-c", "exit 7"}, 7, ""},
					{[]string{"sh", "-c", "exit 255"}, 255, ""},
					{[]string{"/etc/passwd"}, 126, "/etc/passwd"},
					{[]string{"noexec"}, 126, "noexec"},
					{[]string{"/etc"}, 126, "/etc"},
					{[]string{"nosuch-prog"}, 127, "nosuch-prog"},
					{[]string{"/nosuch/prog"}, 127, "/nosuch/prog"},
					// A program named help is run, not taken for a command.
					{[]string{"help"}, 127, "help"},
					// A name is looked up inside the tree: the host's programs are not there.
					{[]string{"go"}, 127, "go"},
				} {
					r := enter(t, tc.prog...)
					if tc.err == "" {
						if r.Code != tc.code || r.Stderr != "" {
							t.Errorf("%q = %d, stderr %q; want %d", tc.prog, r.Code, r.Stderr, tc.code)
						}
						continue
					}
					oneError(t, r, tc.code, "spawn-caps", tc.err)
				}
			})
			checkHost(t, before)
			if now, _ := os.Hostname(); now != hostname {
				t.Errorf("host's hostname = %q after the containers, was %q", now, hostname)
			}
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// nsScript prints "KIND ID" for each namespace kind of the payload.
const nsScript = `for n in pid mnt uts ipc net cgroup; do echo "$n $(readlink /proc/self/ns/$n)"; done`

// checkNamespaces compares the payload's namespaces with the test's own:
// pid, mnt, uts, ipc and cgroup always differ, net only with
// --private-network.
func checkNamespaces(t *testing.T, out string, privateNet bool) {
	t.Helper()
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		kind, id, _ := strings.Cut(line, " ")
		got[kind] = id
	}
	for _, tc := range []struct {
		kind string
		own  bool
	}{
		{"pid", true}, {"mnt", true}, {"uts", true}, {"ipc", true},
		{"net", privateNet}, {"cgroup", true},
	} {
		host, err := os.Readlink("/proc/self/ns/" + tc.kind)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got[tc.kind], tc.kind+":[") {
			t.Errorf("%s namespace inside = %q, want %s:[N]", tc.kind, got[tc.kind], tc.kind)
			continue
		}
		if differs := got[tc.kind] != host; differs != tc.own {
			t.Errorf("%s namespace inside %s, host %s: differs = %v, want %v", tc.kind, got[tc.kind], host, differs, tc.own)
		}
	}
}

// mountEntry is one line of /proc/PID/mountinfo.
type mountEntry struct {
	point, fstype string
	opts          map[string]bool // per-mount and super options
	super         string
}

func parseMountinfo(t *testing.T, s string) map[string]mountEntry {
	t.Helper()
	mounts := map[string]mountEntry{}
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 6 || sep+3 >= len(f)+1 {
			t.Fatalf("mountinfo line %q", line)
		}
		m := mountEntry{point: f[4], fstype: f[sep+1], opts: map[string]bool{}, super: f[sep+3]}
		for _, o := range strings.Split(f[5]+","+f[sep+3], ",") {
			m.opts[o] = true
		}
		// A later mount on the same point hides the earlier one.
		mounts[m.point] = m
	}
	return mounts
}

func checkMounts(t *testing.T, tree, mountinfo string) {
	t.Helper()
	mounts := parseMountinfo(t, mountinfo)
	type want struct {
		fstype string
		opts   []string
		not    []string
	}
	wants := map[string]want{
		"/":         {"", nil, nil},
		"/proc":     {"proc", []string{"rw", "nosuid", "nodev", "noexec"}, nil},
		"/proc/sys": {"proc", []string{"ro", "nosuid", "nodev", "noexec"}, nil},
		"/sys":      {"sysfs", []string{"ro", "nosuid", "nodev", "noexec"}, nil},
		"/dev":      {"tmpfs", []string{"rw", "nosuid", "mode=755"}, []string{"nodev"}},
		"/dev/pts":  {"devpts", []string{"rw", "nosuid", "noexec"}, nil},
		"/run":      {"tmpfs", []string{"rw", "nosuid", "nodev", "mode=755"}, nil},
	}
	_, hostErr := os.Stat("/etc/localtime")
	_, treeErr := os.Lstat(filepath.Join(tree, "etc/localtime"))
	if hostErr == nil && treeErr == nil {
		wants["/etc/localtime"] = want{"", []string{"ro"}, nil}
	}
	var sfs unix.Statfs_t
	if unix.Statfs("/sys/fs/selinux", &sfs) == nil && sfs.Type == unix.SELINUX_MAGIC {
		wants["/sys/fs/selinux"] = want{"selinuxfs", []string{"ro"}, nil}
	}
	for point, w := range wants {
		m, ok := mounts[point]
		if !ok {
			t.Errorf("nothing mounted on %s inside; mountinfo:\n%s", point, mountinfo)
			continue
		}
		if w.fstype != "" && m.fstype != w.fstype {
			t.Errorf("%s is %s, want %s", point, m.fstype, w.fstype)
		}
		for _, o := range w.opts {
			if !m.opts[o] {
				t.Errorf("%s (%s) lacks %s", point, m.fstype, o)
			}
		}
		for _, o := range w.not {
			if m.opts[o] {
				t.Errorf("%s (%s) has %s", point, m.fstype, o)
			}
		}
	}
	if m, ok := mounts["/etc/localtime"]; ok && !m.opts["ro"] {
		t.Errorf("/etc/localtime mounted read-write")
	}
	// Nothing of the host's besides: every mount is one of the API file
	// systems, /dev's, or localtime.
	for point, m := range mounts {
		if _, ok := wants[point]; ok {
			continue
		}
		if !underAny(point, "/proc", "/sys", "/dev", "/run") {
			t.Errorf("unexpected mount inside: %s (%s)", point, m.fstype)
		}
	}
}

func underAny(p string, dirs ...string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// checkReadOnly writes where the contract says nothing may be written.
// Each target is harmless should the write succeed: namespaced, or the
// value already there.
func checkReadOnly(t *testing.T, enter func(*testing.T, ...string) result) {
	t.Helper()
	for _, script := range []string{
		"echo spawn-test > /proc/sys/kernel/hostname",
		"echo spawn-test > /proc/sys/kernel/domainname",
		"cat /proc/sys/kernel/shmmax > /tmp/v && cat /tmp/v > /proc/sys/kernel/shmmax",
		"cat /sys/module/printk/parameters/time > /tmp/v && cat /tmp/v > /sys/module/printk/parameters/time",
		"mkdir /sys/spawn-test",
		"touch /sys/kernel/spawn-test",
	} {
		r := enter(t, "sh", "-c", script)
		if r.Code == 0 || !strings.Contains(r.Stderr, "Read-only file system") {
			t.Errorf("%s = %d, stderr %q; want a failure with EROFS", script, r.Code, r.Stderr)
		}
	}
	// /proc itself stays writable where the kernel allows it.
	if r := enter(t, "sh", "-c", "echo spawn-test > /proc/self/comm"); r.Code != 0 {
		t.Errorf("write /proc/self/comm = %d, stderr %q; want 0", r.Code, r.Stderr)
	}
}

// devScript lists /dev as "NAME TYPE MAJOR:MINOR(hex) MODE" lines.
const devScript = `for f in /dev/* /dev/pts/ptmx; do stat -c "%n|%F|%t:%T|%a" "$f"; done; head -c 4 /dev/zero | od -An -tx1; echo x > /dev/null && echo null-ok`

var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

func checkDevices(t *testing.T, out string) {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 4 {
			continue
		}
		name, kind, num, mode := strings.TrimPrefix(f[0], "/dev/"), f[1], f[2], f[3]
		switch kind {
		case "block special file":
			t.Errorf("block device /dev/%s inside", name)
		case "character special file":
			if name == "pts/ptmx" {
				continue
			}
			if !slices.Contains(devices, name) {
				t.Errorf("unexpected device /dev/%s (%s) inside", name, num)
				continue
			}
			seen[name] = true
			var st unix.Stat_t
			if err := unix.Stat("/dev/"+name, &st); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("%x:%x", unix.Major(st.Rdev), unix.Minor(st.Rdev)); num != want {
				t.Errorf("/dev/%s is %s inside, %s on the host", name, num, want)
			}
			if mode != "666" {
				t.Errorf("/dev/%s mode %s, want 666", name, mode)
			}
		}
	}
	for _, d := range devices {
		if !seen[d] {
			t.Errorf("no /dev/%s inside; got:\n%s", d, out)
		}
	}
	if !strings.Contains(out, " 00 00 00 00\n") || !strings.Contains(out, "null-ok") {
		t.Errorf("/dev/zero or /dev/null unusable inside:\n%s", out)
	}
}

// checkCaps checks the capability sets in a /proc/PID/status text.
func checkCaps(t *testing.T, status string, bnd, eff uint64) {
	t.Helper()
	for _, tc := range []struct {
		set  string
		want uint64
	}{
		{"CapBnd", bnd}, {"CapEff", eff}, {"CapPrm", eff}, {"CapInh", 0}, {"CapAmb", 0},
	} {
		if got := hexMask(t, field(status, tc.set)); got != tc.want {
			t.Errorf("%s = %016x, want %016x", tc.set, got, tc.want)
		}
	}
}
