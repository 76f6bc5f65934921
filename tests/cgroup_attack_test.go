package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kballard/go-shellquote"

	"spawn/lib/cgroups"
)

// The attacks on the container's own cgroup. Container root keeps
// CAP_SYS_ADMIN (the seed's retain list), so it can mount cgroup file
// systems and write to what it finds there. Two defences keep its cgroup
// from being undone from inside: the payload runs in spawn-PID/payload,
// one level below the cgroup that carries the device policy and the limits
// (spawn-cgroup), and in a cgroup namespace rooted at payload (spawn-ns),
// in every hierarchy. Each attack below runs as container root through the
// front door's chain, with CAP_MKNOD added so that it can make the loop
// device's node, and is run again with a defence switched off by a hidden
// test hook, to show that the attack works then and the test proves the
// defence.

// hooks are hidden test options added to stages of the front door's chain.
type hooks map[string][]string

var (
	noCgroupNS  = hooks{"spawn-ns": {"--unsafe-disable=cgroupns"}}
	noNesting   = hooks{"spawn-cgroup": {"--unsafe-disable=payload-cgroup"}}
	onlyNeeded  = hooks{"spawn-cgroup": {"--unsafe-disable=every-hierarchy"}}
	v1Mechanism = hooks{"spawn-cgroup": {"--device-mechanism=v1"}}
)

func (h hooks) with(more hooks) hooks {
	all := hooks{}
	for _, m := range []hooks{h, more} {
		for stage, opts := range m {
			all[stage] = append(all[stage], opts...)
		}
	}
	return all
}

func (h hooks) String() string {
	var words []string
	for _, stage := range []string{"spawn-cgroup", "spawn-ns"} {
		for _, o := range h[stage] {
			words = append(words, stage+" "+o)
		}
	}
	if len(words) == 0 {
		return "defaults"
	}
	return strings.Join(words, ", ")
}

// attackArgv is the chain the front door runs for spawn -q -D tree
// --capability=CAP_MKNOD OPTS -- sh -c script, with the hooks added to
// their stages; with no hooks, the front door itself.
func attackArgv(t *testing.T, tree string, h hooks, opts []string, script string) []string {
	t.Helper()
	args := append([]string{"spawn", "-q", "-D", tree, "--capability=CAP_MKNOD"}, opts...)
	args = append(args, "--", "sh", "-c", script)
	if len(h) == 0 {
		return args
	}
	r := run(t, "", append([]string{"spawn", "--print"}, args[1:]...)...)
	if r.Code != 0 {
		t.Fatalf("spawn --print = %d; stderr: %s", r.Code, r.Stderr)
	}
	words, err := shellquote.Split(r.Stdout)
	if err != nil {
		t.Fatalf("spawn --print gave %q: %v", r.Stdout, err)
	}
	var argv []string
	for _, w := range words {
		argv = append(argv, w)
		if extra, ok := h[filepath.Base(w)]; ok && w == bin(filepath.Base(w)) {
			argv = append(argv, extra...)
			delete(h, filepath.Base(w))
		}
	}
	if len(h) > 0 {
		t.Fatalf("spawn --print gave %q: no stage for the hooks %v", r.Stdout, h)
	}
	return argv
}

// readLoop is shell that makes the loop device's node in /tmp, reads its
// first n bytes into $r and prints "read: $r".
func readLoop(n int, minor uint32) string {
	return fmt.Sprintf(`rm -f /tmp/xloop; r=; mknod /tmp/xloop b 7 %d && r=$(head -c %d /tmp/xloop); echo "read: $r"; rm -f /tmp/xloop`, minor, n)
}

// relCgroup is the test's own cgroup in g's hierarchy, as /proc/PID/cgroup
// names it.
func relCgroup(g *cgroups.Group) string {
	return "/" + strings.TrimPrefix(strings.TrimPrefix(g.Dir, g.Hierarchy.Mount), "/")
}

type attackCase struct {
	hooks hooks
	opts  []string // front-door options
	read  bool     // whether the marker must be read
}

// runAttacks runs script in a fresh tree for each case and checks whether
// the loop device's marker was read.
func runAttacks(t *testing.T, marker, script string, cases []attackCase) {
	t.Helper()
	for _, tc := range cases {
		name := tc.hooks.String()
		if len(tc.opts) > 0 {
			name += " " + strings.Join(tc.opts, " ")
		}
		t.Run(name, func(t *testing.T) {
			tree := newTree(t, "cgattack")
			copyEscape(t, tree)
			before := snapshot(t)
			r := run(t, "", attackArgv(t, tree, tc.hooks.with(nil), tc.opts, script)...)
			if r.Code != 0 {
				t.Fatalf("exit = %d; stdout %q; stderr: %s", r.Code, r.Stdout, r.Stderr)
			}
			t.Logf("container root's attack:\n%s", r.Stdout)
			if read := strings.Contains(r.Stdout, "read: "+marker); read != tc.read {
				t.Errorf("marker read = %v, want %v\nstdout:\n%s\nstderr: %s", read, tc.read, r.Stdout, r.Stderr)
			}
			checkHost(t, before)
		})
	}
}

func copyEscape(t *testing.T, tree string) {
	t.Helper()
	if out, err := exec.Command("cp", filepath.Join(helperDir, "escape"), filepath.Join(tree, "bin/escape")).CombinedOutput(); err != nil {
		t.Fatalf("copy escape helper: %v: %s", err, out)
	}
}

func needV1Devices(t *testing.T) *cgroups.Group {
	t.Helper()
	g := testGroup(t, func(h cgroups.Hierarchy) bool { return h.Version == 1 && h.Has("devices") })
	if g == nil {
		if mustWork {
			t.Fatal("no v1 devices controller here, and SPAWN_MUST_WORK=1")
		}
		t.Skip("no v1 devices controller here")
	}
	return g
}

func needV2(t *testing.T) *cgroups.Group {
	t.Helper()
	g := testGroup(t, isV2)
	if g == nil {
		if mustWork {
			t.Fatal("no cgroup2 here, and SPAWN_MUST_WORK=1")
		}
		t.Skip("no cgroup2 here")
	}
	return g
}

// TestAttackCgroupV1DevicesAllow: with the v1 devices controller enforcing
// the policy, container root mounts the devices hierarchy, writes "a" to
// its own cgroup's devices.allow and reads the loop device. The kernel
// never grants a v1 devices cgroup more than its parent: with the payload
// below the cgroup carrying the policy the write is refused; without the
// nesting it is the policy's own cgroup, and the write succeeds.
func TestAttackCgroupV1DevicesAllow(t *testing.T) {
	requireRoot(t)
	needV1Devices(t)
	marker := fmt.Sprintf("SPAWN-V1ALLOW-%d", os.Getpid())
	_, minor := loopDevice(t, marker)
	script := `mkdir -p /mnt/cg && mount -t cgroup -o devices none /mnt/cg || echo "mount failed"
own=$(sed -n 's/^[0-9]*:devices://p' /proc/self/cgroup)
echo "own cgroup: $own"
echo a > /mnt/cg$own/devices.allow && echo "allowed all"
` + readLoop(len(marker), minor) + `
umount /mnt/cg; true`
	runAttacks(t, marker, script, []attackCase{
		{hooks: v1Mechanism},
		// The nesting alone holds against this one.
		{hooks: v1Mechanism.with(noCgroupNS)},
		{hooks: v1Mechanism.with(noNesting), read: true},
	})
}

// moveUp is the shell of the attack that moves the container's PID 1 up
// the hierarchy of fstype (mounted at /mnt/cg), out of the cgroup the
// device policy is attached to: into the parent of its cgroup, then the
// parent's parent, up to the top of what it sees (or the test's own cgroup,
// floor, where the attack would reach the host's cgroups), reading the
// loop device after each move until it reads something.
func moveUp(mount, line, floor string, n int, minor uint32) string {
	return fmt.Sprintf(`mkdir -p /mnt/cg && mount %s none /mnt/cg || echo "mount failed"
d=$(sed -n 's/^%s//p' /proc/self/cgroup)
echo "own cgroup: $d"
while :; do
	d=$(dirname "$d")
	if echo $$ > "/mnt/cg$d/cgroup.procs"; then
		echo "moved to $d"
		%s
		[ -n "$r" ] && break
	fi
	case "$d" in /|%s) break;; esac
done
umount /mnt/cg; true`, mount, line, readLoop(n, minor), floor)
}

// TestAttackCgroupMoveOut: container root mounts the hierarchy whose
// cgroup carries the device policy (cgroup2 for the BPF program, the v1
// devices hierarchy for the v1 controller) and moves itself into the
// cgroups above its own, then reads the loop device. In a cgroup namespace
// the top of what it sees is its own payload cgroup; without one it walks
// out of the policy.
func TestAttackCgroupMoveOut(t *testing.T) {
	requireRoot(t)
	marker := fmt.Sprintf("SPAWN-MOVEOUT-%d", os.Getpid())
	_, minor := loopDevice(t, marker)
	t.Run("bpf", func(t *testing.T) {
		g := needV2(t)
		script := moveUp("-t cgroup2", "0::", relCgroup(g), len(marker), minor)
		runAttacks(t, marker, script, []attackCase{
			{},
			// The cgroup namespace alone holds against this one: its root
			// is the policy's cgroup.
			{hooks: noNesting},
			{hooks: noCgroupNS, read: true},
		})
	})
	t.Run("v1", func(t *testing.T) {
		g := needV1Devices(t)
		script := moveUp("-t cgroup -o devices", "[0-9]*:devices:", relCgroup(g), len(marker), minor)
		runAttacks(t, marker, script, []attackCase{
			{hooks: v1Mechanism},
			{hooks: v1Mechanism.with(noNesting)},
			{hooks: v1Mechanism.with(noCgroupNS), read: true},
		})
	})
}

// TestAttackCgroupBPFDetach: container root mounts cgroup2, finds spawn's
// device program on its cgroup or the ones above it that it can see,
// detaches it, and attaches an allow-all program of its own; then reads the
// loop device. The program is attached one level above the payload's
// cgroup, which the cgroup namespace hides: detaching needs a descriptor
// of that cgroup, and a program attached below never replaces it (the
// kernel runs both, and both must allow). The system call filter denies
// bpf() anyway, so the attack runs with --seccomp=no to reach the cgroup
// defences at all.
func TestAttackCgroupBPFDetach(t *testing.T) {
	requireRoot(t)
	g := needV2(t)
	marker := fmt.Sprintf("SPAWN-BPFDETACH-%d", os.Getpid())
	_, minor := loopDevice(t, marker)
	script := `mkdir -p /mnt/cg && mount -t cgroup2 none /mnt/cg || echo "mount failed"
/bin/escape bpf-devices /mnt/cg ` + relCgroup(g) + `
` + readLoop(len(marker), minor) + `
umount /mnt/cg; true`
	noSeccomp := []string{"--seccomp=no"}
	runAttacks(t, marker, script, []attackCase{
		{},
		{opts: noSeccomp},
		{hooks: noNesting, opts: noSeccomp, read: true},
		{hooks: noCgroupNS, opts: noSeccomp, read: true},
	})
}

// TestAttackCgroupReleaseAgent: a v1 hierarchy's release_agent is run by
// the kernel as root in the host's namespaces (CVE-2022-0492), and the
// kernel lets any process with CAP_SYS_ADMIN in the initial user namespace
// (container root here) set it. It exists only in a hierarchy's root
// cgroup. The container is started from the root cgroup of a v1 hierarchy
// that needs no controller of it (as everything runs on a machine not
// booted with systemd): container root must neither see that release_agent
// nor create a hierarchy of its own (whose release_agent it would set at
// mount time). spawn-cgroup makes the container's cgroups in every
// hierarchy and spawn-ns roots its cgroup namespace there: without either,
// the release_agent is in reach. The attack only looks: it never writes a
// release agent.
func TestAttackCgroupReleaseAgent(t *testing.T) {
	requireRoot(t)
	var g *cgroups.Group
	for _, c := range testCgroups {
		if c.Version == 1 && !c.Has("name=systemd") && !c.Has("memory") && !c.Has("devices") {
			g = c
			break
		}
	}
	if g == nil {
		if mustWork {
			t.Fatal("no v1 controller hierarchy here, and SPAWN_MUST_WORK=1")
		}
		t.Skip("no v1 controller hierarchy here")
	}
	ctrl := strings.Join(g.Controllers, ",")
	newName := fmt.Sprintf("spawnattack%d", os.Getpid())
	script := fmt.Sprintf(`mkdir -p /mnt/cg /mnt/new
if mount -t cgroup -o %s none /mnt/cg; then
	echo "mounted"
	[ -e /mnt/cg/release_agent ] && echo "read: release_agent"
	umount /mnt/cg
fi
if [ "$1" = try-new ]; then
	if mount -t cgroup -o none,name=%s none /mnt/new; then
		echo "read: new hierarchy"
		umount /mnt/new
	else
		echo "new hierarchy refused"
	fi
fi
true`, ctrl, newName)
	for _, tc := range []struct {
		hooks  hooks
		tryNew bool
		reach  bool
	}{
		{tryNew: true},
		{hooks: onlyNeeded, reach: true},
		{hooks: noCgroupNS, reach: true},
	} {
		t.Run(tc.hooks.String(), func(t *testing.T) {
			tree := newTree(t, "cgrelease")
			before := snapshot(t)
			arg := "look"
			if tc.tryNew {
				arg = "try-new"
			}
			argv := attackArgv(t, tree, tc.hooks.with(nil), nil, script)
			if argv[0] == "spawn" {
				argv[0] = bin("spawn")
			}
			argv = append(argv, "sh", arg)
			// The caller moves into the hierarchy's root cgroup and then
			// becomes the chain (spawn-relay execs spawn-cgroup without a
			// terminal): spawn-cgroup's cgroup there is spawn-<its PID>.
			wrapper := fmt.Sprintf(`echo $$ > %s/cgroup.procs && echo "caller $$" && exec "$@"`, g.Hierarchy.Mount)
			r := run(t, "", append([]string{"/bin/sh", "-c", wrapper, "sh"}, argv...)...)
			if r.Code != 0 {
				t.Fatalf("exit = %d; stdout %q; stderr: %s", r.Code, r.Stdout, r.Stderr)
			}
			t.Logf("container root's attack:\n%s", r.Stdout)
			var caller int
			if _, err := fmt.Sscanf(r.Stdout, "caller %d", &caller); err != nil {
				t.Fatalf("stdout %q: no caller line", r.Stdout)
			}
			if reached := strings.Contains(r.Stdout, "read: release_agent"); reached != tc.reach {
				t.Errorf("release_agent of %s visible = %v, want %v\nstdout:\n%s\nstderr: %s", g.Hierarchy.Mount, reached, tc.reach, r.Stdout, r.Stderr)
			}
			if !strings.Contains(r.Stdout, "mounted\n") {
				t.Errorf("container root could not mount %s at all: the test proves nothing\nstdout:\n%s\nstderr: %s", g.Hierarchy.Mount, r.Stdout, r.Stderr)
			}
			if tc.tryNew && !strings.Contains(r.Stdout, "new hierarchy refused\n") {
				t.Errorf("container root created a v1 hierarchy\nstdout:\n%s\nstderr: %s", r.Stdout, r.Stderr)
			}
			if left := filepath.Join(g.Hierarchy.Mount, fmt.Sprintf("spawn-%d", caller)); exists(left) {
				t.Errorf("%s left behind", left)
			}
			checkHost(t, before)
		})
	}
	if data, _ := os.ReadFile("/proc/self/cgroup"); strings.Contains(string(data), newName) {
		t.Errorf("a hierarchy named %s exists after the test: %s", newName, data)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestCgroupHooksBadInput: the hidden test hooks refuse what they do not
// know, with one line, before anything is created.
func TestCgroupHooksBadInput(t *testing.T) {
	for _, tt := range []struct {
		argv []string
		want string
	}{
		{[]string{"spawn-cgroup", "--unsafe-disable=cgroupns", "--", "true"}, `spawn-cgroup: --unsafe-disable="cgroupns": want payload-cgroup or every-hierarchy` + "\n"},
		{[]string{"spawn-ns", "--unsafe-disable=payload-cgroup", "--", "true"}, `spawn-ns: --unsafe-disable="payload-cgroup": want cgroupns` + "\n"},
	} {
		r := run(t, "", tt.argv...)
		if r.Code != 125 || r.Stderr != tt.want {
			t.Errorf("%v = %d, stderr %q; want 125, %q", tt.argv, r.Code, r.Stderr, tt.want)
		}
	}
}
