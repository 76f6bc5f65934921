// Package passwd looks users and groups up in a tree's /etc/passwd and
// /etc/group: the container's, not the host's, and without NSS, which an
// initramfs or a busybox tree does not have.
package passwd

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// User is one passwd entry with its groups resolved.
type User struct {
	Name   string
	UID    int
	GID    int
	Home   string
	Shell  string
	Groups []int // supplementary groups, the primary one first
}

// Lookup finds who (a name, or a number) in root/etc/passwd and its groups
// in root/etc/group.
func Lookup(root, who string) (*User, error) {
	pw := filepath.Join(root, "etc/passwd")
	f, err := os.Open(pw)
	if err != nil {
		return nil, fmt.Errorf("look up user %q: %w", who, err)
	}
	defer f.Close()
	var u *User
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		e := strings.Split(sc.Text(), ":")
		if len(e) < 7 || strings.HasPrefix(e[0], "#") {
			continue
		}
		// A number match is the first entry with that uid, as getpwuid
		// gives (root before a second uid 0 such as toor).
		if e[0] != who && (e[2] != who || u != nil) {
			continue
		}
		uid, err1 := strconv.Atoi(e[2])
		gid, err2 := strconv.Atoi(e[3])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("user %q: bad entry in %s", who, pw)
		}
		u = &User{Name: e[0], UID: uid, GID: gid, Home: e[5], Shell: e[6]}
		if e[0] == who {
			break // a name match beats a number match found later
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", pw, err)
	}
	if u == nil {
		return nil, fmt.Errorf("unknown user %q (not in %s)", who, pw)
	}
	groups, err := memberOf(filepath.Join(root, "etc/group"), u.Name)
	if err != nil {
		return nil, err
	}
	u.Groups = append([]int{u.GID}, without(groups, u.GID)...)
	return u, nil
}

func memberOf(path, name string) ([]int, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	var gids []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		e := strings.Split(sc.Text(), ":")
		if len(e) < 4 {
			continue
		}
		for _, m := range strings.Split(e[3], ",") {
			if m == name {
				if gid, err := strconv.Atoi(e[2]); err == nil {
					gids = append(gids, gid)
				}
				break
			}
		}
	}
	return gids, sc.Err()
}

func without(xs []int, x int) []int {
	out := xs[:0:0]
	for _, v := range xs {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}
