package tests

import (
	"strings"
	"testing"
)

func TestSmokeExitStatus(t *testing.T) {
	tree := newTree(t, "smoke")
	before := snapshot(t)
	r := spawn(t, tree, "--", "sh", "-c", "echo $$; hostname; exit 7")
	if r.Code != 7 {
		t.Fatalf("spawn sh -c 'exit 7' = %d, want 7; stderr: %s", r.Code, r.Stderr)
	}
	if got, want := strings.Fields(r.Stdout), []string{"1", "smoke"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("pid, hostname = %q, want %q", got, want)
	}
	checkHost(t, before)
}
