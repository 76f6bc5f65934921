package chain

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// exitCode is the code a LookPath error means (0 for none).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return -1
}

func TestLookPath(t *testing.T) {
	root := t.TempDir()
	mk := func(p string, mode os.FileMode) string {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noexec := filepath.Join(root, "noexec")
	mk("noexec/prog", 0o644)
	mk("noexec/only", 0o644)
	exec := filepath.Join(root, "exec")
	mk("exec/prog", 0o755)
	dirs := filepath.Join(root, "dirs")
	if err := os.MkdirAll(filepath.Join(dirs, "prog"), 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(root, "missing")
	notdir := mk("file", 0o644)

	for _, tc := range []struct {
		name, path string
		want       string // found path, or ""
		code       int
	}{
		// A non-executable entry earlier in PATH is passed over, as by execvp.
		{"prog", noexec + ":" + exec, exec + "/prog", 0},
		{"prog", missing + ":" + notdir + ":" + exec, exec + "/prog", 0},
		{"prog", dirs + ":" + exec, exec + "/prog", 0},
		{"prog", exec + ":" + noexec, exec + "/prog", 0},
		// Found but not executable anywhere: 126.
		{"only", noexec + ":" + exec, "", ExitCannotExec},
		{"prog", noexec, "", ExitCannotExec},
		{"prog", dirs, "", ExitCannotExec},
		// Not found: 127.
		{"nosuch", noexec + ":" + exec, "", ExitNotFound},
		{"prog", missing + ":" + notdir, "", ExitNotFound},
		{"", exec, "", ExitNotFound},
		// A name with a slash is used as it is, PATH or not.
		{exec + "/prog", noexec, exec + "/prog", 0},
		{noexec + "/prog", exec, "", ExitCannotExec},
		{exec, exec, "", ExitCannotExec},
		{missing + "/prog", exec, "", ExitNotFound},
		{notdir + "/prog", exec, "", ExitNotFound},
	} {
		got, err := LookPath(tc.name, tc.path)
		if got != tc.want || exitCode(err) != tc.code {
			t.Errorf("LookPath(%q, %q) = %q, %v (code %d); want %q, code %d",
				tc.name, tc.path, got, err, exitCode(err), tc.want, tc.code)
		}
		if err != nil && tc.name != "" && !strings.Contains(err.Error(), tc.name) {
			t.Errorf("LookPath(%q, %q) error %q does not name the program", tc.name, tc.path, err)
		}
	}
}

func TestLookPathEmptyEntryIsCwd(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prog"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if got, err := LookPath("prog", "/nonexistent::"); got != "prog" || err != nil {
		t.Errorf(`LookPath("prog", "/nonexistent::") = %q, %v; want "prog"`, got, err)
	}
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		ws   syscall.WaitStatus
		want int
	}{
		{0, 0},                                  // exited 0
		{7 << 8, 7},                             // exited 7
		{125 << 8, 125},                         // exited 125
		{255 << 8, 255},                         // exited 255
		{syscall.WaitStatus(9), 137},            // killed by SIGKILL
		{syscall.WaitStatus(15), 143},           // killed by SIGTERM
		{syscall.WaitStatus(6 | 0x80), 134},     // SIGABRT with a core dump
		{syscall.WaitStatus(0x7f | 19<<8), 125}, // stopped: not an end
	} {
		if got := ExitStatus(tc.ws); got != tc.want {
			t.Errorf("ExitStatus(%#x) = %d, want %d", uint32(tc.ws), got, tc.want)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
		ok   bool
	}{
		{"SIGTERM", syscall.SIGTERM, true},
		{"TERM", syscall.SIGTERM, true},
		{"term", syscall.SIGTERM, true},
		{"sigkill", syscall.SIGKILL, true},
		{"SIGRTMIN", 0, false}, // no such name in x/sys/unix's table
		{"9", syscall.SIGKILL, true},
		{"15", syscall.SIGTERM, true},
		{"64", 64, true},
		{"0", 0, false},
		{"-9", 0, false},
		{"65", 0, false},
		{"", 0, false},
		{"SIGBOGUS", 0, false},
		{"SIG", 0, false},
	} {
		got, err := ParseSignal(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseSignal(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), `"`+tc.in+`"`) {
			t.Errorf("ParseSignal(%q) error %q does not name the value", tc.in, err)
		}
	}
}

func TestIsStage(t *testing.T) {
	for _, tc := range []struct {
		prog string
		want bool
	}{
		{"spawn-relay", true},
		{"spawn-cgroup", true},
		{"spawn-ns", true},
		{"spawn-rootfs", true},
		{"spawn-caps", true},
		{"/usr/local/bin/spawn-caps", true},
		{"./spawn-caps", true},
		{"spawn", false},
		{"sh", false},
		{"myspawn-caps", false},
		{"/opt/spawn-caps/sh", false},
		// Other programs that happen to start with "spawn-" (Debian has
		// spawn-fcgi) belong to the tree.
		{"spawn-fcgi", false},
		{"/usr/bin/spawn-fcgi", false},
		{"spawn-", false},
	} {
		if got := IsStage(tc.prog); got != tc.want {
			t.Errorf("IsStage(%q) = %v, want %v", tc.prog, got, tc.want)
		}
	}
}

func TestNeedProg(t *testing.T) {
	if err := NeedProg("spawn-x", []string{"p"}); err != nil {
		t.Errorf("NeedProg(p) = %v, want nil", err)
	}
	err := NeedProg("spawn-x", nil)
	if exitCode(err) != ExitFailure || !strings.Contains(err.Error(), "no program given") {
		t.Errorf("NeedProg(nil) = %v, want a 125 error saying no program was given", err)
	}
}

func TestFindStage(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "spawn-fake")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "/nonexistent:"+dir)
	for _, tc := range []struct {
		name, want string
		code       int
	}{
		{"spawn-fake", p, 0},
		{p, p, 0},
		{"spawn-nosuch", "", ExitNotFound},
	} {
		got, err := FindStage(tc.name)
		if got != tc.want || exitCode(err) != tc.code {
			t.Errorf("FindStage(%q) = %q, %v; want %q, code %d", tc.name, got, err, tc.want, tc.code)
		}
	}
	// A relative PATH entry still gives an absolute path: the stage is
	// opened before the working directory can change.
	t.Chdir(filepath.Dir(dir))
	t.Setenv("PATH", filepath.Base(dir))
	if got, err := FindStage("spawn-fake"); got != p || err != nil {
		t.Errorf("FindStage(spawn-fake) with a relative PATH = %q, %v; want %q", got, err, p)
	}
}
