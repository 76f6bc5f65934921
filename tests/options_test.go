package tests

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// userScript prints what a payload needs to know about who it is.
const userScript = `cat /proc/self/status; echo "env $HOME $USER $LOGNAME"; echo "pwd $(pwd)"; stat -c "home %u %g %a" "$HOME"`

func TestUser(t *testing.T) {
	tree := newTree(t, "users")
	before := snapshot(t)
	for _, tc := range []struct {
		user          string
		uid, gid      int
		groups        []int
		name, home    string
		createdHome   string // the outermost directory the home needed
		createdParent bool
	}{
		{"alice", 1000, 1000, []int{6, 1000, 2000}, "alice", "/home/alice", "/home/alice", false},
		{"1000", 1000, 1000, []int{6, 1000, 2000}, "alice", "/home/alice", "", false},
		{"bob", 1001, 1001, []int{1001, 2000}, "bob", "/home/deep/bob", "/home/deep", true},
		{"0", 0, 0, []int{0}, "root", "/root", "", false},
		{"root", 0, 0, []int{0}, "root", "/root", "", false},
	} {
		t.Run(tc.user, func(t *testing.T) {
			out := inside(t, tree, "-u", tc.user, "--", "sh", "-c", userScript)
			for _, f := range []string{"Uid", "Gid"} {
				want := tc.uid
				if f == "Gid" {
					want = tc.gid
				}
				// real, effective, saved and file system ids
				if got := strings.Fields(field(out, f)); len(got) != 4 || slices.ContainsFunc(got, func(s string) bool { return s != strconv.Itoa(want) }) {
					t.Errorf("%s = %q, want %d four times", f, got, want)
				}
			}
			var groups []int
			for _, g := range strings.Fields(field(out, "Groups")) {
				n, _ := strconv.Atoi(g)
				groups = append(groups, n)
			}
			slices.Sort(groups)
			if !slices.Equal(groups, tc.groups) {
				t.Errorf("groups = %v, want %v", groups, tc.groups)
			}
			if want := "env " + tc.home + " " + tc.name + " " + tc.name; !strings.Contains(out, want+"\n") {
				t.Errorf("HOME USER LOGNAME: want %q in\n%s", want, out)
			}
			if want := "pwd " + tc.home; !strings.Contains(out, want+"\n") {
				t.Errorf("working directory: want %q in\n%s", want, out)
			}
			if want := "home " + strconv.Itoa(tc.uid) + " " + strconv.Itoa(tc.gid); !strings.Contains(out, want+" ") {
				t.Errorf("home owner: want %q in\n%s", want, out)
			}
			wantCaps := uint64(0)
			if tc.uid == 0 {
				wantCaps = retained(t)
			}
			checkCaps(t, out, retained(t), wantCaps)
			// The home is in the tree, owned by the user; its parents by root.
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(tree, tc.home), &st); err != nil || int(st.Uid) != tc.uid || int(st.Gid) != tc.gid {
				t.Errorf("%s in the tree: %v, owner %d:%d; want %d:%d", tc.home, err, st.Uid, st.Gid, tc.uid, tc.gid)
			}
			if tc.createdParent {
				parent := filepath.Join(tree, filepath.Dir(tc.home))
				if err := syscall.Stat(parent, &st); err != nil || st.Uid != 0 {
					t.Errorf("%s: %v, owner %d; want root", parent, err, st.Uid)
				}
			}
		})
	}
	checkHost(t, before)
}

// TestLoginShell: without PROG the user's login shell runs as a login
// shell ("-sh") in the home directory.
func TestLoginShell(t *testing.T) {
	tree := newTree(t, "login")
	before := snapshot(t)
	for _, tc := range []struct {
		opts []string
		want string
	}{
		{nil, "-sh\n/root\n0\n"},
		{[]string{"-u", "alice"}, "-sh\n/home/alice\n1000\n"},
		{[]string{"-u", "bob", "--"}, "-sh\n/home/deep/bob\n1001\n"},
	} {
		r := run(t, "echo $0; pwd; id -u\n", append([]string{"spawn", "-q", "-D", tree}, tc.opts...)...)
		if r.Code != 0 || r.Stdout != tc.want {
			t.Errorf("spawn %q <<< 'echo $0; pwd; id -u' = %d, %q, stderr %q; want %q", tc.opts, r.Code, r.Stdout, r.Stderr, tc.want)
		}
	}
	checkHost(t, before)
}

func TestCapabilityOptions(t *testing.T) {
	tree := newTree(t, "caps")
	before := snapshot(t)
	hostBnd := hexMask(t, field(hostStatus(t), "CapBnd"))
	const (
		chown    = 1 << 0
		sysAdmin = 1 << 21
		sysTime  = 1 << 25
		netAdmin = 1 << 12
		mknod    = 1 << 27
	)
	for _, tc := range []struct {
		opts []string
		want uint64
	}{
		{nil, retained(t)},
		{[]string{"--capability=CAP_SYS_TIME"}, retained(t) | sysTime},
		{[]string{"--capability", "sys_time,net_admin", "--capability=mknod"}, retained(t) | sysTime | netAdmin | mknod},
		{[]string{"--drop-capability=sys_admin,CAP_CHOWN"}, retained(t) &^ (sysAdmin | chown)},
		{[]string{"--capability=net_admin", "--drop-capability=net_admin"}, retained(t)},
		{[]string{"--capability=all"}, hostBnd},
		{[]string{"--drop-capability=all"}, 0},
		{[]string{"--capability=all", "--drop-capability=sys_admin"}, hostBnd &^ sysAdmin},
	} {
		out := inside(t, tree, append(tc.opts, "--", "cat", "/proc/self/status")...)
		t.Run(strings.Join(tc.opts, " "), func(t *testing.T) { checkCaps(t, out, tc.want&hostBnd, tc.want&hostBnd) })
	}
	checkHost(t, before)
}

// TestInheritedCapabilitiesCleared is an attack: capabilities the caller
// holds in its inheritable and ambient sets come back in root's
// permitted set at exec whatever the bounding set says, unless cleared.
func TestInheritedCapabilitiesCleared(t *testing.T) {
	tree := newTree(t, "ambient")
	before := snapshot(t)
	const sysModule, sysRawio = 16, 17
	cmd := command(t, "spawn", "-q", "-D", tree, "--", "cat", "/proc/self/status")
	cmd.SysProcAttr = &syscall.SysProcAttr{AmbientCaps: []uintptr{sysModule, sysRawio}}
	r := wait(t, cmd)
	if r.Code != 0 {
		t.Fatalf("spawn with ambient capabilities = %d, stderr %q", r.Code, r.Stderr)
	}
	checkCaps(t, r.Stdout, retained(t), retained(t))
	checkHost(t, before)
}

func TestPrivateNetwork(t *testing.T) {
	tree := newTree(t, "net")
	before := snapshot(t)
	hostIfs, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Fatal(err)
	}
	if len(hostIfs) < 2 {
		t.Fatalf("the host has only %d network interfaces: the test cannot tell a private network", len(hostIfs))
	}
	const netScript = "ls /sys/class/net; cat /sys/class/net/lo/flags; tail -n +3 /proc/net/dev | cut -d: -f1"
	t.Run("private", func(t *testing.T) {
		checkNamespaces(t, inside(t, tree, "--private-network", "--", "sh", "-c", nsScript), true)
		out := strings.Fields(inside(t, tree, "--private-network", "--", "sh", "-c", netScript))
		if len(out) != 3 || out[0] != "lo" || out[2] != "lo" {
			t.Fatalf("interfaces with --private-network: %q, want only lo", out)
		}
		flags, err := strconv.ParseUint(strings.TrimPrefix(out[1], "0x"), 16, 32)
		if err != nil || flags&syscall.IFF_UP == 0 {
			t.Errorf("lo flags %q: want IFF_UP", out[1])
		}
		// lo works (down, 127.0.0.1 is unreachable).
		if r := spawn(t, tree, "--private-network", "--", "ping", "-c", "1", "-W", "5", "127.0.0.1"); r.Code != 0 {
			t.Errorf("ping 127.0.0.1 inside = %d, %q, stderr %q; want 0", r.Code, r.Stdout, r.Stderr)
		}
	})
	t.Run("shared", func(t *testing.T) {
		checkNamespaces(t, inside(t, tree, "--", "sh", "-c", nsScript), false)
		got := strings.Fields(inside(t, tree, "--", "ls", "/sys/class/net"))
		var want []string
		for _, e := range hostIfs {
			want = append(want, e.Name())
		}
		if !slices.Equal(sorted(got), sorted(want)) {
			t.Errorf("interfaces without --private-network: %q, want the host's %q", got, want)
		}
	})
	checkHost(t, before)
}

func TestHostname(t *testing.T) {
	tree := newTree(t, "named-tree")
	before := snapshot(t)
	host, _ := os.Hostname()
	for _, tc := range []struct {
		opts []string
		want string
	}{
		{nil, "named-tree"},
		{[]string{"--hostname", "other"}, "other"},
		{[]string{"--hostname=" + strings.Repeat("h", 64)}, strings.Repeat("h", 64)},
	} {
		if got := inside(t, tree, append(tc.opts, "--", "cat", "/proc/sys/kernel/hostname")...); got != tc.want+"\n" {
			t.Errorf("spawn %q: hostname %q, want %q", tc.opts, got, tc.want)
		}
	}
	// DIR defaults to the working directory, and a relative DIR is made
	// absolute: both give the basename.
	for _, tc := range []struct {
		wd  string
		dir []string
	}{
		{tree, nil},
		{tree, []string{"-D", "."}},
		{filepath.Dir(tree), []string{"-D", "named-tree"}},
		{filepath.Join(tree, "etc"), []string{"-D", "../"}},
	} {
		cmd := command(t, append(append([]string{"spawn", "-q"}, tc.dir...), "--", "hostname")...)
		cmd.Dir = tc.wd
		if r := wait(t, cmd); r.Code != 0 || r.Stdout != "named-tree\n" {
			t.Errorf("in %s: spawn %q hostname = %d, %q, stderr %q; want named-tree", tc.wd, tc.dir, r.Code, r.Stdout, r.Stderr)
		}
	}
	if now, _ := os.Hostname(); now != host {
		t.Errorf("host's hostname = %q, was %q", now, host)
	}
	checkHost(t, before)
}
