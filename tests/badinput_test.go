package tests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestBadInput: each mistake is exit 125 and one line naming the thing,
// with nothing left mounted, running or created.
func TestBadInput(t *testing.T) {
	tree := newTree(t, "bad")
	notTree := t.TempDir()
	if err := os.MkdirAll(filepath.Join(notTree, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	homes := func() []string {
		ents, _ := os.ReadDir(filepath.Join(tree, "home"))
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	homesBefore := homes()
	for _, tc := range []struct {
		name  string
		args  []string
		stage string
		want  []string
	}{
		{"missing DIR", []string{"-D", tree + "/nonexistent", "true"}, "", []string{tree + "/nonexistent", "no such file or directory"}},
		{"DIR is /", []string{"-D", "/", "true"}, "", []string{"/", "refusing"}},
		{"DIR is / by another name", []string{"-D", tree + "/../../../../../../../..", "true"}, "", []string{"refusing"}},
		{"DIR not an OS tree", []string{"-D", notTree, "true"}, "", []string{notTree, "not an OS tree"}},
		{"DIR a file", []string{"-D", tree + "/etc/passwd", "true"}, "", []string{tree + "/etc/passwd", "not a directory"}},
		{"unknown user", []string{"-D", tree, "-u", "nosuch", "true"}, "spawn-caps", []string{`"nosuch"`, "unknown user"}},
		{"unknown uid", []string{"-D", tree, "-u", "4242", "true"}, "spawn-caps", []string{`"4242"`, "unknown user"}},
		{"empty user", []string{"-D", tree, "-u", "", "true"}, "spawn-caps", []string{"-u", "empty user"}},
		{"unknown capability", []string{"-D", tree, "--capability=sys_admin,bogus", "true"}, "spawn-caps", []string{`"bogus"`, "--capability"}},
		{"unknown capability to drop", []string{"-D", tree, "--drop-capability", "CAP_NOPE", "true"}, "spawn-caps", []string{`"CAP_NOPE"`, "--drop-capability"}},
		{"hostname too long", []string{"-D", tree, "--hostname", strings.Repeat("x", 65), "true"}, "spawn-rootfs", []string{strings.Repeat("x", 65)}},
		{"unknown kill signal", []string{"-D", tree, "--kill-signal", "SIGNOPE", "true"}, "spawn-ns", []string{`"SIGNOPE"`}},
		{"bad cgroup name", []string{"-D", tree, "--name", "a/b", "true"}, "spawn-cgroup", []string{`"a/b"`}},
		{"unknown option", []string{"-D", tree, "--bogus", "true"}, "spawn", []string{"--bogus"}},
		{"missing option value", []string{"-D", tree, "-u"}, "spawn", []string{"-u"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t)
			oneError(t, run(t, "", append([]string{"spawn", "-q"}, tc.args...)...), 125, tc.stage, tc.want...)
			checkHost(t, before)
		})
	}
	if got := homes(); !slices.Equal(got, homesBefore) {
		t.Errorf("tree's /home = %q after the failures, was %q", got, homesBefore)
	}
}

// TestNotRoot: an ordinary user gets a clear error, and nothing happens.
func TestNotRoot(t *testing.T) {
	tree := newTree(t, "notroot")
	before := snapshot(t)
	for _, argv := range [][]string{
		{"spawn", "-q", "-D", tree, "--", "true"},
		{"spawn-cgroup", "--", "true"},
		{"spawn-ns", "--", "true"},
		{"spawn-rootfs", "-D", tree, "--", "true"},
	} {
		t.Run(argv[0], func(t *testing.T) {
			cmd := command(t, argv...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			stage := argv[0]
			if stage == "spawn" {
				stage = "spawn-cgroup" // the first stage that needs root
			}
			oneError(t, wait(t, cmd), 125, stage, "needs root", "uid 65534")
		})
	}
	checkHost(t, before)
}
