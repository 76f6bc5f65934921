package pty

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpen(t *testing.T) {
	master, peer, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer peer.Close()
	if !IsTerminal(int(peer.Fd())) {
		t.Fatalf("peer %s is not a terminal", peer.Name())
	}
	for _, f := range []int{int(master.Fd()), int(peer.Fd())} {
		flags, err := unix.FcntlInt(uintptr(f), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("fd %d: FD_CLOEXEC not set (flags %#x, %v)", f, flags, err)
		}
	}
	// The peer is this master's: what is written on one side is read on
	// the other (raw, so nothing waits for a newline or is echoed).
	raw := Raw(*must(GetAttr(int(peer.Fd()))))
	if err := SetAttr(int(peer.Fd()), &raw); err != nil {
		t.Fatal(err)
	}
	if _, err := master.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := peer.Read(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Errorf("peer read = %q, %v; want \"ping\"", buf[:n], err)
	}
	// Nobody has it as a controlling terminal.
	if sid := Session(master); sid != 0 {
		t.Errorf("Session(new pty) = %d, want 0", sid)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestSize(t *testing.T) {
	master, peer, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer peer.Close()
	want := unix.Winsize{Row: 42, Col: 117}
	if err := SetSize(int(master.Fd()), &want); err != nil {
		t.Fatal(err)
	}
	got, err := GetSize(int(peer.Fd()))
	if err != nil || *got != want {
		t.Errorf("GetSize(peer) = %+v, %v; want %+v (set on the master)", got, err, want)
	}
}

func TestMakeRawRestore(t *testing.T) {
	master, peer, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer peer.Close()
	fd := int(peer.Fd())
	before := *must(GetAttr(fd))
	s, err := MakeRaw(fd)
	if err != nil {
		t.Fatal(err)
	}
	raw := *must(GetAttr(fd))
	for _, c := range []struct {
		name string
		set  bool
	}{
		{"ECHO", raw.Lflag&unix.ECHO != 0},
		{"ICANON", raw.Lflag&unix.ICANON != 0},
		{"ISIG", raw.Lflag&unix.ISIG != 0},
		{"IXON", raw.Iflag&unix.IXON != 0},
		{"ICRNL", raw.Iflag&unix.ICRNL != 0},
		{"OPOST", raw.Oflag&unix.OPOST != 0},
	} {
		if c.set {
			t.Errorf("raw mode: %s still set", c.name)
		}
	}
	if raw.Cc[unix.VMIN] != 1 || raw.Cc[unix.VTIME] != 0 {
		t.Errorf("raw mode: VMIN, VTIME = %d, %d; want 1, 0", raw.Cc[unix.VMIN], raw.Cc[unix.VTIME])
	}
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	if after := *must(GetAttr(fd)); after != before {
		t.Errorf("attributes after Restore = %+v, want %+v", after, before)
	}
}

func TestParseConsole(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Console
		wantErr bool
	}{
		{"interactive", Interactive, false},
		{"read-only", ReadOnly, false},
		{"passive", Passive, false},
		{"pipe", Pipe, false},
		{"autopipe", AutoPipe, false},
		{"", "", true},
		{"Interactive", "", true},
		{"bogus", "", true},
	} {
		got, err := ParseConsole(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseConsole(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "--console="+tc.in+":") {
			t.Errorf("ParseConsole(%q) error %q does not name the value", tc.in, err)
		}
	}
	for _, c := range []Console{Interactive, ReadOnly, Passive, Pipe} {
		if got := c.Resolve(); got != c {
			t.Errorf("%q.Resolve() = %q, want it unchanged", c, got)
		}
	}
}
