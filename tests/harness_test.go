// Package tests runs the real binaries: CLI behaviour without root, and
// real containers as root against the real kernel.
package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"spawn/lib/cgroups"
)

var (
	helperDir string // test-only programs (tests/escape), static
	binDir    string // the built stages
	baseTree  string // a busybox tree, copied per test
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	binDir = os.Getenv("SPAWN_BIN")
	if binDir == "" {
		dir, err := os.MkdirTemp("", "spawn-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755) // an unprivileged test user must reach the binaries
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-trimpath", "-o", dir+"/", "./cmd/...")
		cmd.Dir = filepath.Dir(filepath.Dir(file))
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
			return 1
		}
		binDir = dir
	}
	helpers, err := os.MkdirTemp("", "spawn-helpers-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(helpers)
	os.Chmod(helpers, 0o755)
	_, file, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", helpers+"/", "./escape")
	build.Dir = filepath.Dir(file)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build test helpers: %v\n%s", err, out)
		return 1
	}
	helperDir = helpers
	baseTree = os.Getenv("SPAWN_TREE")
	if os.Geteuid() == 0 {
		leave, err := ownCgroups()
		if err != nil {
			fmt.Fprintln(os.Stderr, "tests: own cgroups:", err)
			return 1
		}
		defer leave()
	}
	return m.Run()
}

// removeStale removes the empty cgroups of test runs that died before
// removing their own (a test binary killed by its timeout): tests-PID whose
// PID is gone, with the spawn-* cgroups below it that nothing uses any more.
func removeStale(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		pid, ok := strings.CutPrefix(e.Name(), "tests-")
		if !ok || !e.IsDir() {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue
		}
		stale := filepath.Join(dir, e.Name())
		var dirs []string
		filepath.WalkDir(stale, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			syscall.Rmdir(dirs[i]) // fails, harmlessly, where processes remain
		}
	}
}

// testCgroups are the cgroups this test run moved itself into, one per
// hierarchy. Containers create theirs below them, so concurrent test runs
// on one machine never see each other's cgroups.
var testCgroups []*cgroups.Group

func ownCgroups() (leave func(), err error) {
	hs, err := cgroups.Detect()
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		removeStale(h.Dir())
	}
	name := fmt.Sprintf("tests-%d", os.Getpid())
	leave = func() {
		for i := len(testCgroups) - 1; i >= 0; i-- {
			g := testCgroups[i]
			(&cgroups.Group{Hierarchy: g.Hierarchy, Dir: g.Hierarchy.Dir()}).Add(0)
			g.Remove(5 * time.Second)
		}
	}
	for _, h := range hs {
		g, err := h.Create(name)
		if err != nil {
			leave()
			return nil, err
		}
		testCgroups = append(testCgroups, g)
		if err := g.Add(0); err != nil {
			leave()
			return nil, err
		}
	}
	return leave, nil
}

// mustWork is set in CI: a privileged test that cannot run fails.
var mustWork = os.Getenv("SPAWN_MUST_WORK") == "1"

// requireRoot skips a privileged test when not root, unless SPAWN_MUST_WORK=1.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if mustWork {
			t.Fatal("needs root, and SPAWN_MUST_WORK=1")
		}
		t.Skip("needs root")
	}
}

// bin is the path of a built stage.
func bin(name string) string { return filepath.Join(binDir, name) }

// newTree returns a fresh copy of the busybox tree, named name (its
// basename is the container's default hostname), removed after the test.
func newTree(t *testing.T, name string) string {
	t.Helper()
	requireRoot(t)
	if baseTree == "" {
		if mustWork {
			t.Fatal("SPAWN_TREE not set (make test sets it), and SPAWN_MUST_WORK=1")
		}
		t.Skip("SPAWN_TREE not set: run through make test")
	}
	parent := t.TempDir()
	// An unprivileged test user must reach the tree too.
	os.Chmod(parent, 0o755)
	os.Chmod(filepath.Dir(parent), 0o755)
	dir := filepath.Join(parent, name)
	if out, err := exec.Command("cp", "-a", baseTree, dir).CombinedOutput(); err != nil {
		t.Fatalf("copy tree: %v: %s", err, out)
	}
	return dir
}

// result is how a command ended.
type result struct {
	Stdout, Stderr string
	Code           int
}

// run runs argv (argv[0] a stage name or a path) with stdin, and fails the
// test if it does not end within a minute.
func run(t *testing.T, stdin string, argv ...string) result {
	t.Helper()
	cmd := command(t, argv...)
	cmd.Stdin = strings.NewReader(stdin)
	return wait(t, cmd)
}

// command prepares argv; a bare stage name is taken from the build.
func command(t *testing.T, argv ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	p := argv[0]
	if !strings.Contains(p, "/") && strings.HasPrefix(p, "spawn") {
		p = bin(p)
	}
	cmd := exec.CommandContext(ctx, p, argv[1:]...)
	cmd.Env = append(os.Environ(), "TERM=xterm-test")
	// A process left behind holding stdout or stderr must not hang the
	// test: Wait gives up on the output 5 s after the command ended.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func wait(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &stderr
	}
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%v: %v", cmd.Args, err)
		}
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			t.Fatalf("%v: killed by %v\nstderr: %s", cmd.Args, ws.Signal(), r.Stderr)
		}
		r.Code = ws.ExitStatus()
	}
	return r
}

// spawn runs the front door on tree with extra options and PROG ARGS.
func spawn(t *testing.T, tree string, args ...string) result {
	t.Helper()
	return run(t, "", append([]string{"spawn", "-q", "-D", tree}, args...)...)
}

// hostState is what a container must not change on the host.
type hostState struct {
	mounts  string
	cgroups []string
	tmp     string // the test's own temporary directories
}

func snapshot(t *testing.T) hostState {
	t.Helper()
	tmp := filepath.Dir(t.TempDir())
	return hostState{mounts: hostMounts(t, tmp), cgroups: spawnCgroups(t), tmp: tmp}
}

// hostMounts is the host's mount table, less mounts in other tests'
// temporary directories (/tmp/TestX...): other test runs on the machine
// mount and unmount there while this one runs.
func hostMounts(t *testing.T, own string) string {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	others := filepath.Join(os.TempDir(), "Test")
	var b strings.Builder
	for _, line := range strings.SplitAfter(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], others) &&
			f[4] != own && !strings.HasPrefix(f[4], own+"/") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

// spawnCgroups lists every spawn-* cgroup directory below this test run's
// own cgroups.
func spawnCgroups(t *testing.T) []string {
	t.Helper()
	var found []string
	for _, g := range testCgroups {
		found = append(found, spawnCgroupsIn(g.Dir)...)
	}
	sort.Strings(found)
	return found
}

func spawnCgroupsIn(dir string) []string {
	var found []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), "spawn-") {
			found = append(found, p)
			return filepath.SkipDir
		}
		return nil
	})
	return found
}

// checkHost fails the test if mounts or spawn-* cgroups differ from before.
func checkHost(t *testing.T, before hostState) {
	t.Helper()
	after := hostState{mounts: hostMounts(t, before.tmp), cgroups: spawnCgroups(t)}
	if after.mounts != before.mounts {
		t.Errorf("host mount table changed:\nbefore:\n%s\nafter:\n%s", before.mounts, after.mounts)
	}
	if strings.Join(after.cgroups, " ") != strings.Join(before.cgroups, " ") {
		t.Errorf("spawn cgroups = %v, want %v", after.cgroups, before.cgroups)
	}
}

// noProcess fails if any process on the host has marker in its command line.
func noProcess(t *testing.T, marker string) {
	t.Helper()
	if pids := processes(marker); len(pids) > 0 {
		t.Errorf("processes left running with %q in their command line: %v", marker, pids)
	}
}

func processes(marker string) []string {
	ents, _ := os.ReadDir("/proc")
	var pids []string
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		cl, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(cl, []byte(marker)) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
