package rootfs

import (
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSplitEscaped(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want []string
	}{
		{"/a:/b:ro", -1, []string{"/a", "/b", "ro"}},
		{`/a\:b:/c`, -1, []string{"/a:b", "/c"}},
		{`/a\\:/c`, -1, []string{`/a\`, "/c"}},
		{"/t:mpol=bind:0-3", 2, []string{"/t", "mpol=bind:0-3"}},
		{`/t:a\:b`, 2, []string{"/t", `a\:b`}},
		{"", -1, []string{""}},
		{"::", -1, []string{"", "", ""}},
	} {
		got, err := splitEscaped(tc.in, tc.n)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitEscaped(%q, %d) = %q, %v; want %q", tc.in, tc.n, got, err, tc.want)
		}
	}
	if _, err := splitEscaped(`/a\`, -1); err == nil {
		t.Errorf(`splitEscaped("/a\\") = nil error, want trailing backslash`)
	}
}

func TestParseBind(t *testing.T) {
	for _, tc := range []struct {
		in        string
		ro        bool
		src, dest string
		rec       bool
		err       string
	}{
		{in: "/srv/src", src: "/srv/src", dest: "/srv/src", rec: true},
		{in: "/srv/src:/src", src: "/srv/src", dest: "/src", rec: true},
		{in: "/srv/src:/src:norbind", src: "/srv/src", dest: "/src"},
		{in: "/srv/src::norbind,rbind", src: "/srv/src", dest: "/srv/src", rec: true},
		{in: `/srv/a\:b:/x\:y`, src: "/srv/a:b", dest: "/x:y", rec: true},
		{in: "+/etc:/mnt/etc", ro: true, src: "+/etc", dest: "/mnt/etc", rec: true},
		{in: "+/etc", src: "+/etc", dest: "/etc", rec: true},
		{in: "/srv/src:/x/./y//", src: "/srv/src", dest: "/x/y", rec: true},
		{in: ":/x", err: "empty source"},
		{in: "/s:x", err: "x: not an absolute path"},
		{in: "/s:/a/../b", err: `".." is not allowed`},
		{in: "/s:/:", err: "cannot mount over the tree's root"},
		{in: "/s:/x:idmap", err: `unknown option word "idmap"`},
		{in: "/s:/x:rbind:y", err: "too many colons"},
		{in: "+x:/y", err: "+x: not an absolute path"},
	} {
		m, err := parseBind(tc.in, tc.ro)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseBind(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseBind(%q) = %v", tc.in, err)
			continue
		}
		if m.Sources[0] != tc.src || m.Dest != tc.dest || m.Recursive != tc.rec || m.ReadOnly != tc.ro || m.Kind != KindBind {
			t.Errorf("parseBind(%q) = %+v, want source %q, dest %q, recursive %v", tc.in, m, tc.src, tc.dest, tc.rec)
		}
	}
}

func TestParseTmpfs(t *testing.T) {
	for _, tc := range []struct {
		in    string
		dest  string
		flags uintptr
		data  string
		err   string
	}{
		{in: "/t", dest: "/t", flags: unix.MS_NODEV | unix.MS_STRICTATIME, data: "mode=0755"},
		{in: "/t:mode=1777,size=10%,noexec,dev", dest: "/t", flags: unix.MS_STRICTATIME | unix.MS_NOEXEC, data: "mode=0755,mode=1777,size=10%"},
		{in: "/t:ro,nosuid,uid=1000,gid=1000,inode64", dest: "/t", flags: unix.MS_NODEV | unix.MS_STRICTATIME | unix.MS_RDONLY | unix.MS_NOSUID, data: "mode=0755,uid=1000,gid=1000,inode64"},
		{in: "/t:mpol=bind:0-1", dest: "/t", flags: unix.MS_NODEV | unix.MS_STRICTATIME, data: "mode=0755,mpol=bind:0-1"},
		{in: "/t:bogus", err: `unknown option word "bogus"`},
		{in: "/t:size", err: `unknown option word "size"`},
		{in: "/t:inode64=1", err: `unknown option word "inode64=1"`},
		{in: "t", err: "not an absolute path"},
		{in: "", err: "empty destination"},
	} {
		m, err := parseTmpfs(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseTmpfs(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || m.Dest != tc.dest || m.Flags != tc.flags || m.Data != tc.data {
			t.Errorf("parseTmpfs(%q) = %+v, %v; want dest %q, flags %#x, data %q", tc.in, m, err, tc.dest, tc.flags, tc.data)
		}
	}
}

func TestParseOverlay(t *testing.T) {
	for _, tc := range []struct {
		in      string
		ro      bool
		sources []string
		dest    string
		err     string
	}{
		{in: "/l1:/l2:/up:/dst", sources: []string{"/l1", "/l2", "/up"}, dest: "/dst"},
		{in: "/l1:/up", sources: []string{"/l1", "/up"}, dest: "/up"},
		{in: "+/var::/var", sources: []string{"+/var", ""}, dest: "/var"},
		{in: "/l1:+/var", sources: []string{"/l1", "+/var"}, dest: "/var"},
		{in: "/l1:/l2:/dst", ro: true, sources: []string{"/l1", "/l2"}, dest: "/dst"},
		{in: "/x", err: "need at least two paths"},
		{in: ":/up:/dst", err: "only the upper layer may be empty"},
		{in: "/l1::/dst", ro: true, err: "only the upper layer may be empty"},
		{in: "/l1:/up:dst", err: "dst: not an absolute path"},
		{in: "/l1:/up:/", err: "cannot mount over the tree's root"},
	} {
		m, err := parseOverlay(tc.in, tc.ro)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseOverlay(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(m.Sources, tc.sources) || m.Dest != tc.dest {
			t.Errorf("parseOverlay(%q) = %+v, %v; want layers %q on %q", tc.in, m, err, tc.sources, tc.dest)
		}
	}
}

func TestOverlayData(t *testing.T) {
	if got, want := overlayData([]int{3, 4}, 5, 6), "lowerdir=/proc/self/fd/4:/proc/self/fd/3,upperdir=/proc/self/fd/5,workdir=/proc/self/fd/6"; got != want {
		t.Errorf("overlayData = %q, want %q (the top lower layer first)", got, want)
	}
	if got, want := overlayData([]int{3, 4}, -1, -1), "lowerdir=/proc/self/fd/4:/proc/self/fd/3"; got != want {
		t.Errorf("read-only overlayData = %q, want %q", got, want)
	}
}

func TestSortMounts(t *testing.T) {
	ms := []*Custom{
		{Dest: "/a/b", Kind: KindBind, Option: "1"},
		{Dest: "/ab", Kind: KindBind, Option: "2"},
		{Dest: "/a", Kind: KindInaccessible, Option: "3"},
		{Dest: "/a", Kind: KindTmpfs, Option: "4"},
		{Dest: "/a-b", Kind: KindBind, Option: "5"},
		{Dest: "/a", Kind: KindTmpfs, Option: "6"},
	}
	SortMounts(ms)
	var got []string
	for _, m := range ms {
		got = append(got, m.Option)
	}
	// /a first (on it, tmpfs before inaccessible, else as given), then what
	// lies below it, then /a-b and /ab: paths compare component by
	// component, so "/a/b" is not sorted by '/' against "/a-b".
	if want := "4 6 3 1 5 2"; strings.Join(got, " ") != want {
		t.Errorf("order = %q, want %q", strings.Join(got, " "), want)
	}
}

func TestCheckMachine(t *testing.T) {
	for name, ok := range map[string]bool{
		"web-1": true, "web_1.example.org": true, "A1": true, strings.Repeat("x", 64): true,
		"": false, strings.Repeat("x", 65): false, "a b": false, "a..b": false, ".a": false, "a.": false, "ä": false, "a/b": false,
	} {
		if err := checkMachine(name); (err == nil) != ok {
			t.Errorf("checkMachine(%q) = %v, want ok %v", name, err, ok)
		}
	}
}

func TestParseUUID(t *testing.T) {
	for in, want := range map[string]string{
		"0123456789abcdef0123456789ABCDEF":     "01234567-89ab-cdef-0123-456789abcdef",
		"01234567-89AB-cdef-0123-456789abcdef": "01234567-89ab-cdef-0123-456789abcdef",
		"":                                     "",
		"0123456789abcdef0123456789abcde":      "",
		"01234567-89ab-cdef-0123456789abcdef0": "",
		"00000000000000000000000000000000":     "",
		"x123456789abcdef0123456789abcdef":     "",
	} {
		got, err := parseUUID(in)
		if want == "" && err == nil || want != "" && got != want {
			t.Errorf("parseUUID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseVolatile(t *testing.T) {
	for in, want := range map[string]RootMode{
		"": RootBind, "no": RootBind, "false": RootBind, "yes": RootVolatile, "true": RootVolatile,
		"state": RootStateless, "overlay": RootOverlay, "Yes": RootVolatile,
	} {
		if got, err := parseVolatile(in); err != nil || got != want {
			t.Errorf("parseVolatile(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseVolatile("sometimes"); err == nil {
		t.Error(`parseVolatile("sometimes") = nil error`)
	}
}
