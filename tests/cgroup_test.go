package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"spawn/lib/cgroups"
)

// live is a container started in the background: stdin is a pipe, stdout
// is read line by line. Its stdout and stderr are files of its own, not
// pipes Wait copies from, so that a process it leaves behind holding them
// cannot make the test wait.
type live struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	errf   *os.File
	done   chan struct{}
	state  *os.ProcessState
	stderr string // once ended
}

func start(t *testing.T, argv ...string) *live {
	t.Helper()
	l := &live{cmd: command(t, argv...), lines: make(chan string, 100), done: make(chan struct{})}
	var err error
	if l.stdin, err = l.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if l.errf, err = os.CreateTemp(t.TempDir(), "stderr"); err != nil {
		t.Fatal(err)
	}
	l.cmd.Stdout, l.cmd.Stderr = pw, l.errf
	err = l.cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		t.Fatal(err)
	}
	go func() {
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case l.lines <- sc.Text():
			case <-l.done:
				return
			}
		}
	}()
	go func() {
		l.cmd.Wait()
		l.state = l.cmd.ProcessState
		data, _ := os.ReadFile(l.errf.Name())
		l.stderr = string(data)
		close(l.done)
	}()
	t.Cleanup(func() {
		// SIGTERM first: spawn-cgroup then empties and removes its cgroup,
		// which a SIGKILL would leave to a --cleanup.
		l.stdin.Close()
		l.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-l.done:
		case <-time.After(10 * time.Second):
			l.cmd.Process.Kill()
			<-l.done
		}
		l.errf.Close()
	})
	return l
}

// errText is what the command wrote to stderr so far.
func (l *live) errText() string {
	data, _ := os.ReadFile(l.errf.Name())
	return string(data)
}

// until returns the stdout lines up to (without) the line stop.
func (l *live) until(t *testing.T, stop string) []string {
	t.Helper()
	var got []string
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line := <-l.lines:
			if line == stop {
				return got
			}
			got = append(got, line)
		case <-l.done:
			t.Fatalf("%v ended before printing %q: %v; stdout %q; stderr: %s", l.cmd.Args, stop, l.state, got, l.stderr)
		case <-timeout:
			t.Fatalf("%v: no %q within 30s; stdout %q; stderr: %s", l.cmd.Args, stop, got, l.errText())
		}
	}
}

// end waits for the command and returns its exit code (128+N when it was
// killed by signal N itself).
func (l *live) end(t *testing.T) int {
	t.Helper()
	l.stdin.Close()
	select {
	case <-l.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%v did not end within 30s; stderr: %s", l.cmd.Args, l.errText())
	}
	ws := l.state.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// testGroup is this test run's own cgroup in the hierarchy matching pick.
func testGroup(t *testing.T, pick func(cgroups.Hierarchy) bool) *cgroups.Group {
	t.Helper()
	for _, g := range testCgroups {
		if pick(g.Hierarchy) {
			return g
		}
	}
	return nil
}

func isV2(h cgroups.Hierarchy) bool { return h.Version == 2 }

// payloadPID finds the host PID of the process whose command line holds
// marker and that is not one of our stages (their argv carries the
// payload's too).
func payloadPID(t *testing.T, marker string) int {
	t.Helper()
	var found []int
	for _, p := range processes(marker) {
		cl, err := os.ReadFile("/proc/" + p + "/cmdline")
		if err != nil {
			continue
		}
		argv0 := string(bytes.SplitN(cl, []byte{0}, 2)[0])
		if strings.HasPrefix(filepath.Base(argv0), "spawn") {
			continue
		}
		n, _ := strconv.Atoi(p)
		found = append(found, n)
	}
	if len(found) != 1 {
		t.Fatalf("processes with %q that are not stages = %v, want exactly one", marker, found)
	}
	return found[0]
}

// procCgroups parses a /proc/PID/cgroup into hierarchy key ("" for v2, else
// the controller list) -> path.
func procCgroups(t *testing.T, data string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(data), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 {
			m[f[1]] = f[2]
		}
	}
	return m
}

func key(h cgroups.Hierarchy) string { return strings.Join(h.Controllers, ",") }

// containerPath matches a payload's cgroup as the host sees it: the
// payload cgroup below the container's spawn-PID.
var containerPath = regexp.MustCompile(`/spawn-[0-9]+/payload$`)

// TestCgroupPayloadInItsCgroup: the payload runs in spawn-PID/payload below
// the caller's cgroup, in every hierarchy, as the host sees it; spawn-PID
// itself (which carries the limits and the device policy) holds no
// process. Inside, the payload is in a cgroup namespace of its own rooted
// there: its /proc/self/cgroup reads / in every hierarchy. It is all gone
// after the payload exits.
func TestCgroupPayloadInItsCgroup(t *testing.T) {
	tree := newTree(t, "cgself")
	before := snapshot(t)
	marker := "cgself-marker"
	l := start(t, "spawn", "-q", "-D", tree, "--", "sh", "-c", ": "+marker+"; cat /proc/self/cgroup; readlink /proc/self/ns/cgroup; echo END; read x; exit 3")
	out := l.until(t, "END")
	if len(out) < 2 {
		t.Fatalf("payload printed %q, want its /proc/self/cgroup and cgroup namespace", out)
	}
	inside := procCgroups(t, strings.Join(out[:len(out)-1], "\n"))
	hostNS, err := os.Readlink("/proc/self/ns/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if ns := out[len(out)-1]; ns == hostNS || !strings.HasPrefix(ns, "cgroup:[") {
		t.Errorf("payload's cgroup namespace = %q, want one of its own (the host's is %q)", ns, hostNS)
	}
	pid := payloadPID(t, marker)
	hostView, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	host := procCgroups(t, string(hostView))
	for _, g := range testCgroups {
		k := key(g.Hierarchy)
		if inside[k] != "/" {
			t.Errorf("payload's own view of its cgroup in %s = %q, want / (the root of its cgroup namespace)", g.Hierarchy.Mount, inside[k])
		}
		p := host[k]
		dir := filepath.Join(g.Hierarchy.Mount, p)
		if !containerPath.MatchString(p) || filepath.Dir(filepath.Dir(dir)) != g.Dir {
			t.Errorf("host's /proc/%d/cgroup for %s = %q, want spawn-PID/payload below %s", pid, g.Hierarchy.Mount, p, g.Dir)
			continue
		}
		procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(strings.Fields(string(procs)), strconv.Itoa(pid)) {
			t.Errorf("%s/cgroup.procs = %q, want the payload's PID %d in it", dir, procs, pid)
		}
		if procs, err := os.ReadFile(filepath.Join(filepath.Dir(dir), "cgroup.procs")); err != nil || len(procs) > 0 {
			t.Errorf("%s/cgroup.procs = %q (%v), want no process in the cgroup that carries the limits", filepath.Dir(dir), procs, err)
		}
	}
	if code := l.end(t); code != 3 {
		t.Errorf("exit = %d, want 3; stderr: %s", code, l.stderr)
	}
	checkHost(t, before)
}

func TestCgroupName(t *testing.T) {
	tree := newTree(t, "cgname")
	before := snapshot(t)
	name := fmt.Sprintf("spawn-named-%d", os.Getpid())
	marker := "cgname-marker"
	l := start(t, "spawn", "-q", "-D", tree, "--name="+name, "--", "sh", "-c", ": "+marker+"; echo READY; read x")
	l.until(t, "READY")
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", payloadPID(t, marker)))
	if err != nil {
		t.Fatal(err)
	}
	if p := procCgroups(t, string(data))[""]; !strings.HasSuffix(p, "/"+name+"/payload") {
		t.Errorf("payload's cgroup2 cgroup = %q, want .../%s/payload", p, name)
	}
	if code := l.end(t); code != 1 {
		t.Errorf("exit = %d, want 1 (read at EOF); stderr: %s", code, l.stderr)
	}
	checkHost(t, before)
}

// TestCgroupDaemonsKilled: processes the payload leaves behind die with
// it, in a container and with spawn-cgroup alone (no PID namespace to take
// them down), where they are re-parented away from the payload.
func TestCgroupDaemonsKilled(t *testing.T) {
	requireRoot(t)
	marker := fmt.Sprintf("1000.%d", os.Getpid())
	daemons := "setsid sleep " + marker + " </dev/null >/dev/null 2>&1 & (sleep " + marker + " </dev/null >/dev/null 2>&1 &) ; nohup sleep " + marker + " >/dev/null 2>&1 & exit 0"
	t.Run("container", func(t *testing.T) {
		tree := newTree(t, "cgdaemons")
		before := snapshot(t)
		if r := spawn(t, tree, "--", "sh", "-c", daemons); r.Code != 0 {
			t.Fatalf("exit = %d; stderr: %s", r.Code, r.Stderr)
		}
		noProcess(t, marker)
		checkHost(t, before)
	})
	t.Run("spawn-cgroup alone", func(t *testing.T) {
		before := snapshot(t)
		if r := run(t, "", "spawn-cgroup", "--", "sh", "-c", daemons); r.Code != 0 {
			t.Fatalf("exit = %d; stderr: %s", r.Code, r.Stderr)
		}
		noProcess(t, marker)
		checkHost(t, before)
	})
}

func TestCgroupPID1KilledFromHost(t *testing.T) {
	tree := newTree(t, "cgkill1")
	before := snapshot(t)
	marker := "cgkill1-marker"
	l := start(t, "spawn", "-q", "-D", tree, "--", "sh", "-c", ": "+marker+"; echo READY; read x")
	l.until(t, "READY")
	if err := syscall.Kill(payloadPID(t, marker), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := l.end(t); code != 137 {
		t.Errorf("exit = %d, want 137; stderr: %s", code, l.stderr)
	}
	noProcess(t, marker)
	checkHost(t, before)
}

func TestCgroupSIGTERMToFrontDoor(t *testing.T) {
	tree := newTree(t, "cgterm")
	before := snapshot(t)
	marker := "cgterm-marker"
	l := start(t, "spawn", "-q", "-D", tree, "--", "sh", "-c", ": "+marker+"; echo READY; sleep 1000")
	l.until(t, "READY")
	if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// spawn-ns turns SIGTERM into SIGKILL for PID 1: the chain exits 137
	// rather than dying of the signal itself.
	if code := l.end(t); code != 137 || !l.state.Exited() {
		t.Errorf("exit = %v, want exit status 137; stderr: %s", l.state, l.stderr)
	}
	noProcess(t, marker)
	checkHost(t, before)
}

// waitEmpty waits until no process is left in any spawn-* cgroup below the
// test's cgroups.
func waitEmpty(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		busy := ""
		for _, dir := range spawnCgroups(t) {
			g := &cgroups.Group{Dir: dir}
			if len(g.TreeProcs()) > 0 {
				busy = dir
			}
		}
		if busy == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still has processes after 10s", busy)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCgroupCleanupAfterKill9: a spawn-cgroup killed -9 leaves its cgroups;
// --cleanup (front door) removes them once empty.
func TestCgroupCleanupAfterKill9(t *testing.T) {
	tree := newTree(t, "cgkill9")
	before := snapshot(t)
	l := start(t, "spawn", "-q", "-D", tree, "--", "sh", "-c", "echo READY; sleep 1000")
	l.until(t, "READY")
	// Without a terminal the front door has become spawn-cgroup.
	if err := l.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := l.end(t); code != 137 {
		t.Fatalf("exit = %d, want death by SIGKILL", code)
	}
	left := spawnCgroups(t)
	if len(left) == 0 {
		t.Fatal("no spawn-* cgroup left after spawn-cgroup was killed -9: the test proves nothing")
	}
	// spawn-ns dies of its parent-death signal, and the PID namespace with
	// it: the cgroups empty by themselves.
	waitEmpty(t)
	r := run(t, "", "spawn", "--cleanup")
	if r.Code != 0 {
		t.Fatalf("spawn --cleanup = %d; stderr: %s", r.Code, r.Stderr)
	}
	for _, dir := range left {
		if !strings.Contains(r.Stdout, "removed "+dir+"\n") {
			t.Errorf("spawn --cleanup output %q does not say it removed %s", r.Stdout, dir)
		}
	}
	checkHost(t, before)
}

// TestCgroupCleanupForce: a stale cgroup that still has processes is left
// alone by --cleanup and emptied and removed by --cleanup --force; a live
// container's cgroup is never touched.
func TestCgroupCleanupForce(t *testing.T) {
	requireRoot(t)
	before := snapshot(t)
	marker := fmt.Sprintf("1001.%d", os.Getpid())
	// A live container whose cgroup --cleanup --force must leave alone.
	liveOne := start(t, "spawn-cgroup", "--", "sh", "-c", "echo READY; read x")
	liveOne.until(t, "READY")
	l := start(t, "spawn-cgroup", "--", "sh", "-c", "sleep "+marker+" </dev/null >/dev/null 2>&1 & echo READY; read x")
	l.until(t, "READY")
	if err := l.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	l.end(t)
	stale := fmt.Sprintf("spawn-%d", l.cmd.Process.Pid)
	// Nothing kills the orphaned sleeper: the stale cgroup keeps it.
	if len(processes(marker)) == 0 {
		t.Fatal("the orphaned sleeper is gone already: the test proves nothing")
	}
	r := run(t, "", "spawn-cgroup", "--cleanup")
	if r.Code != 0 || !strings.Contains(r.Stderr, stale+": 1 process still in it") || strings.Count(r.Stderr, "\n") > 2 {
		t.Errorf("--cleanup = %d, stderr %q, want 0 and a note that %s was left", r.Code, r.Stderr, stale)
	}
	if len(processes(marker)) == 0 {
		t.Error("--cleanup without --force killed the sleeper")
	}
	r = run(t, "", "spawn-cgroup", "--cleanup", "--force")
	if r.Code != 0 || !strings.Contains(r.Stdout, stale+"\n") {
		t.Errorf("--cleanup --force = %d, stdout %q, stderr %q, want %s removed", r.Code, r.Stdout, r.Stderr, stale)
	}
	if strings.Contains(r.Stdout, fmt.Sprintf("spawn-%d", liveOne.cmd.Process.Pid)) {
		t.Errorf("--cleanup --force removed a live container's cgroup: %q", r.Stdout)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(processes(marker)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	noProcess(t, marker)
	if code := liveOne.end(t); code != 1 {
		t.Errorf("the live container's exit = %d, want 1 (read at EOF); stderr: %s", code, liveOne.stderr)
	}
	checkHost(t, before)
}

func TestCgroupPidsMax(t *testing.T) {
	tree := newTree(t, "cgpids")
	before := snapshot(t)
	script := `ok=0; fail=0; i=0
while [ $i -lt 60 ]; do
	i=$((i+1))
	if (sleep 1000 &) 2>/dev/null; then ok=$((ok+1)); else fail=$((fail+1)); fi
done
echo "$ok $fail"`
	r := spawn(t, tree, "--pids-max=20", "--", "sh", "-c", script)
	var ok, fail int
	if _, err := fmt.Sscan(r.Stdout, &ok, &fail); err != nil || r.Code != 0 {
		t.Fatalf("exit = %d, stdout %q (%v); stderr: %s", r.Code, r.Stdout, err, r.Stderr)
	}
	if fail == 0 || ok == 0 || ok >= 20 {
		t.Errorf("with --pids-max=20: %d sleepers started, %d forks failed; want some of both, under 20 started", ok, fail)
	}
	// The host still forks.
	if out, err := exec.Command("true").CombinedOutput(); err != nil {
		t.Errorf("host fork after the test: %v %s", err, out)
	}
	// Without the limit, all 60 start: the limit made the failures.
	r = spawn(t, tree, "--", "sh", "-c", script)
	if strings.TrimSpace(r.Stdout) != "60 0" {
		t.Errorf("without --pids-max: %q started, failed; want 60 0", r.Stdout)
	}
	checkHost(t, before)
}

func TestCgroupMemoryMax(t *testing.T) {
	tree := newTree(t, "cgmem")
	before := snapshot(t)
	// dd's one 400 MB block is a buffer it fills before writing: it holds
	// all of it at once.
	hog := "dd if=/dev/zero of=/dev/null bs=419430400 count=1 2>/dev/null"
	r := spawn(t, tree, "--memory-max=64M", "--", "sh", "-c", hog)
	if r.Code != 137 {
		t.Errorf("exit = %d, want 137; stdout %q; stderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	if want := "spawn-cgroup: the container ran out of memory (--memory-max=64M)"; !strings.Contains(r.Stderr, want) {
		t.Errorf("stderr = %q, want a line with %q", r.Stderr, want)
	}
	// Without the limit the same payload holds its 400 MB and ends well.
	r = spawn(t, tree, "--", "sh", "-c", hog)
	if r.Code != 0 || strings.Contains(r.Stderr, "memory") {
		t.Errorf("without --memory-max: exit = %d, stderr %q, want 0 and no word of memory", r.Code, r.Stderr)
	}
	checkHost(t, before)
}

// TestCgroupLimitsWritten reads the limits back from the host, from the
// files of whichever version carries each controller here.
func TestCgroupLimitsWritten(t *testing.T) {
	tree := newTree(t, "cglimits")
	before := snapshot(t)
	marker := "cglimits-marker"
	l := start(t, "spawn", "-q", "-D", tree, "--memory-max=64M", "--memory-high=48M", "--pids-max=100",
		"--cpu-weight=50", "--cpu-max=50000/200000", "--", "sh", "-c", ": "+marker+"; echo READY; read x; exit 0")
	l.until(t, "READY")
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", payloadPID(t, marker)))
	if err != nil {
		t.Fatal(err)
	}
	// The limits are on spawn-PID, the payload's parent.
	paths := procCgroups(t, string(data))
	for k, p := range paths {
		if !containerPath.MatchString(p) {
			t.Fatalf("payload's cgroup %q: %q, want spawn-PID/payload", k, p)
		}
		paths[k] = filepath.Dir(p)
	}
	for _, tt := range []struct {
		controller string
		v2, v1     map[string]string
	}{
		{"memory", map[string]string{"memory.max": "67108864", "memory.high": "50331648"},
			map[string]string{"memory.limit_in_bytes": "67108864", "memory.soft_limit_in_bytes": "50331648"}},
		{"pids", map[string]string{"pids.max": "100"}, map[string]string{"pids.max": "100"}},
		{"cpu", map[string]string{"cpu.weight": "50", "cpu.max": "50000 200000"},
			map[string]string{"cpu.shares": "512", "cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "200000"}},
	} {
		// cgroup2 carries the controller where the container's cgroup
		// there has it; else the v1 hierarchy with it does.
		var dir string
		want := tt.v1
		if v2 := testGroup(t, isV2); v2 != nil {
			if d := filepath.Join(v2.Hierarchy.Mount, paths[""]); v2Offers(t, d, tt.controller) {
				dir, want = d, tt.v2
			}
		}
		if dir == "" {
			for _, g := range testCgroups {
				if g.Version == 1 && g.Has(tt.controller) {
					dir = filepath.Join(g.Hierarchy.Mount, paths[key(g.Hierarchy)])
				}
			}
		}
		if dir == "" {
			t.Fatalf("no cgroup carries %s", tt.controller)
		}
		for file, v := range want {
			got, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil || strings.TrimSpace(string(got)) != v {
				t.Errorf("%s/%s = %q (%v), want %q", dir, file, got, err, v)
			}
		}
	}
	if code := l.end(t); code != 0 {
		t.Errorf("exit = %d; stderr: %s", code, l.stderr)
	}
	checkHost(t, before)
}

// v2Offers reports whether the cgroup2 cgroup dir has controller enabled
// (its cgroup.controllers lists it).
func v2Offers(t *testing.T, dir, controller string) bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(strings.Fields(string(data)), controller)
}

// loopDevice attaches a loop device to an image whose first bytes are
// marker, detached when the test ends.
func loopDevice(t *testing.T, marker string) (path string, minor uint32) {
	t.Helper()
	if _, err := exec.LookPath("losetup"); err != nil {
		if mustWork {
			t.Fatal("losetup (util-linux) not installed, and SPAWN_MUST_WORK=1")
		}
		t.Skip("losetup (util-linux) not installed")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, append([]byte(marker), make([]byte, 1<<20-len(marker))...), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).Output()
	if err != nil {
		t.Fatalf("losetup --find --show %s: %v", img, err)
	}
	path = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", path).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v %s", path, err, out)
		}
	})
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFBLK || !strings.HasPrefix(path, "/dev/loop") {
		t.Fatalf("losetup gave %q (%v): not a loop block device", path, err)
	}
	return path, uint32(st.Rdev & 0xff)
}

// TestCgroupDevicePolicy is the attack: container root (given CAP_MKNOD)
// mknods a host loop device in /dev and in /tmp, and mounts devtmpfs and
// opens it there. The closed policy stops all three, by BPF and by the v1
// devices controller; with --device-policy=auto all three read the
// marker, so the test proves the policy, not the machine.
func TestCgroupDevicePolicy(t *testing.T) {
	requireRoot(t)
	marker := fmt.Sprintf("SPAWN-LOOP-MARKER-%d", os.Getpid())
	dev, minor := loopDevice(t, marker)
	attack := fmt.Sprintf(`n=%d; m=%d; name=%s
mknod /dev/xloop b 7 $m; echo "dev: $(head -c $n /dev/xloop)"
mknod /tmp/xloop b 7 $m; echo "tmp: $(head -c $n /tmp/xloop)"
mkdir -p /mnt/devtmp && mount -t devtmpfs devtmpfs /mnt/devtmp && echo "devtmpfs: $(head -c $n /mnt/devtmp/$name)"
umount /mnt/devtmp; rm -f /dev/xloop /tmp/xloop; true`, len(marker), minor, filepath.Base(dev))
	chain := func(tree string, cgroupOpts ...string) []string {
		argv := append([]string{bin("spawn-relay"), "--", bin("spawn-cgroup")}, cgroupOpts...)
		return append(argv, "--", bin("spawn-ns"), "--", bin("spawn-rootfs"), "-q", "-D", tree, "--",
			bin("spawn-caps"), "--capability=CAP_MKNOD", "--", "sh", "-c", attack)
	}
	for _, tt := range []struct {
		name  string
		opts  []string
		reads []string // the ways that must read the marker
	}{
		{"closed (default mechanism)", nil, nil},
		{"closed (BPF)", []string{"--device-mechanism=bpf"}, nil},
		{"closed (v1 devices)", []string{"--device-mechanism=v1"}, nil},
		{"auto", []string{"--device-policy=auto"}, []string{"dev", "tmp", "devtmpfs"}},
		{"closed plus the device allowed", []string{"--device-allow=" + dev + ":r"}, []string{"devtmpfs"}},
		{"closed plus the device allowed with mknod", []string{fmt.Sprintf("--device-allow=b:7:%d:rm", minor)}, []string{"dev", "tmp", "devtmpfs"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.name, "v1") {
				if _, ok := cgroups.V1(testHierarchies(), "devices"); !ok {
					t.Skip("no v1 devices controller here")
				}
			}
			if strings.Contains(tt.name, "BPF") && testGroup(t, isV2) == nil {
				t.Skip("no cgroup2 here")
			}
			tree := newTree(t, "cgdev")
			before := snapshot(t)
			r := run(t, "", chain(tree, tt.opts...)...)
			if r.Code != 0 {
				t.Fatalf("exit = %d; stdout %q; stderr: %s", r.Code, r.Stdout, r.Stderr)
			}
			for _, way := range []string{"dev", "tmp", "devtmpfs"} {
				read := strings.Contains(r.Stdout, way+": "+marker)
				want := strings.Contains(" "+strings.Join(tt.reads, " ")+" ", " "+way+" ")
				if read != want {
					t.Errorf("%s: marker read = %v, want %v; stdout %q; stderr: %s", way, read, want, r.Stdout, r.Stderr)
				}
			}
			checkHost(t, before)
		})
	}
}

func testHierarchies() []cgroups.Hierarchy {
	var hs []cgroups.Hierarchy
	for _, g := range testCgroups {
		hs = append(hs, g.Hierarchy)
	}
	return hs
}

// TestCgroupClosedPolicyKeepsAPIDevices: what a container needs still
// works under the closed policy.
func TestCgroupClosedPolicyKeepsAPIDevices(t *testing.T) {
	tree := newTree(t, "cgapi")
	before := snapshot(t)
	script := `for d in null zero full random urandom; do head -c 1 /dev/$d >/dev/null || exit 1; done
echo x > /dev/null || exit 2
exec 3<>/dev/ptmx || exit 3
echo ok`
	r := spawn(t, tree, "--", "sh", "-c", script)
	if r.Code != 0 || r.Stdout != "ok\n" {
		t.Errorf("exit = %d, stdout %q, want 0 and ok; stderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	checkHost(t, before)
}

// TestCgroupUnkillable: a process that cannot die (frozen by the test in a
// v1 freezer cgroup of its own) gets one warning after a few seconds,
// never a hang; the stale cgroup is removed by --cleanup once it is gone.
func TestCgroupUnkillable(t *testing.T) {
	requireRoot(t)
	freezer := testGroup(t, func(h cgroups.Hierarchy) bool { return h.Version == 1 && h.Has("freezer") })
	if freezer == nil || testGroup(t, isV2) == nil {
		t.Skip("needs a v1 freezer beside cgroup2 (hybrid) to make an unkillable process")
	}
	before := snapshot(t)
	ice, err := freezer.Hierarchy.Create(filepath.Base(freezer.Dir) + "/frozen")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ice.Write("freezer.state", "THAWED")
		deadline := time.Now().Add(10 * time.Second)
		for len(ice.TreeProcs()) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if err := ice.Remove(5 * time.Second); err != nil {
			t.Error(err)
		}
	})
	l := start(t, "spawn-cgroup", "--", "sh", "-c", "sleep 1000 </dev/null >/dev/null 2>&1 & echo $!; echo READY; read x; exit 0")
	sleeper, err := strconv.Atoi(strings.Join(l.until(t, "READY"), ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := ice.Add(sleeper); err != nil {
		t.Fatal(err)
	}
	if err := ice.Write("freezer.state", "FROZEN"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		state, _ := os.ReadFile(filepath.Join(ice.Dir, "freezer.state"))
		if strings.TrimSpace(string(state)) == "FROZEN" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("freezer.state = %q after 10s, want FROZEN", state)
		}
	}
	began := time.Now()
	code := l.end(t)
	took := time.Since(began)
	if code != 0 {
		t.Errorf("exit = %d, want the payload's 0; stderr: %s", code, l.stderr)
	}
	if took > 15*time.Second || took < 3*time.Second {
		t.Errorf("spawn-cgroup took %v to give up on an unkillable process, want a few seconds", took)
	}
	stderr := l.stderr
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "spawn-cgroup: warning: ") ||
		!strings.Contains(stderr, fmt.Sprintf("still holds 1 process [%d]", sleeper)) {
		t.Errorf("stderr = %q, want one warning line naming process %d", stderr, sleeper)
	}
	// Thawed, it dies of the SIGKILL it has pending; then --cleanup
	// removes what spawn-cgroup had to leave.
	if err := ice.Write("freezer.state", "THAWED"); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t)
	if r := run(t, "", "spawn-cgroup", "--cleanup", "-q"); r.Code != 0 || r.Stdout != "" {
		t.Errorf("spawn-cgroup --cleanup -q = %d, stdout %q, stderr %q, want 0 and nothing said", r.Code, r.Stdout, r.Stderr)
	}
	checkHost(t, before)
}

// TestCgroupSelfFrozen: the payload freezes a v1 freezer cgroup of its own
// below its cgroup with a process in it, and exits. A task frozen by the
// v1 freezer does not die of SIGKILL until thawed: spawn-cgroup thaws the
// container's whole freezer tree while it kills, so it ends at once,
// without a warning, and nothing is left.
func TestCgroupSelfFrozen(t *testing.T) {
	requireRoot(t)
	freezer := testGroup(t, func(h cgroups.Hierarchy) bool { return h.Version == 1 && h.Has("freezer") })
	if freezer == nil {
		t.Skip("no v1 freezer here")
	}
	before := snapshot(t)
	marker := fmt.Sprintf("1003.%d", os.Getpid())
	// The sleeper is frozen only once it is sleep (exec'ed, its output
	// redirected): a shell frozen before that would hold our pipes.
	script := fmt.Sprintf(`d=%s$(sed -n 's/^[0-9]*:freezer://p' /proc/self/cgroup)/ice
mkdir $d || exit 1
sleep %s </dev/null >/dev/null 2>&1 &
until [ "$(cat /proc/$!/comm)" = sleep ]; do :; done
echo $! > $d/cgroup.procs && echo FROZEN > $d/freezer.state || exit 1
while [ "$(cat $d/freezer.state)" != FROZEN ]; do :; done
exit 0`, freezer.Hierarchy.Mount, marker)
	t.Cleanup(func() {
		// Without the defence the sleeper stays frozen: thaw it, so that
		// the SIGKILL it has pending ends it, and remove what is left.
		for _, dir := range spawnCgroupsIn(freezer.Dir) {
			g := &cgroups.Group{Hierarchy: freezer.Hierarchy, Dir: dir}
			for _, d := range g.Tree() {
				os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0)
			}
		}
		if len(processes(marker)) > 0 {
			run(t, "", "spawn-cgroup", "--cleanup", "--force", "-q")
		}
	})
	began := time.Now()
	r := run(t, "", "spawn-cgroup", "--", "sh", "-c", script)
	took := time.Since(began)
	if r.Code != 0 || r.Stderr != "" {
		t.Errorf("exit = %d, stderr %q; want 0 and nothing said", r.Code, r.Stderr)
	}
	if took > 3*time.Second {
		t.Errorf("spawn-cgroup took %v to kill a process its payload froze, want well under the 5s kill timeout", took)
	}
	noProcess(t, marker)
	checkHost(t, before)
}

// TestCgroupBadInput: each bad option exits 125 with one line naming the
// value, and leaves nothing behind.
func TestCgroupBadInput(t *testing.T) {
	tree := newTree(t, "cgbad")
	before := snapshot(t)
	existing := fmt.Sprintf("spawn-exists-%d", os.Getpid())
	v2 := testGroup(t, isV2)
	if v2 != nil {
		if err := os.Mkdir(filepath.Join(v2.Dir, existing), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Rmdir(filepath.Join(v2.Dir, existing)) })
		before = snapshot(t)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--memory-max=12Q"}, `spawn-cgroup: --memory-max=12Q: size "12Q": want a number of bytes`},
		{[]string{"--memory-high=-1"}, `spawn-cgroup: --memory-high=-1: size "-1"`},
		{[]string{"--memory-max=99999999999T"}, `spawn-cgroup: --memory-max=99999999999T: size "99999999999T": too large`},
		{[]string{"--pids-max=0"}, `spawn-cgroup: --pids-max=0: "0": want a whole number from 1`},
		{[]string{"--cpu-weight=20000"}, `spawn-cgroup: --cpu-weight=20000: "20000": want a whole number from 1 to 10000`},
		{[]string{"--cpu-max=5/1"}, `spawn-cgroup: --cpu-max=5/1: "5/1": period "1" must be 1000..1000000`},
		{[]string{"--device-policy=open"}, `spawn-cgroup: --device-policy=open: want closed or auto`},
		{[]string{"--device-allow=x:1:2"}, `spawn-cgroup: --device-allow=x:1:2: device type "x": want c, b or a`},
		{[]string{"--device-allow=/nonexistent"}, `spawn-cgroup: --device-allow=/nonexistent: /nonexistent: no such file or directory`},
		{[]string{"--device-allow=/etc/passwd"}, `spawn-cgroup: --device-allow=/etc/passwd: /etc/passwd: not a device node`},
		{[]string{"--device-policy=auto", "--device-allow=c:1:3"}, `spawn-cgroup: --device-allow needs --device-policy=closed`},
		{[]string{"--name=a/b"}, `spawn-cgroup: --name="a/b": not a valid cgroup name`},
		{[]string{"--name=.."}, `spawn-cgroup: --name="..": not a valid cgroup name`},
		{[]string{"--force"}, `spawn-cgroup: --force only goes with --cleanup`},
		{[]string{"--cleanup", "--", "true"}, `spawn: --cleanup runs no program, but one was given: "true"`},
		{[]string{"--cleanup", "--hostname=x"}, `spawn: --cleanup runs spawn-cgroup alone: option --hostname does not apply to it`},
		{[]string{"--name=" + existing}, "spawn-cgroup: create cgroup " + filepath.Join(testCgroupDir(v2), existing) + ": file exists"},
	} {
		args := tt.args
		if !strings.Contains(strings.Join(args, " "), "--") && args[0] != "--cleanup" {
			args = append(args, "--", "true")
		}
		r := spawn(t, tree, args...)
		if tt.args[0] == "--cleanup" {
			r = run(t, "", append([]string{"spawn"}, args...)...)
		}
		if r.Code != 125 || !strings.HasPrefix(r.Stderr, tt.want) || strings.Count(r.Stderr, "\n") != 1 {
			t.Errorf("spawn %v = %d, stderr %q; want 125 and one line starting %q", args, r.Code, r.Stderr, tt.want)
		}
	}
	checkHost(t, before)
}

func testCgroupDir(g *cgroups.Group) string {
	if g == nil {
		return ""
	}
	return g.Dir
}

// TestCgroupLayouts runs spawn-cgroup where only part of this machine's
// hierarchies are visible: in a private mount namespace with cgroup2
// unmounted (a legacy v1 machine: name=systemd, freezer, v1 devices) or
// with every v1 hierarchy unmounted (a unified one, here without
// controllers). Detection must follow what is mounted.
func TestCgroupLayouts(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	v2 := testGroup(t, isV2)
	systemd := testGroup(t, func(h cgroups.Hierarchy) bool { return h.Has("name=systemd") })
	if v2 == nil || systemd == nil {
		t.Skip("needs a hybrid machine with name=systemd to hide one side of")
	}
	var v1Mounts []string
	for _, g := range testCgroups {
		if g.Version == 1 {
			v1Mounts = append(v1Mounts, g.Hierarchy.Mount)
		}
	}
	marker := fmt.Sprintf("1002.%d", os.Getpid())
	payload := "cat /proc/self/cgroup; setsid sleep " + marker + " </dev/null >/dev/null 2>&1 & exit 0"
	in := func(umount []string, args ...string) result {
		script := "umount " + strings.Join(umount, " ") + ` && exec "$@"`
		return run(t, "", append([]string{"unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", bin("spawn-cgroup")}, args...)...)
	}
	t.Run("legacy", func(t *testing.T) {
		before := snapshot(t)
		r := in([]string{v2.Hierarchy.Mount}, "--", "sh", "-c", payload)
		if r.Code != 0 {
			t.Fatalf("exit = %d; stderr: %s", r.Code, r.Stderr)
		}
		seen := procCgroups(t, r.Stdout)
		for _, g := range testCgroups {
			p := seen[key(g.Hierarchy)]
			if inSpawn := containerPath.MatchString(p); inSpawn != (g.Version == 1) {
				t.Errorf("payload's cgroup in %s = %q; in spawn-PID/payload: %v, want %v", g.Hierarchy.Mount, p, inSpawn, g.Version == 1)
			}
		}
		noProcess(t, marker)
		checkHost(t, before)
	})
	t.Run("unified", func(t *testing.T) {
		before := snapshot(t)
		r := in(v1Mounts, "--", "sh", "-c", payload)
		if r.Code != 0 {
			t.Fatalf("exit = %d; stderr: %s", r.Code, r.Stderr)
		}
		seen := procCgroups(t, r.Stdout)
		for _, g := range testCgroups {
			p := seen[key(g.Hierarchy)]
			if inSpawn := containerPath.MatchString(p); inSpawn != (g.Version == 2) {
				t.Errorf("payload's cgroup in %s = %q; in spawn-PID/payload: %v, want %v", g.Hierarchy.Mount, p, inSpawn, g.Version == 2)
			}
		}
		noProcess(t, marker)
		// This cgroup2 offers no controllers, and no v1 is left.
		r = in(v1Mounts, "--memory-max=64M", "--", "true")
		want := "spawn-cgroup: no memory controller: neither " + v2.Dir + "/cgroup.controllers (none) nor a v1 hierarchy has it\n"
		if r.Code != 125 || r.Stderr != want {
			t.Errorf("--memory-max without a memory controller = %d, %q, want 125, %q", r.Code, r.Stderr, want)
		}
		checkHost(t, before)
	})
}
