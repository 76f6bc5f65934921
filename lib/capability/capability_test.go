package capability

import (
	"strings"
	"testing"

	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// linuxCaps are the capability numbers of linux/capability.h, written out
// here so that the masks below do not depend on the code under test.
var linuxCaps = map[string]uint{
	"CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3,
	"FSETID": 4, "KILL": 5, "SETGID": 6, "SETUID": 7, "SETPCAP": 8,
	"LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11,
	"NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15,
	"SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18, "SYS_PTRACE": 19,
	"SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23,
	"SYS_RESOURCE": 24, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27,
	"LEASE": 28, "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30, "SETFCAP": 31,
	"MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
	"BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39,
	"CHECKPOINT_RESTORE": 40,
}

// contractRetained is the contract's retain list, as written there.
const contractRetained = "CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID, IPC_OWNER, KILL, " +
	"LEASE, LINUX_IMMUTABLE, NET_BIND_SERVICE, NET_BROADCAST, NET_RAW, SETGID, SETFCAP, " +
	"SETPCAP, SETUID, SYS_ADMIN, SYS_CHROOT, SYS_NICE, SYS_PTRACE, SYS_TTY_CONFIG"

func mask(t *testing.T, names ...string) Set {
	t.Helper()
	var s Set
	for _, n := range names {
		bit, ok := linuxCaps[strings.TrimSpace(n)]
		if !ok {
			t.Fatalf("no capability %q", n)
		}
		s |= 1 << bit
	}
	return s
}

func TestRetainedIsTheContractsList(t *testing.T) {
	want := mask(t, strings.Split(contractRetained, ",")...)
	if want != 0x94acafff {
		t.Fatalf("the contract's list = %#x, want 0x94acafff (test table broken)", uint64(want))
	}
	if got := Of(Retained...); got != want {
		t.Errorf("Of(Retained...) = %s, want %s", got, want)
	}
	if got := Bounding(0, 0); got != want {
		t.Errorf("Bounding(0, 0) = %s, want %s", got, want)
	}
}

func TestBounding(t *testing.T) {
	retained := mask(t, strings.Split(contractRetained, ",")...)
	for _, tc := range []struct {
		add, drop Set
		want      Set
	}{
		{0, 0, retained},
		{mask(t, "SYS_TIME"), 0, retained | mask(t, "SYS_TIME")},
		{0, mask(t, "SYS_ADMIN"), retained &^ mask(t, "SYS_ADMIN")},
		{0, mask(t, "SYS_ADMIN", "CHOWN"), 0x948caffe},
		// Dropping wins over adding the same capability.
		{mask(t, "NET_ADMIN"), mask(t, "NET_ADMIN"), retained},
		{All(), 0, All()},
		{0, All(), 0},
		{All(), mask(t, "SYS_MODULE"), All() &^ mask(t, "SYS_MODULE")},
	} {
		if got := Bounding(tc.add, tc.drop); got != tc.want {
			t.Errorf("Bounding(%s, %s) = %s, want %s", tc.add, tc.drop, got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Set
		err  string // in the error, "" for none
	}{
		{"CAP_SYS_ADMIN", mask(t, "SYS_ADMIN"), ""},
		{"cap_sys_admin", mask(t, "SYS_ADMIN"), ""},
		{"sys_admin", mask(t, "SYS_ADMIN"), ""},
		{"SYS_ADMIN", mask(t, "SYS_ADMIN"), ""},
		{"Cap_Sys_Admin", mask(t, "SYS_ADMIN"), ""},
		{"chown", mask(t, "CHOWN"), ""},
		{"CAP_CHECKPOINT_RESTORE", mask(t, "CHECKPOINT_RESTORE"), ""},
		{"sys_admin,net_admin", mask(t, "SYS_ADMIN", "NET_ADMIN"), ""},
		{"CAP_SYS_ADMIN, cap_net_admin ,mknod", mask(t, "SYS_ADMIN", "NET_ADMIN", "MKNOD"), ""},
		{"sys_admin,sys_admin", mask(t, "SYS_ADMIN"), ""},
		{"all", All(), ""},
		{"ALL", All(), ""},
		{"chown,all", All(), ""},
		{"", 0, ""},
		{"bogus", 0, `unknown capability "bogus"`},
		{"CAP_BOGUS", 0, `unknown capability "CAP_BOGUS"`},
		{"sys_admin,bogus", 0, `unknown capability "bogus"`},
		{"cap_", 0, `unknown capability "cap_"`},
		{"21", 0, `unknown capability "21"`},
	} {
		got, err := Parse(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("Parse(%q) = %v, want %s", tc.in, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("Parse(%q) = %s, %v; want error %q", tc.in, got, err, tc.err)
		case got != tc.want:
			t.Errorf("Parse(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestAllIsEveryKnownCapability(t *testing.T) {
	n := uint(cap.MaxBits())
	if n < 41 {
		t.Fatalf("cap.MaxBits() = %d, want at least 41 (CHECKPOINT_RESTORE is 40)", n)
	}
	if got, want := All(), Set(1<<n-1); got != want {
		t.Errorf("All() = %s, want %s", got, want)
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		s    Set
		want string
	}{
		{0, "0000000000000000"},
		{0x94acafff, "0000000094acafff"},
		{0x1ffffffffff, "000001ffffffffff"},
		{1 << 63, "8000000000000000"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("Set(%#x).String() = %q, want %q", uint64(tc.s), got, tc.want)
		}
	}
}

func TestHas(t *testing.T) {
	s := mask(t, "SYS_ADMIN", "CHOWN")
	for _, tc := range []struct {
		v    cap.Value
		want bool
	}{
		{cap.SYS_ADMIN, true},
		{cap.CHOWN, true},
		{cap.NET_ADMIN, false},
		{cap.SYS_MODULE, false},
	} {
		if got := s.Has(tc.v); got != tc.want {
			t.Errorf("%s.Has(%s) = %v, want %v", s, tc.v, got, tc.want)
		}
	}
}
