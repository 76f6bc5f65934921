package tests

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// Start-up latency, per stage and for the whole chain. Run with
// `make bench` (or go test -run ^$ -bench . ./tests/ with SPAWN_BIN and
// SPAWN_TREE set); scripts/bench compares with peers side by side.
func BenchmarkStart(b *testing.B) {
	if baseTree == "" {
		b.Skip("SPAWN_TREE not set")
	}
	// A copy: containers write to their tree (resolv.conf, homes).
	tree := filepath.Join(b.TempDir(), "bench")
	if out, err := exec.Command("cp", "-a", baseTree, tree).CombinedOutput(); err != nil {
		b.Fatalf("copy tree: %v: %s", err, out)
	}
	for _, bc := range []struct {
		name string
		argv []string
	}{
		{"true", []string{"/bin/true"}},
		{"relay", []string{bin("spawn-relay"), "--", "/bin/true"}},
		{"cgroup", []string{bin("spawn-cgroup"), "--", "/bin/true"}},
		{"ns", []string{bin("spawn-ns"), "--", "/bin/true"}},
		{"ns+rootfs", []string{bin("spawn-ns"), "--", bin("spawn-rootfs"), "-q", "-D", tree, "--", "/bin/true"}},
		{"ns+rootfs+caps", []string{bin("spawn-ns"), "--", bin("spawn-rootfs"), "-q", "-D", tree, "--", bin("spawn-caps"), "--", "/bin/true"}},
		{"spawn", []string{bin("spawn"), "-q", "-D", tree, "--", "/bin/true"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if out, err := exec.Command(bc.argv[0], bc.argv[1:]...).CombinedOutput(); err != nil {
					b.Fatalf("%v: %v: %s", bc.argv, err, out)
				}
			}
		})
	}
}
