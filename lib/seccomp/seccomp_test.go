package seccomp

import (
	"testing"

	"golang.org/x/sys/unix"
)

// run interprets a seccomp BPF program (the subset we emit) for one call.
func run(t *testing.T, prog []unix.SockFilter, arch, nr uint32) uint32 {
	t.Helper()
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case ldAbsW:
			switch in.K {
			case offNr:
				acc = nr
			case offArch:
				acc = arch
			default:
				t.Fatalf("load of offset %d", in.K)
			}
		case jeqK, jgeK:
			hit := acc == in.K
			if in.Code == jgeK {
				hit = acc >= in.K
			}
			if hit {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case jaK:
			pc += int(in.K)
		case retK:
			return in.K
		default:
			t.Fatalf("unexpected instruction %#x at %d", in.Code, pc)
		}
	}
	t.Fatal("program ran off its end")
	return 0
}

const eperm = retErrno | uint32(unix.EPERM)

func TestProgramX86(t *testing.T) {
	f, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	prog := f.program([]abi{x8664, x32, i386})
	if len(prog) > 4096 {
		t.Fatalf("program is %d instructions, the kernel takes 4096", len(prog))
	}
	for _, tc := range []struct {
		name     string
		arch, nr uint32
		want     uint32
	}{
		{"x86-64 open_by_handle_at", auditArchX8664, 304, eperm},
		{"x86-64 kexec_load", auditArchX8664, 246, eperm},
		{"x86-64 bpf", auditArchX8664, 321, eperm},
		{"x86-64 keyctl", auditArchX8664, 250, eperm},
		{"x86-64 userfaultfd", auditArchX8664, 323, eperm},
		{"x86-64 read", auditArchX8664, 0, retAllow},
		{"x86-64 execve", auditArchX8664, 59, retAllow},
		{"x86-64 mount", auditArchX8664, 165, retAllow},
		{"x32 open_by_handle_at", auditArchX8664, 304 | x32Bit, eperm},
		{"x32 kexec_load (its own 528)", auditArchX8664, 528 | x32Bit, eperm},
		{"x32 read", auditArchX8664, 0 | x32Bit, retAllow},
		{"i386 open_by_handle_at (int 0x80)", auditArchI386, 342, eperm},
		{"i386 init_module", auditArchI386, 128, eperm},
		{"i386 bpf", auditArchI386, 357, eperm},
		{"i386 x86-64's bpf number is another call", auditArchI386, 321, retAllow},
		{"i386 read", auditArchI386, 3, retAllow},
		{"unknown arch", 0x1234, 0, retKillProcess},
	} {
		if got := run(t, prog, tc.arch, tc.nr); got != tc.want {
			t.Errorf("%s: filter(arch %#x, nr %d) = %#x, want %#x", tc.name, tc.arch, tc.nr, got, tc.want)
		}
	}
}

func TestProgramARM(t *testing.T) {
	f, _ := New(nil)
	prog := f.program([]abi{aarch64, arm})
	for _, tc := range []struct {
		arch, nr, want uint32
	}{
		{auditArchAarch64, 265, eperm}, // open_by_handle_at
		{auditArchAarch64, 63, retAllow},
		{auditArchARM, 371, eperm},
		{auditArchARM, 3, retAllow},
		{auditArchX8664, 304, retKillProcess},
	} {
		if got := run(t, prog, tc.arch, tc.nr); got != tc.want {
			t.Errorf("filter(arch %#x, nr %d) = %#x, want %#x", tc.arch, tc.nr, got, tc.want)
		}
	}
}

func TestAdjust(t *testing.T) {
	for _, tc := range []struct {
		adjust  []string
		denied  []string
		allowed []string
		err     bool
	}{
		{adjust: nil, denied: Default},
		{adjust: []string{"bpf"}, denied: []string{"kexec_load"}, allowed: []string{"bpf"}},
		{adjust: []string{"bpf perf_event_open"}, allowed: []string{"bpf", "perf_event_open"}},
		{adjust: []string{"~mount,umount2"}, denied: []string{"mount", "umount2", "bpf"}},
		{adjust: []string{"~mount", "mount"}, allowed: []string{"mount"}},
		{adjust: []string{"no_such_call"}, err: true},
	} {
		f, err := New(tc.adjust)
		if (err != nil) != tc.err {
			t.Fatalf("New(%q) error = %v, want error %v", tc.adjust, err, tc.err)
		}
		for _, n := range tc.denied {
			if !f[n] {
				t.Errorf("New(%q) allows %s, want it denied", tc.adjust, n)
			}
		}
		for _, n := range tc.allowed {
			if f[n] {
				t.Errorf("New(%q) denies %s, want it allowed", tc.adjust, n)
			}
		}
	}
}

func TestDefaultNamesKnown(t *testing.T) {
	for _, n := range Default {
		if _, ok := sysnum_x86_64[n]; !ok {
			t.Errorf("default deny %q is not an x86-64 system call", n)
		}
	}
}

func BenchmarkProgram(b *testing.B) {
	for i := 0; i < b.N; i++ {
		f, _ := New(nil)
		f.Program()
	}
}
