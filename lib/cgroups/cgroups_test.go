package cgroups

import (
	"fmt"
	"strings"
	"testing"
)

const (
	// Pure cgroup v2 (systemd's unified layout).
	v2Mountinfo = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:23 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`
	v2Cgroup = "0::/user.slice/user-0.slice/session-1.scope\n"

	// Hybrid, as on our machines: v1 controllers, cgroup2 without any at
	// /sys/fs/cgroup/unified (mounted after the v1 ones).
	hybridMountinfo = `22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	hybridCgroup = `9:name=systemd:/system.slice/x.service
4:memory:/process_api/e385
3:cpuset:/
2:cpu,cpuacct:/a
0::/system.slice/x.service
`

	// Legacy v1 only: no cgroup2 mounted, though the kernel still lists
	// the (empty) v2 path.
	v1Mountinfo = `32 31 0:29 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
33 31 0:30 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
`
	v1Cgroup = `2:pids:/user.slice
1:name=systemd:/user.slice/session-2.scope
0::/
`
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name              string
		mountinfo, cgroup string
		want              []Hierarchy
	}{
		{"pure v2", v2Mountinfo, v2Cgroup, []Hierarchy{
			{Version: 2, Mount: "/sys/fs/cgroup", Own: "/user.slice/user-0.slice/session-1.scope"},
		}},
		{"hybrid: v2 first, then v1 in mount order", hybridMountinfo, hybridCgroup, []Hierarchy{
			{Version: 2, Mount: "/sys/fs/cgroup/unified", Own: "/system.slice/x.service"},
			{Version: 1, Mount: "/sys/fs/cgroup/cpu,cpuacct", Controllers: []string{"cpu", "cpuacct"}, Own: "/a"},
			{Version: 1, Mount: "/sys/fs/cgroup/cpuset", Controllers: []string{"cpuset"}, Own: "/"},
			{Version: 1, Mount: "/sys/fs/cgroup/memory", Controllers: []string{"memory"}, Own: "/process_api/e385"},
			{Version: 1, Mount: "/sys/fs/cgroup/systemd", Controllers: []string{"name=systemd"}, Own: "/system.slice/x.service"},
		}},
		{"v1 only", v1Mountinfo, v1Cgroup, []Hierarchy{
			{Version: 1, Mount: "/sys/fs/cgroup/pids", Controllers: []string{"pids"}, Own: "/user.slice"},
			{Version: 1, Mount: "/sys/fs/cgroup/systemd", Controllers: []string{"name=systemd"}, Own: "/user.slice/session-2.scope"},
		}},
		{"a hierarchy we are not in is left out",
			v1Mountinfo + "50 31 0:40 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n",
			v1Cgroup, []Hierarchy{
				{Version: 1, Mount: "/sys/fs/cgroup/pids", Controllers: []string{"pids"}, Own: "/user.slice"},
				{Version: 1, Mount: "/sys/fs/cgroup/systemd", Controllers: []string{"name=systemd"}, Own: "/user.slice/session-2.scope"},
			}},
		{"a hierarchy mounted twice counts once, at its first mount",
			v2Mountinfo + "60 22 0:26 / /mnt/cg rw - cgroup2 cgroup2 rw\n", v2Cgroup, []Hierarchy{
				{Version: 2, Mount: "/sys/fs/cgroup", Own: "/user.slice/user-0.slice/session-1.scope"},
			}},
		{"mount root not /: own path made relative to it",
			"30 24 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			"0::/docker/abc/sub\n", []Hierarchy{
				{Version: 2, Mount: "/sys/fs/cgroup", Own: "/sub"},
			}},
		{"mount root is own cgroup",
			"30 24 0:26 /docker/abc /sys/fs/cgroup ro - cgroup cgroup rw,pids\n",
			"3:pids:/docker/abc\n", []Hierarchy{
				{Version: 1, Mount: "/sys/fs/cgroup", Controllers: []string{"pids"}, Own: "/"},
			}},
		{"escaped mount point and root",
			`30 24 0:26 /my\040slice /run/my\040cgroup\011x\134y rw - cgroup2 cgroup2 rw` + "\n",
			"0::/my slice/a b\n", []Hierarchy{
				{Version: 2, Mount: "/run/my cgroup\tx\\y", Own: "/a b"},
			}},
		{"malformed and foreign lines ignored",
			"garbage\n1 2 3\n30 24 0:26 / /x rw - \n" + v2Mountinfo,
			"bad line\n" + v2Cgroup, []Hierarchy{
				{Version: 2, Mount: "/sys/fs/cgroup", Own: "/user.slice/user-0.slice/session-1.scope"},
			}},
		{"nothing mounted", "22 1 254:0 / / rw - ext4 /dev/vda rw\n", v2Cgroup, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.mountinfo), strings.NewReader(tc.cgroup))
			if err != nil {
				t.Fatalf("Parse = %v", err)
			}
			if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", tc.want); g != w {
				t.Errorf("Parse =\n%s\nwant\n%s", g, w)
			}
		})
	}
}

func TestParseRootIsNotAPrefixMatch(t *testing.T) {
	hs, err := Parse(strings.NewReader("30 24 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"),
		strings.NewReader("0::/docker/abcdef\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.Own == "/def" {
			t.Errorf("Parse: own cgroup /docker/abcdef below mount root /docker/abc = %q", h.Own)
		}
	}
}

func TestHierarchy(t *testing.T) {
	h := Hierarchy{Version: 1, Mount: "/sys/fs/cgroup/cpu,cpuacct", Controllers: []string{"cpu", "cpuacct"}, Own: "/a/b"}
	if got, want := h.Dir(), "/sys/fs/cgroup/cpu,cpuacct/a/b"; got != want {
		t.Errorf("Dir() = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		c    string
		want bool
	}{{"cpu", true}, {"cpuacct", true}, {"cpuset", false}, {"cpu,cpuacct", false}, {"", false}} {
		if got := h.Has(tc.c); got != tc.want {
			t.Errorf("Has(%q) = %v, want %v", tc.c, got, tc.want)
		}
	}
	root := Hierarchy{Version: 2, Mount: "/sys/fs/cgroup", Own: "/"}
	if got, want := root.Dir(), "/sys/fs/cgroup"; got != want {
		t.Errorf("Dir() = %q, want %q", got, want)
	}
}
