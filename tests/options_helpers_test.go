package tests

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// spawnWith runs the front door on tree like spawn does, with extra
// environment entries and in directory dir ("" for the test's own).
func spawnWith(t *testing.T, env []string, dir, tree string, args ...string) result {
	t.Helper()
	cmd := command(t, append([]string{"spawn", "-q", "-D", tree}, args...)...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader("")
	return wait(t, cmd)
}

// wantFailure checks a run that must fail as a stage's set-up failure:
// exit 125 and one line "STAGE: ..." on stderr holding each of want.
func wantFailure(t *testing.T, r result, stage string, want ...string) {
	t.Helper()
	if r.Code != 125 {
		t.Errorf("exit = %d, want 125; stdout: %q; stderr: %q", r.Code, r.Stdout, r.Stderr)
	}
	lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], stage+": ") {
		t.Errorf("stderr = %q, want one line starting %q", r.Stderr, stage+": ")
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("stderr = %q, want it to name %q", r.Stderr, w)
		}
	}
}

// wantOK checks a run that must succeed and returns its stdout.
func wantOK(t *testing.T, r result) string {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("exit = %d, want 0; stdout: %q; stderr: %q", r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// treeListing describes every file under dir (path, type, mode, owner,
// size, modification time and, for symlinks, target), to show that a run
// changed nothing in it.
func treeListing(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := fmt.Sprintf("%s %o %d:%d %d %d.%09d", rel, st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
		if d.Type()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// sameTree fails the test if dir's listing differs from before.
func sameTree(t *testing.T, dir, before string) {
	t.Helper()
	after := treeListing(t, dir)
	if after == before {
		return
	}
	a, b := strings.Split(before, "\n"), strings.Split(after, "\n")
	seen := map[string]bool{}
	for _, l := range a {
		seen[l] = true
	}
	var added []string
	for _, l := range b {
		if !seen[l] {
			added = append(added, l)
		}
	}
	t.Errorf("the tree %s changed; new or changed entries:\n%s", dir, strings.Join(added, "\n"))
}

// hostDir is a fresh directory on the host that the container may reach
// (mode 755), removed after the test.
func hostDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func writeHostFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitForFile polls for p until it exists or the deadline passes.
func waitForFile(p string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(p); err == nil {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// mountLine is the line of /proc/self/mounts output (as the container
// printed it) whose mount point is target, or "".
func mountLine(mounts, target string) string {
	line := ""
	for _, l := range strings.Split(mounts, "\n") {
		if f := strings.Fields(l); len(f) > 3 && f[1] == target {
			line = l // the last one is on top
		}
	}
	return line
}

// hasOption reports whether a mounts line's options include opt.
func hasOption(line, opt string) bool {
	f := strings.Fields(line)
	if len(f) < 4 {
		return false
	}
	for _, o := range strings.Split(f[3], ",") {
		if o == opt {
			return true
		}
	}
	return false
}

func chmodX(p string) error { return os.Chmod(p, 0o755) }
