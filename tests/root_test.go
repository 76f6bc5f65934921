package tests

import (
	"crypto/md5"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestReadOnlyRoot(t *testing.T) {
	tree := newTree(t, "ro")
	h := hostDir(t)
	listing := treeListing(t, tree)
	before := snapshot(t)
	r := spawn(t, tree, "--read-only", "--bind="+h+":/tmp", "--", "sh", "-c", `
		touch /new; echo "root=$?"
		touch /etc/new; echo "etc=$?"
		touch /run/x && touch /dev/shm/x && echo "run,shm=0"
		echo kept > /tmp/bound && echo "bind=0"
		grep " / " /proc/self/mounts`)
	out := wantOK(t, r)
	if !strings.HasPrefix(out, "root=1\netc=1\nrun,shm=0\nbind=0\n") {
		t.Errorf("writes = %q, want the root refused and /run, /dev/shm and the bind writable", out)
	}
	if l := mountLine(out, "/"); !hasOption(l, "ro") {
		t.Errorf("root mount = %q, want ro", l)
	}
	if strings.Count(r.Stderr, "Read-only file system") != 2 {
		t.Errorf("stderr = %q, want two EROFS failures", r.Stderr)
	}
	// The only change in the tree is the mount point the bind needed
	// (/tmp exists already): none.
	sameTree(t, tree, listing)
	checkHost(t, before)
}

func TestReadOnlyBadInput(t *testing.T) {
	tree := newTree(t, "robad")
	for _, tc := range []struct {
		name, stage string
		args        []string
		want        []string
	}{
		{"not a boolean", "spawn", []string{"--read-only=maybe"}, []string{"maybe"}},
		{"with a copy into the tree", "spawn-rootfs", []string{"--read-only", "--resolv-conf=copy-host"}, []string{"--resolv-conf=copy-host: the tree is read-only (--read-only)"}},
		{"with a copied timezone", "spawn-rootfs", []string{"--read-only", "--timezone=copy"}, []string{"--timezone=copy: the tree is read-only"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, listing := snapshot(t), treeListing(t, tree)
			wantFailure(t, spawn(t, tree, append(tc.args, "--", "true")...), tc.stage, tc.want...)
			checkHost(t, before)
			sameTree(t, tree, listing)
		})
	}
}

func TestEphemeralLeavesTreeUntouched(t *testing.T) {
	tree := newTree(t, "eph")
	listing := treeListing(t, tree)
	before := snapshot(t)
	out := wantOK(t, spawn(t, tree, "-x", "--", "sh", "-c", `
		set -e
		echo x > /new-in-root
		echo x > /etc/new-in-etc
		echo x >> /etc/passwd
		rm /etc/group
		mkdir -p /home/alice/deep/dir && echo x > /home/alice/deep/dir/f
		echo x > /tmp/t && echo x > /root/r && echo x > /bin/new-in-bin
		chmod 700 /bin/busybox
		grep " / " /proc/self/mounts`))
	if l := mountLine(out, "/"); !strings.HasPrefix(l, "overlay / overlay ") {
		t.Errorf("root mount = %q, want an overlay", l)
	}
	sameTree(t, tree, listing)
	checkHost(t, before)
}

// Two ephemeral containers of one tree at once: each waits until both run,
// writes the same path, and reads back its own.
func TestEphemeralTwoAtOnce(t *testing.T) {
	tree := newTree(t, "eph2")
	shared := hostDir(t)
	listing := treeListing(t, tree)
	before := snapshot(t)
	script := `
		touch /shared/running.$1
		n=0; while [ ! -e /shared/running.a ] || [ ! -e /shared/running.b ]; do
			n=$((n+1)); [ $n -gt 2000 ] && { echo "the other one never ran" >&2; exit 3; }
			sleep 0.01
		done
		echo $1 > /mine
		sleep 0.1
		cat /mine`
	var waits []func() result
	for _, id := range []string{"a", "b"} {
		cmd := command(t, "spawn", "-q", "-D", tree, "-x", "--bind="+shared+":/shared", "--", "sh", "-c", script, "sh", id)
		waits = append(waits, started(t, cmd))
	}
	for i, id := range []string{"a", "b"} {
		r := waits[i]()
		if r.Code != 0 || r.Stdout != id+"\n" {
			t.Errorf("container %s: exit %d, stdout %q, stderr %q; want 0 and its own file", id, r.Code, r.Stdout, r.Stderr)
		}
	}
	sameTree(t, tree, listing)
	checkHost(t, before)
}

func TestEphemeralBadInput(t *testing.T) {
	tree := newTree(t, "ephbad")
	before, listing := snapshot(t), treeListing(t, tree)
	wantFailure(t, spawn(t, tree, "-x", "--volatile=state", "--", "true"), "spawn-rootfs", "--ephemeral and --volatile=state")
	wantFailure(t, spawn(t, tree, "--ephemeral=sometimes", "--", "true"), "spawn", "sometimes")
	checkHost(t, before)
	sameTree(t, tree, listing)
}

// mergedUsr turns a busybox tree into a merged-/usr one (bin -> usr/bin),
// which is what --volatile=yes can run.
func mergedUsr(t *testing.T, tree string) {
	t.Helper()
	for _, step := range []func() error{
		func() error { return os.RemoveAll(tree + "/usr/bin") },
		func() error { return os.Rename(tree+"/bin", tree+"/usr/bin") },
		func() error { return os.Symlink("usr/bin", tree+"/bin") },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVolatile(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		script string
		want   string
		mounts map[string]string // mount point: type and an option it must have
	}{
		{"yes", `ls /; touch /new && echo root-writable; touch /usr/new; echo "usr=$?"`,
			"bin\ndev\nproc\nroot\nrun\nsys\nusr\nroot-writable\nusr=1\n",
			map[string]string{"/": "tmpfs rw", "/usr": "ext4|xfs|btrfs|tmpfs|overlay ro"}},
		{"state", `touch /new; echo "root=$?"; touch /var/new && echo var-writable`,
			"root=1\nvar-writable\n",
			map[string]string{"/": "* ro", "/var": "tmpfs rw"}},
		{"overlay", `touch /new && echo root-writable`,
			"root-writable\n",
			map[string]string{"/": "overlay rw"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			tree := newTree(t, "vol")
			if tc.mode == "yes" {
				mergedUsr(t, tree)
			}
			listing := treeListing(t, tree)
			before := snapshot(t)
			r := spawn(t, tree, "--volatile="+tc.mode, "--", "sh", "-c", tc.script+"; cat /proc/self/mounts")
			out := wantOK(t, r)
			if !strings.HasPrefix(out, tc.want) {
				t.Errorf("inside = %q, want it to start %q", out, tc.want)
			}
			for target, want := range tc.mounts {
				fstypes, opt, _ := strings.Cut(want, " ")
				l := mountLine(out, target)
				f := strings.Fields(l)
				if len(f) < 3 || !hasOption(l, opt) || fstypes != "*" && !strings.Contains("|"+fstypes+"|", "|"+f[2]+"|") {
					t.Errorf("mount on %s = %q, want %s", target, l, want)
				}
			}
			sameTree(t, tree, listing)
			checkHost(t, before)
		})
	}
}

func TestVolatileBareIsYes(t *testing.T) {
	tree := newTree(t, "volbare")
	mergedUsr(t, tree)
	out := wantOK(t, spawn(t, tree, "--volatile", "--", "sh", "-c", "grep ' / ' /proc/self/mounts"))
	if !strings.HasPrefix(out, "tmpfs / tmpfs ") {
		t.Errorf("root with a bare --volatile = %q, want a tmpfs", out)
	}
}

func TestVolatileBadInput(t *testing.T) {
	tree := newTree(t, "volbad")
	before, listing := snapshot(t), treeListing(t, tree)
	wantFailure(t, spawn(t, tree, "--volatile=sometimes", "--", "true"), "spawn-rootfs", "--volatile=sometimes: unknown mode")
	checkHost(t, before)
	sameTree(t, tree, listing)
}

func TestResolvConf(t *testing.T) {
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatalf("these tests need the host's /etc/resolv.conf: %v", err)
	}
	const mine = "nameserver 192.0.2.1\n"
	for _, tc := range []struct {
		name    string
		args    []string
		tree    string // the tree's own file: "" none, "->" a symlink
		inside  string // what the container reads, "" nothing
		mounted bool
		inDir   string // what DIR holds afterwards, "" nothing
	}{
		{"off", []string{"--resolv-conf=off"}, "", "", false, ""},
		{"copy-host", []string{"--resolv-conf=copy-host"}, mine, string(host), false, string(host)},
		{"copy-host keeps a symlink", []string{"--resolv-conf=copy-host"}, "->", mine, false, "->"},
		{"bind-host", []string{"--resolv-conf=bind-host"}, mine, string(host), true, mine},
		{"auto copies", nil, "", string(host), false, string(host)},
		{"auto, private network", []string{"--private-network"}, mine, mine, false, mine},
		{"auto, read-only root", []string{"--read-only"}, mine, string(host), true, mine},
		{"auto, read-only root without one", []string{"--read-only"}, "", "", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := newTree(t, "resolv")
			switch tc.tree {
			case "":
			case "->":
				writeHostFile(t, tree+"/etc/real-resolv.conf", mine)
				if err := os.Symlink("real-resolv.conf", tree+"/etc/resolv.conf"); err != nil {
					t.Fatal(err)
				}
			default:
				writeHostFile(t, tree+"/etc/resolv.conf", tc.tree)
			}
			before := snapshot(t)
			out := wantOK(t, spawn(t, tree, append(tc.args, "--", "sh", "-c",
				"cat /etc/resolv.conf 2>/dev/null; echo ===; grep -c ' /etc/resolv.conf ' /proc/self/mounts; true")...))
			got, mounts, _ := strings.Cut(out, "===\n")
			if got != tc.inside {
				t.Errorf("inside /etc/resolv.conf = %q, want %q", got, tc.inside)
			}
			if mounted := mounts != "0\n"; mounted != tc.mounted {
				t.Errorf("a mount on /etc/resolv.conf: %v, want %v", mounted, tc.mounted)
			}
			var inDir string
			if l, err := os.Readlink(tree + "/etc/resolv.conf"); err == nil && l != "" {
				inDir = "->"
			} else if b, err := os.ReadFile(tree + "/etc/resolv.conf"); err == nil {
				inDir = string(b)
			}
			if inDir != tc.inDir {
				t.Errorf("DIR/etc/resolv.conf afterwards = %q, want %q", inDir, tc.inDir)
			}
			checkHost(t, before)
		})
	}
}

func TestResolvConfBadInput(t *testing.T) {
	tree := newTree(t, "resolvbad")
	before, listing := snapshot(t), treeListing(t, tree)
	wantFailure(t, spawn(t, tree, "--resolv-conf=copy-static", "--", "true"), "spawn-rootfs",
		"--resolv-conf=copy-static: unknown mode (off, copy-host, bind-host, auto)")
	checkHost(t, before)
	sameTree(t, tree, listing)
}

func TestTimezone(t *testing.T) {
	host, err := os.ReadFile("/etc/localtime")
	if err != nil {
		t.Fatalf("these tests need the host's /etc/localtime: %v", err)
	}
	hostSum := fmt.Sprintf("%x", md5.Sum(host))
	const mine = "not a zone file\n"
	mineSum := fmt.Sprintf("%x", md5.Sum([]byte(mine)))
	for _, tc := range []struct {
		mode    string
		has     bool   // the tree has its own /etc/localtime
		inside  string // md5 of what the container reads, "" nothing
		mounted bool
	}{
		{"off", true, mineSum, false},
		{"copy", true, hostSum, false},
		{"copy", false, hostSum, false},
		{"bind", true, hostSum, true},
		{"bind", false, hostSum, true},
		{"auto", true, hostSum, true},
		{"auto", false, "", false},
	} {
		t.Run(fmt.Sprintf("%s, tree has one: %v", tc.mode, tc.has), func(t *testing.T) {
			tree := newTree(t, "tz")
			os.Remove(tree + "/etc/localtime")
			if tc.has {
				writeHostFile(t, tree+"/etc/localtime", mine)
			}
			before := snapshot(t)
			out := wantOK(t, spawn(t, tree, "--timezone="+tc.mode, "--", "sh", "-c",
				"md5sum /etc/localtime 2>/dev/null | cut -d' ' -f1; echo ===; grep -c ' /etc/localtime ' /proc/self/mounts; true"))
			got, mounts, _ := strings.Cut(out, "===\n")
			if got = strings.TrimSpace(got); got != tc.inside {
				t.Errorf("md5 of /etc/localtime inside = %q, want %q (host's %s)", got, tc.inside, hostSum)
			}
			if mounted := mounts != "0\n"; mounted != tc.mounted {
				t.Errorf("a mount on /etc/localtime: %v, want %v", mounted, tc.mounted)
			}
			checkHost(t, before)
		})
	}
}

func TestTimezoneBadInput(t *testing.T) {
	tree := newTree(t, "tzbad")
	before, listing := snapshot(t), treeListing(t, tree)
	wantFailure(t, spawn(t, tree, "--timezone=symlink", "--", "true"), "spawn-rootfs",
		"--timezone=symlink: unknown mode (off, copy, bind, auto)")
	checkHost(t, before)
	sameTree(t, tree, listing)
}

func TestMachineName(t *testing.T) {
	tree := newTree(t, "mach")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-M", "web-1.test"}, "web-1.test"},
		{[]string{"--machine=web_2", "--hostname=other"}, "other"},
		{nil, "mach"},
	} {
		out := wantOK(t, spawn(t, tree, append(tc.args, "--", "hostname")...))
		if strings.TrimSpace(out) != tc.want {
			t.Errorf("hostname with %v = %q, want %q", tc.args, out, tc.want)
		}
	}
}

func TestMachineNameBadInput(t *testing.T) {
	tree := newTree(t, "machbad")
	for _, name := range []string{"with space", "a..b", ".lead", "trail.", strings.Repeat("x", 65), "ünicode", ""} {
		t.Run(name, func(t *testing.T) {
			before := snapshot(t)
			wantFailure(t, spawn(t, tree, "--machine="+name, "--", "true"), "spawn-rootfs", "--machine="+name+":")
			checkHost(t, before)
		})
	}
}

func TestUUID(t *testing.T) {
	tree := newTree(t, "uuid")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--uuid=0123456789ABCDEF0123456789abcdef"}, "container_uuid=01234567-89ab-cdef-0123-456789abcdef\n"},
		{[]string{"--uuid=01234567-89ab-cdef-0123-456789abcdef"}, "container_uuid=01234567-89ab-cdef-0123-456789abcdef\n"},
		// One in the caller's environment never reaches the payload.
		{nil, ""},
	} {
		r := spawnWith(t, []string{"container_uuid=11111111-1111-1111-1111-111111111111"}, "", tree,
			append(tc.args, "--", "sh", "-c", "env | grep ^container_uuid=; true")...)
		if out := wantOK(t, r); out != tc.want {
			t.Errorf("payload's container_uuid with %v = %q, want %q", tc.args, out, tc.want)
		}
	}
}

func TestUUIDBadInput(t *testing.T) {
	tree := newTree(t, "uuidbad")
	for _, v := range []string{"xyz", "00000000-0000-0000-0000-000000000000", "0123456789abcdef0123456789abcde", "01234567-89ab-cdef-0123456789abcdef0", "g123456789abcdef0123456789abcdef"} {
		t.Run(v, func(t *testing.T) {
			before := snapshot(t)
			wantFailure(t, spawn(t, tree, "--uuid="+v, "--", "true"), "spawn-rootfs", "--uuid="+v+":")
			checkHost(t, before)
		})
	}
}
