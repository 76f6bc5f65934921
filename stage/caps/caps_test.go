package caps

import (
	"slices"
	"testing"

	"spawn/lib/passwd"
)

func TestEnvironment(t *testing.T) {
	const path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	alice := &passwd.User{Name: "alice", UID: 1000, GID: 1000, Home: "/home/alice", Shell: "/bin/sh"}
	root := &passwd.User{Name: "root", Home: "/root", Shell: "/bin/sh"}
	for _, tc := range []struct {
		u    *passwd.User
		term string
		want []string
	}{
		{alice, "xterm-256color", []string{path, "TERM=xterm-256color", "HOME=/home/alice", "USER=alice", "LOGNAME=alice", "container=spawn"}},
		{root, "vt100", []string{path, "TERM=vt100", "HOME=/root", "USER=root", "LOGNAME=root", "container=spawn"}},
		// No TERM in the caller: none in the payload.
		{root, "", []string{path, "HOME=/root", "USER=root", "LOGNAME=root", "container=spawn"}},
	} {
		if got := Environment(tc.u, tc.term); !slices.Equal(got, tc.want) {
			t.Errorf("Environment(%s, %q) = %q, want %q", tc.u.Name, tc.term, got, tc.want)
		}
	}
}
