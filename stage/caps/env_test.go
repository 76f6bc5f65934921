package caps

import (
	"reflect"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSetenv(t *testing.T) {
	caller := map[string]string{"FOO": "from caller", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := caller[k]; return v, ok }
	got, err := setenv([]string{"A=1", "FOO", "NOPE", "EMPTY", "B=x=y,z", "C="}, lookup)
	want := []string{"A=1", "FOO=from caller", "EMPTY=", "B=x=y,z", "C="}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("setenv = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"=x", "1A=x", "A-B=x", "A B", ""} {
		if _, err := setenv([]string{bad}, lookup); err == nil || !strings.Contains(err.Error(), "invalid variable name") {
			t.Errorf("setenv(%q) error = %v, want invalid variable name", bad, err)
		}
	}
}

func TestMerge(t *testing.T) {
	got := merge([]string{"PATH=/bin", "HOME=/root", "TERM=x"}, []string{"HOME=/h", "A=1", "A=2", "PATH=/opt"})
	want := []string{"PATH=/opt", "HOME=/h", "TERM=x", "A=2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merge = %q, want %q", got, want)
	}
}

func TestParseRlimit(t *testing.T) {
	inf := uint64(unix.RLIM_INFINITY)
	for _, tc := range []struct {
		in   string
		res  int
		lim  syscall.Rlimit
		name string
		err  string
	}{
		{in: "RLIMIT_NOFILE=1024:4096", res: unix.RLIMIT_NOFILE, lim: syscall.Rlimit{Cur: 1024, Max: 4096}, name: "RLIMIT_NOFILE"},
		{in: "nofile=1024", res: unix.RLIMIT_NOFILE, lim: syscall.Rlimit{Cur: 1024, Max: 1024}, name: "RLIMIT_NOFILE"},
		{in: "core=infinity", res: unix.RLIMIT_CORE, lim: syscall.Rlimit{Cur: inf, Max: inf}, name: "RLIMIT_CORE"},
		{in: "Rlimit_Nproc=10:infinity", res: unix.RLIMIT_NPROC, lim: syscall.Rlimit{Cur: 10, Max: inf}, name: "RLIMIT_NPROC"},
		{in: "rttime=0", res: unix.RLIMIT_RTTIME, name: "RLIMIT_RTTIME"},
		{in: "bogus=1", err: `unknown limit "bogus"`},
		{in: "nofile", err: `unknown limit "nofile"`},
		{in: "nofile=", err: `"" is not a number`},
		{in: "nofile=-1", err: `"-1" is not a number`},
		{in: "nofile=2:1", err: "soft limit above the hard one"},
		{in: "nofile=infinity:10", err: "soft limit above the hard one"},
		{in: "nofile=1:2:3", err: `"2:3" is not a number`},
	} {
		got, err := parseRlimit(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseRlimit(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got.resource != tc.res || got.lim != tc.lim || got.name != tc.name {
			t.Errorf("parseRlimit(%q) = %+v, %v; want %s %d %+v", tc.in, got, err, tc.name, tc.res, tc.lim)
		}
	}
	if len(rlimits) != 16 {
		t.Errorf("%d limit names, want all 16 of Linux", len(rlimits))
	}
}

func TestParseUmask(t *testing.T) {
	for in, want := range map[string]int{"0022": 0o22, "077": 0o77, "0": 0, "0777": 0o777, "999": -1, "1000": -1, "": -1, "-1": -1, "u=rwx": -1} {
		got, err := parseUmask(in)
		if want < 0 && err == nil || want >= 0 && (err != nil || got != want) {
			t.Errorf("parseUmask(%q) = %#o, %v; want %#o", in, got, err, want)
		}
	}
}

func TestCheckChdir(t *testing.T) {
	if got, err := checkChdir("/src//x/"); err != nil || got != "/src/x" {
		t.Errorf("checkChdir(/src//x/) = %q, %v", got, err)
	}
	if _, err := checkChdir("src"); err == nil {
		t.Error("checkChdir(src) = nil error, want not absolute")
	}
}

func TestContainerUUID(t *testing.T) {
	for v, ok := range map[string]bool{
		"01234567-89ab-cdef-0123-456789abcdef": true,
		"01234567-89AB-cdef-0123-456789abcdef": false,
		"0123456789abcdef0123456789abcdef":     false,
		"x1234567-89ab-cdef-0123-456789abcdef": false,
		"":                                     false,
	} {
		t.Setenv("container_uuid", v)
		got := containerUUID()
		if ok != (len(got) == 1 && got[0] == "container_uuid="+v) || !ok && got != nil {
			t.Errorf("containerUUID with %q = %q, want passed on: %v", v, got, ok)
		}
	}
}
