package mount

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFlagString(t *testing.T) {
	for _, tc := range []struct {
		flags uintptr
		want  string
	}{
		{0, "defaults"},
		{unix.MS_RDONLY, "ro"},
		{unix.MS_BIND | unix.MS_REC, "bind,rec"},
		{unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "nosuid,nodev,noexec"},
		{unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID, "ro,nosuid,remount,bind"},
		{unix.MS_REC | unix.MS_PRIVATE, "rec,private"},
		{unix.MS_REC | unix.MS_SLAVE, "rec,slave"},
		{unix.MS_SHARED, "shared"},
		{unix.MS_NOSUID | unix.MS_STRICTATIME, "nosuid,strictatime"},
		{unix.MS_MOVE, "move"},
		// Bits without a name are shown, not lost.
		{unix.MS_LAZYTIME, "0x2000000"},
		{unix.MS_RDONLY | unix.MS_LAZYTIME | unix.MS_POSIXACL, "ro,0x2010000"},
	} {
		if got := FlagString(tc.flags); got != tc.want {
			t.Errorf("FlagString(%#x) = %q, want %q", tc.flags, got, tc.want)
		}
	}
}

func TestError(t *testing.T) {
	for _, tc := range []struct {
		err  *Error
		want string
	}{
		{&Error{Source: "proc", Target: "/proc", FSType: "proc", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, Err: unix.EPERM},
			"mount proc on /proc (nosuid,nodev,noexec): operation not permitted"},
		{&Error{Source: "tmpfs", Target: "/dev", FSType: "tmpfs", Flags: unix.MS_NOSUID, Data: "mode=755", Err: unix.ENOENT},
			"mount tmpfs on /dev (nosuid,mode=755): no such file or directory"},
		{&Error{Source: "/etc/localtime", Target: "/etc/localtime", FSType: "ext4", Flags: unix.MS_BIND, Err: unix.EACCES},
			"mount /etc/localtime on /etc/localtime (bind): permission denied"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		if !errors.Is(tc.err, tc.err.Err) {
			t.Errorf("errors.Is(%q, %v) = false", tc.err, tc.err.Err)
		}
	}
	if !strings.Contains(Mount("", "/nonexistent/spawn-test", "", unix.MS_REC|unix.MS_PRIVATE, "").Error(), "/nonexistent/spawn-test") {
		t.Error("Mount's error does not name the target")
	}
}
