package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSpawnNSAlone: spawn-ns by itself, on the host's file system.
func TestSpawnNSAlone(t *testing.T) {
	requireRoot(t)
	before := snapshot(t)
	if r := run(t, "", "spawn-ns", "--", "sh", "-c", "echo $$"); r.Code != 0 || r.Stdout != "1\n" {
		t.Errorf("spawn-ns sh -c 'echo $$' = %d, %q, stderr %q; want 1", r.Code, r.Stdout, r.Stderr)
	}
	r := run(t, "", "spawn-ns", "--", "sh", "-c", nsScript)
	if r.Code != 0 {
		t.Fatalf("spawn-ns = %d, stderr %q", r.Code, r.Stderr)
	}
	checkNamespaces(t, r.Stdout, false)
	r = run(t, "", "spawn-ns", "--private-network", "--", "sh", "-c", nsScript+"; ls /sys/class/net")
	if r.Code != 0 {
		t.Fatalf("spawn-ns --private-network = %d, stderr %q", r.Code, r.Stderr)
	}
	checkNamespaces(t, r.Stdout, true)
	checkHost(t, before)
}

// unshared runs spawn-rootfs in new mount and UTS namespaces made by
// unshare(1), as its --help shows.
func unshared(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, "", append([]string{"unshare", "-m", "-u", "--", bin("spawn-rootfs")}, args...)...)
}

func TestSpawnRootfsAlone(t *testing.T) {
	tree := newTree(t, "rootfs-alone")
	before := snapshot(t)
	host, _ := os.Hostname()

	r := unshared(t, "-D", tree, "--", "/bin/sh", "-c", "hostname; cat /proc/self/mountinfo")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "rootfs-alone\n") {
		t.Fatalf("unshare -m -u spawn-rootfs = %d, %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	checkMounts(t, tree, strings.SplitN(r.Stdout, "\n", 2)[1])
	if r := unshared(t, "-D", tree, "--hostname", "t1", "--", "hostname"); r.Stdout != "t1\n" {
		t.Errorf("spawn-rootfs --hostname t1 hostname = %d, %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}

	for _, tc := range []struct {
		prog []string
		code int
	}{
		{[]string{"sh", "-c", "exit 7"}, 7},
		{[]string{"/etc/passwd"}, 126},
		{[]string{"nosuch-prog"}, 127},
		{[]string{"help"}, 127},
		{[]string{"go"}, 127}, // the host's programs are not in the tree
	} {
		r := unshared(t, append([]string{"-D", tree, "--"}, tc.prog...)...)
		if tc.code >= 126 {
			t.Run(strings.Join(tc.prog, " "), func(t *testing.T) { oneError(t, r, tc.code, "spawn-rootfs", tc.prog[0]) })
		} else if r.Code != tc.code {
			t.Errorf("spawn-rootfs %q = %d, stderr %q; want %d", tc.prog, r.Code, r.Stderr, tc.code)
		}
	}

	// spawn-caps is taken from the host; a spawn-* program that is not a
	// stage is the tree's.
	r = unshared(t, "-D", tree, "--", "spawn-caps", "-u", "alice", "--", "sh", "-c", "id -u; echo $container")
	if r.Code != 0 || r.Stdout != "1000\nspawn\n" {
		t.Errorf("spawn-rootfs spawn-caps -u alice = %d, %q, stderr %q; want 1000 spawn", r.Code, r.Stdout, r.Stderr)
	}

	// Without a private UTS namespace the hostname is left alone, and
	// said so unless -q.
	r = run(t, "", "unshare", "-m", "--", bin("spawn-rootfs"), "-D", tree, "--", "hostname")
	if r.Code != 0 || r.Stdout != host+"\n" || !strings.Contains(r.Stderr, "not in a private UTS namespace") {
		t.Errorf("unshare -m spawn-rootfs hostname = %d, %q, stderr %q; want %q and a notice", r.Code, r.Stdout, r.Stderr, host)
	}
	r = run(t, "", "unshare", "-m", "--", bin("spawn-rootfs"), "-q", "-D", tree, "--", "hostname")
	if r.Code != 0 || r.Stderr != "" {
		t.Errorf("unshare -m spawn-rootfs -q hostname = %d, stderr %q; want no notice", r.Code, r.Stderr)
	}

	// On the host's mount namespace it refuses, changing nothing.
	oneError(t, run(t, "", "spawn-rootfs", "-D", tree, "--", "true"), 125, "spawn-rootfs", "not in a private mount namespace")

	if now, _ := os.Hostname(); now != host {
		t.Errorf("host's hostname = %q, was %q", now, host)
	}
	checkHost(t, before)
}

// TestTreeCannotReplaceAStage: after the root switch a stage comes from the
// host, even when the tree has a program of that name; any other name,
// spawn-something included, is the tree's.
func TestTreeCannotReplaceAStage(t *testing.T) {
	tree := newTree(t, "stage-names")
	before := snapshot(t)
	for _, name := range []string{"spawn-caps", "spawn-fcgi"} {
		script := "#!/bin/sh\necho tree\\'s " + name + "\n"
		if err := os.WriteFile(filepath.Join(tree, "usr/bin", name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r := unshared(t, "-D", tree, "--", "spawn-caps", "--", "sh", "-c", "echo $container")
	if r.Code != 0 || r.Stdout != "spawn\n" {
		t.Errorf("spawn-rootfs spawn-caps = %d, %q, stderr %q; want the host's spawn-caps", r.Code, r.Stdout, r.Stderr)
	}
	r = spawn(t, tree, "--", "spawn-fcgi", "-x")
	if r.Code != 0 || r.Stdout != "tree's spawn-fcgi\n" {
		t.Errorf("spawn spawn-fcgi = %d, %q, stderr %q; want the tree's spawn-fcgi", r.Code, r.Stdout, r.Stderr)
	}
	checkHost(t, before)
}
