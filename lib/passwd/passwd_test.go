package passwd

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment:x:5:5::/:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
toor:x:0:0:second root:/toor:/bin/ash
short:x:7:7
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:1001:Bob:/home/deep/bob:/bin/bash
1002:x:1003:1003:numeric name:/home/n:/bin/sh
carol:x:1003:100:Carol:/home/carol:
broken:x:notanumber:0::/:/bin/sh
`

const testGroup = `root:x:0:
disk:x:6:alice
users:x:100:carol
alice:x:1000:
bob:x:1001:
builders:x:2000:alice,bob
self:x:1001:bob
malformed:x:
badgid:x:zz:alice
alicelike:x:3000:alice2,xalice
`

func tree(t *testing.T, passwd, group string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"passwd": passwd, "group": group} {
		if content == "-" {
			continue // leave the file out
		}
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestLookup(t *testing.T) {
	root := tree(t, testPasswd, testGroup)
	for _, tc := range []struct {
		who  string
		want User
	}{
		{"root", User{Name: "root", UID: 0, GID: 0, Home: "/root", Shell: "/bin/sh", Groups: []int{0}}},
		// By number: the first entry with that uid, as getpwuid does.
		{"0", User{Name: "root", UID: 0, GID: 0, Home: "/root", Shell: "/bin/sh", Groups: []int{0}}},
		{"toor", User{Name: "toor", UID: 0, GID: 0, Home: "/toor", Shell: "/bin/ash", Groups: []int{0}}},
		// Primary group first, then the supplementary ones in file order.
		{"alice", User{Name: "alice", UID: 1000, GID: 1000, Home: "/home/alice", Shell: "/bin/sh", Groups: []int{1000, 6, 2000}}},
		{"1000", User{Name: "alice", UID: 1000, GID: 1000, Home: "/home/alice", Shell: "/bin/sh", Groups: []int{1000, 6, 2000}}},
		// The primary group is not repeated when listed as supplementary.
		{"bob", User{Name: "bob", UID: 1001, GID: 1001, Home: "/home/deep/bob", Shell: "/bin/bash", Groups: []int{1001, 2000}}},
		{"1001", User{Name: "bob", UID: 1001, GID: 1001, Home: "/home/deep/bob", Shell: "/bin/bash", Groups: []int{1001, 2000}}},
		// A name beats a number, whichever comes first in the file.
		{"1002", User{Name: "1002", UID: 1003, GID: 1003, Home: "/home/n", Shell: "/bin/sh", Groups: []int{1003}}},
		{"1003", User{Name: "1002", UID: 1003, GID: 1003, Home: "/home/n", Shell: "/bin/sh", Groups: []int{1003}}},
		{"carol", User{Name: "carol", UID: 1003, GID: 100, Home: "/home/carol", Shell: "", Groups: []int{100}}},
	} {
		got, err := Lookup(root, tc.who)
		if err != nil {
			t.Errorf("Lookup(%q) = %v, want %+v", tc.who, err, tc.want)
			continue
		}
		if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", tc.want) {
			t.Errorf("Lookup(%q) = %+v, want %+v", tc.who, *got, tc.want)
		}
	}
}

func TestLookupErrors(t *testing.T) {
	for _, tc := range []struct {
		name          string
		passwd, group string // "-": file missing
		who           string
		want          []string // in the error
	}{
		{"unknown name", testPasswd, testGroup, "nobody", []string{`unknown user "nobody"`, "etc/passwd"}},
		{"unknown number", testPasswd, testGroup, "4242", []string{`unknown user "4242"`}},
		{"empty", testPasswd, testGroup, "", []string{`unknown user ""`}},
		{"comment is no user", testPasswd, testGroup, "# a comment", []string{"unknown user"}},
		{"short line is no user", testPasswd, testGroup, "short", []string{"unknown user"}},
		{"no passwd", "-", testGroup, "root", []string{`user "root"`, "etc/passwd", "no such file"}},
		{"bad entry", testPasswd, testGroup, "broken", []string{`user "broken"`, "bad entry", "etc/passwd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tree(t, tc.passwd, tc.group)
			u, err := Lookup(root, tc.who)
			if err == nil {
				t.Fatalf("Lookup(%q) = %+v, want an error", tc.who, *u)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Lookup(%q) = %q, want it to contain %q", tc.who, err, w)
				}
			}
			if pw := filepath.Join(root, "etc/passwd"); !strings.Contains(err.Error(), pw) {
				t.Errorf("Lookup(%q) = %q, want it to name %s", tc.who, err, pw)
			}
		})
	}
}

func TestLookupWithoutGroupFile(t *testing.T) {
	root := tree(t, testPasswd, "-")
	u, err := Lookup(root, "alice")
	if err != nil {
		t.Fatalf("Lookup(alice) without /etc/group = %v", err)
	}
	if !slices.Equal(u.Groups, []int{1000}) {
		t.Errorf("Lookup(alice) without /etc/group: groups = %v, want [1000]", u.Groups)
	}
}
