package tests

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// attackTree is a fresh tree with the escape helper in it, and a marker
// file beside the tree (same file system, outside it) that no attack may
// read.
func attackTree(t *testing.T) (tree, marker, secret string) {
	t.Helper()
	tree = newTree(t, "attack")
	if out, err := exec.Command("cp", filepath.Join(helperDir, "escape"), filepath.Join(tree, "bin/escape")).CombinedOutput(); err != nil {
		t.Fatalf("copy escape helper: %v: %s", err, out)
	}
	secret = fmt.Sprintf("host-secret-%d", os.Getpid())
	marker = filepath.Join(filepath.Dir(tree), "marker")
	if err := os.WriteFile(marker, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	return tree, marker, secret
}

// chainArgs is the full chain by hand, with extra options for spawn-rootfs
// and spawn-caps (hidden test hooks are never passed on by the front door).
func chainArgs(tree string, rootfsOpts, capsOpts []string, prog ...string) []string {
	argv := []string{bin("spawn-relay"), "--", bin("spawn-cgroup"), "--", bin("spawn-ns"), "--",
		bin("spawn-rootfs"), "-q", "-D", tree}
	argv = append(argv, rootfsOpts...)
	argv = append(argv, "--", bin("spawn-caps"))
	argv = append(argv, capsOpts...)
	return append(append(argv, "--"), prog...)
}

func TestAttackRootSwitch(t *testing.T) {
	tree, marker, secret := attackTree(t)
	before := snapshot(t)
	for _, tc := range []struct {
		attack string
		unsafe []string
		escape bool
	}{
		{"chroot", nil, false},
		{"setns", nil, false},
		// Without pivot_root (MS_MOVE + chroot) the host root lies under
		// the tree: detaching / and re-entering the namespace reaches it.
		{"setns", []string{"--unsafe-disable=pivot-root"}, true},
	} {
		r := run(t, "", chainArgs(tree, tc.unsafe, nil, "/bin/escape", tc.attack, marker)...)
		escaped := strings.Contains(r.Stdout, "ESCAPED") && strings.Contains(r.Stdout, secret)
		if escaped != tc.escape {
			t.Errorf("escape %s with %v: escaped = %v, want %v\nstdout: %s\nstderr: %s", tc.attack, tc.unsafe, escaped, tc.escape, r.Stdout, r.Stderr)
		}
	}
	checkHost(t, before)
}

func TestAttackOpenByHandle(t *testing.T) {
	tree, marker, secret := attackTree(t)
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, marker, 0)
	if err != nil {
		t.Fatalf("name_to_handle_at %s: %v", marker, err)
	}
	args := []string{"/bin/escape", "handle", fmt.Sprint(h.Type()), hex.EncodeToString(h.Bytes())}
	before := snapshot(t)
	for _, tc := range []struct {
		opts   []string
		escape bool
	}{
		{nil, false},
		// Container root keeps CAP_DAC_READ_SEARCH, which is all that
		// open_by_handle_at asks for: only the filter stops it.
		{[]string{"--seccomp=no"}, true},
	} {
		r := spawn(t, tree, append(tc.opts, args...)...)
		escaped := strings.Contains(r.Stdout, secret)
		if escaped != tc.escape {
			t.Errorf("open_by_handle_at with %v: escaped = %v, want %v\nstdout: %s\nstderr: %s", tc.opts, escaped, tc.escape, r.Stdout, r.Stderr)
		}
	}
	checkHost(t, before)
}

func TestAttackSyscalls(t *testing.T) {
	tree, _, _ := attackTree(t)
	calls := func(opts ...string) map[string]string {
		t.Helper()
		r := spawn(t, tree, append(opts, "/bin/escape", "syscalls")...)
		if r.Code != 0 {
			t.Fatalf("escape syscalls with %v: exit %d: %s", opts, r.Code, r.Stderr)
		}
		m := map[string]string{}
		for _, l := range strings.Fields(r.Stdout) {
			if k, v, ok := strings.Cut(l, "="); ok {
				m[k] = v
			}
		}
		return m
	}
	filtered := calls()
	open := calls("--seccomp=no")
	for _, name := range []string{"keyctl", "bpf", "perf_event_open", "userfaultfd", "finit_module", "kexec_file_load", "i386:keyctl"} {
		if filtered[name] != "EPERM" {
			t.Errorf("%s with the filter = %s, want EPERM", name, filtered[name])
		}
	}
	// Without the filter the same calls reach the kernel: proof that the
	// EPERMs above are the filter's. (Module and kexec calls fail without
	// it too on this kernel, for lack of support or capabilities.)
	for _, name := range []string{"keyctl", "bpf", "perf_event_open", "userfaultfd", "i386:keyctl"} {
		if open[name] == "EPERM" {
			t.Errorf("%s without the filter = EPERM, want the kernel's own answer", name)
		}
	}
	// --system-call-filter lets one through by name.
	if got := calls("--system-call-filter=keyctl")["keyctl"]; got != "ok" {
		t.Errorf("keyctl with --system-call-filter=keyctl = %s, want ok", got)
	}
	// and "~name" adds one to the deny list.
	tree2 := newTree(t, "deny")
	r := spawn(t, tree2, "--system-call-filter=~mkdir mkdirat", "--", "mkdir", "/tmp/d")
	if r.Code == 0 || !strings.Contains(r.Stderr, "not permitted") {
		t.Errorf("mkdir with --system-call-filter='~mkdir mkdirat' = exit %d, stderr %q; want EPERM", r.Code, r.Stderr)
	}
}

func TestAttackProcMasks(t *testing.T) {
	tree := newTree(t, "masks")
	before := snapshot(t)
	// With every capability, so that only the masks stand in the way.
	probe := `for f in /proc/kallsyms /proc/timer_list /proc/keys; do [ -e $f ] && echo "$f $(head -c 4096 $f | wc -c)"; done; ` +
		`echo x > /proc/bus/probe 2>/dev/null; echo "bus-write=$?"; ` +
		`grep -E " /proc/(acpi|bus|fs|irq|scsi) " /proc/self/mounts | awk '{print $2, substr($4,1,2)}'`
	masked := run(t, "", chainArgs(tree, nil, []string{"--capability=all"}, "sh", "-c", probe)...)
	open := run(t, "", chainArgs(tree, []string{"--unsafe-disable=proc-masks"}, []string{"--capability=all"}, "sh", "-c", probe)...)
	sizes := func(out string) map[string]string {
		m := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 2 && strings.HasPrefix(f[0], "/proc/") {
				m[f[0]] = f[1]
			}
		}
		return m
	}
	ms, os_ := sizes(masked.Stdout), sizes(open.Stdout)
	if ms["/proc/kallsyms"] != "0" || ms["/proc/timer_list"] != "0" {
		t.Errorf("masked kallsyms, timer_list sizes = %q, %q, want 0, 0\n%s%s", ms["/proc/kallsyms"], ms["/proc/timer_list"], masked.Stdout, masked.Stderr)
	}
	if os_["/proc/kallsyms"] == "0" || os_["/proc/timer_list"] == "0" {
		t.Errorf("unmasked kallsyms, timer_list sizes = %q, %q, want > 0 (else the test proves nothing)", os_["/proc/kallsyms"], os_["/proc/timer_list"])
	}
	for _, d := range []string{"/proc/acpi", "/proc/bus", "/proc/fs", "/proc/irq"} {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		if !strings.Contains(masked.Stdout, d+" ro") {
			t.Errorf("%s is not mounted read-only inside:\n%s", d, masked.Stdout)
		}
	}
	checkHost(t, before)
}

func TestAttackHostPtys(t *testing.T) {
	tree := newTree(t, "ptys")
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	list := "ls /dev/pts | tr '\\n' ' '"
	own := run(t, "", chainArgs(tree, nil, nil, "sh", "-c", list)...)
	host := run(t, "", chainArgs(tree, []string{"--unsafe-disable=devpts"}, nil, "sh", "-c", list)...)
	if got := strings.Fields(own.Stdout); len(got) != 1 || got[0] != "ptmx" {
		t.Errorf("/dev/pts inside = %q, want only ptmx (a fresh devpts instance)\n%s", got, own.Stderr)
	}
	if !strings.Contains(" "+host.Stdout, fmt.Sprintf(" %d ", n)) {
		t.Errorf("with the host's devpts, /dev/pts = %q lacks the host's pty %d: the test proves nothing", host.Stdout, n)
	}
}

func TestAttackLeakedFDs(t *testing.T) {
	tree := newTree(t, "fds")
	// The runc CVE-2024-21626 shape: a directory fd of the host, open in
	// the caller, is the way out if it reaches the container.
	dir, err := os.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	list := "ls /proc/$$/fd | tr '\\n' ' '; cd /proc/self/fd/3 2>/dev/null && echo ESCAPED"
	cmd := command(t, bin("spawn"), "-q", "-D", tree, "--", "sh", "-c", list)
	cmd.ExtraFiles = []*os.File{dir}
	r := wait(t, cmd)
	if got := strings.TrimSpace(r.Stdout); got != "0 1 2" {
		t.Errorf("fds in the payload = %q, want \"0 1 2\"\nstderr: %s", got, r.Stderr)
	}
	// The same check without the container shows what it catches.
	cmd = command(t, "sh", "-c", list)
	cmd.ExtraFiles = []*os.File{dir}
	r = wait(t, cmd)
	if !strings.Contains(r.Stdout, " 3 ") || !strings.Contains(r.Stdout, "ESCAPED") {
		t.Errorf("without the container, fds = %q: want fd 3 seen and entered (else the test proves nothing)", r.Stdout)
	}
}

func TestHostileTreeSymlinks(t *testing.T) {
	outside := t.TempDir()
	created := filepath.Join(outside, "created-by-spawn")
	shadow, _ := os.ReadFile("/etc/shadow")
	for _, tc := range []struct {
		name  string
		links map[string]string // path in tree -> symlink target
		check string
	}{
		{"dev to /etc", map[string]string{"dev": "/etc"}, "ls /dev/null"},
		{"localtime to /etc/shadow", map[string]string{"etc/localtime": "/etc/shadow"}, "true"},
		{"sys to a new host dir", map[string]string{"sys": created}, "ls /sys/kernel >/dev/null"},
		{"run to ../../..", map[string]string{"run": "../../.."}, "true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := newTree(t, "hostile")
			for p, target := range tc.links {
				os.RemoveAll(filepath.Join(tree, p))
				if err := os.Symlink(target, filepath.Join(tree, p)); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t)
			r := spawn(t, tree, "--", "sh", "-c", tc.check)
			if r.Code != 0 && r.Code != 125 {
				t.Errorf("exit %d, want 0 or a clean 125: %s", r.Code, r.Stderr)
			}
			checkHost(t, before)
			if _, err := os.Lstat(created); err == nil {
				t.Errorf("%s was created on the host", created)
			}
			if now, _ := os.ReadFile("/etc/shadow"); string(now) != string(shadow) {
				t.Errorf("/etc/shadow on the host changed")
			}
		})
	}
}

func TestTreeBusy(t *testing.T) {
	tree := newTree(t, "busy")
	before := snapshot(t)
	// The first container holds the tree until its stdin closes.
	first := command(t, bin("spawn"), "-q", "-D", tree, "--", "sh", "-c", "echo ready; read x; exit 0")
	stdin, err := first.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := first.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 6)
	if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "ready\n" {
		t.Fatalf("first container: read %q, %v", line, err)
	}
	r := spawn(t, tree, "--", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "busy") || strings.Count(r.Stderr, "\n") != 1 {
		t.Errorf("second container on a busy tree = exit %d, stderr %q; want 125 and one line saying busy", r.Code, r.Stderr)
	}
	stdin.Close()
	if err := first.Wait(); err != nil {
		t.Errorf("first container: %v", err)
	}
	if r := spawn(t, tree, "--", "true"); r.Code != 0 {
		t.Errorf("after the first container ended: exit %d, %s; want 0", r.Code, r.Stderr)
	}
	checkHost(t, before)
}

// TestAttackHostBinaryExe: with --as-pid2 the container's PID 1 is a host
// binary (spawn-ns's init). It must not be opened through /proc/1/exe
// (runc CVE-2019-5736 overwrote the runtime that way).
func TestAttackHostBinaryExe(t *testing.T) {
	tree := newTree(t, "exe")
	host, err := os.ReadFile(bin("spawn-ns"))
	if err != nil {
		t.Fatal(err)
	}
	probe := `cat /proc/1/exe >/dev/null 2>&1 && echo read-init; ` +
		`cat /proc/$$/exe >/dev/null 2>&1 && echo read-self; ` +
		`echo x >> /proc/1/exe 2>/dev/null && echo wrote-init; true`
	for _, tc := range []struct {
		opts []string
		want string
	}{
		// Without CAP_SYS_PTRACE a non-dumpable process's exe is closed;
		// the payload's own (dumpable) exe shows the probe works.
		{[]string{"-a", "--drop-capability=sys_ptrace"}, "read-self"},
		// Container root keeps CAP_SYS_PTRACE by default and may read it,
		// but never write it: a running binary is busy (ETXTBSY).
		{[]string{"-a"}, "read-init read-self"},
	} {
		r := spawn(t, tree, append(tc.opts, "--", "sh", "-c", probe)...)
		if got := strings.Join(strings.Fields(r.Stdout), " "); got != tc.want {
			t.Errorf("with %v: probe = %q, want %q\nstderr: %s", tc.opts, got, tc.want, r.Stderr)
		}
	}
	if now, _ := os.ReadFile(bin("spawn-ns")); string(now) != string(host) {
		t.Fatalf("%s changed on the host", bin("spawn-ns"))
	}
}

func TestNoNewPrivileges(t *testing.T) {
	tree := newTree(t, "nnp")
	for _, tc := range []struct {
		opts []string
		want string
	}{
		{nil, "0"},
		{[]string{"--no-new-privileges"}, "1"},
		{[]string{"--no-new-privileges", "-u", "alice"}, "1"},
	} {
		r := spawn(t, tree, append(tc.opts, "--", "sh", "-c", "grep NoNewPrivs /proc/self/status")...)
		if got := strings.Fields(r.Stdout); len(got) != 2 || got[1] != tc.want {
			t.Errorf("with %v: %q, want NoNewPrivs %s (stderr %s)", tc.opts, r.Stdout, tc.want, r.Stderr)
		}
	}
}

// TestTreeShared: read-only and ephemeral containers share a tree; a
// container that writes it waits its turn (busy) while they run.
func TestTreeShared(t *testing.T) {
	tree := newTree(t, "shared")
	before := snapshot(t)
	hold := func(opts ...string) (stop func()) {
		cmd := command(t, append(append([]string{bin("spawn"), "-q", "-D", tree}, opts...), "--", "sh", "-c", "echo ready; read x; exit 0")...)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line := make([]byte, 6)
		if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "ready\n" {
			t.Fatalf("container %v: read %q, %v", opts, line, err)
		}
		return func() {
			stdin.Close()
			if err := cmd.Wait(); err != nil {
				t.Errorf("container %v: %v", opts, err)
			}
		}
	}
	stop := hold("--read-only")
	if r := spawn(t, tree, "--read-only", "--", "true"); r.Code != 0 {
		t.Errorf("a second --read-only container = exit %d, %s; want 0", r.Code, r.Stderr)
	}
	if r := spawn(t, tree, "-x", "--", "true"); r.Code != 0 {
		t.Errorf("an --ephemeral container beside a --read-only one = exit %d, %s; want 0", r.Code, r.Stderr)
	}
	if r := spawn(t, tree, "--", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "busy") {
		t.Errorf("a writing container beside a --read-only one = exit %d, %q; want 125, busy", r.Code, r.Stderr)
	}
	stop()
	checkHost(t, before)
}
