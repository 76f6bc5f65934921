package devices

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // Rule.String(), or "error: substring"
	}{
		{"c:1:3:rwm", "c:1:3:rwm"},
		{"c:1:3", "c:1:3:rwm"},
		{"b:7:*:r", "b:7:*:r"},
		{"c:*:*:mw", "c:*:*:wm"},
		{"a:*:*:rwm", "a:*:*:rwm"},
		{"c:4095:1048575:w", "c:4095:1048575:w"},
		{"/dev/null", "c:1:3:rwm"},
		{"/dev/null:r", "c:1:3:r"},
		{"/dev/zero:rw", "c:1:5:rw"},
		{"x:1:3:rwm", "error: device type \"x\""},
		{"c:1", "error: want TYPE:MAJOR:MINOR"},
		{"c:1:3:rwm:x", "error: want TYPE:MAJOR:MINOR"},
		{"c:-1:3", "error: major number \"-1\""},
		{"c:4096:3", "error: major number \"4096\""},
		{"c:1:1048576", "error: minor number \"1048576\""},
		{"c:one:3", "error: major number \"one\""},
		{"c:1:3:rx", "error: access"},
		{"c:1:3:", "error: no access given"},
		{"a:1:*", "error: type a (all devices) takes only *:*"},
		{"/dev/nonexistent-spawn-test", "error: /dev/nonexistent-spawn-test: no such file"},
		{"/dev", "error: /dev: not a device node"},
		{"/dev/null:q", "error: access"},
		{"", "error: want TYPE:MAJOR:MINOR"},
	} {
		r, err := Parse(tt.in)
		got := r.String()
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("Parse(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestV1(t *testing.T) {
	for _, tt := range []struct {
		r    Rule
		want string
	}{
		{Rule{Char, 1, 3, All}, "c 1:3 rwm"},
		{Rule{Block, 7, Wildcard, Read}, "b 7:* r"},
		{Rule{Any, Wildcard, Wildcard, Read | Mknod}, "a *:* rm"},
	} {
		if got := tt.r.V1(); got != tt.want {
			t.Errorf("%v.V1() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestV1Writes(t *testing.T) {
	rules := Rules{{Char, 1, 3, All}, {Block, 7, 0, Read}}
	got := fmt.Sprint(rules.V1Writes())
	want := "[[devices.deny a] [devices.allow c 1:3 rwm] [devices.allow b 7:0 r]]"
	if got != want {
		t.Errorf("V1Writes() = %s, want %s", got, want)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if err := rules.V1Apply(missing); err == nil || !strings.Contains(err.Error(), "missing/devices.deny") {
		t.Errorf("V1Apply(missing) = %v, want an error naming missing/devices.deny", err)
	}
}

// run interprets the program's kernel bytecode (the subset Program emits)
// on a bpf_cgroup_dev_ctx, so that the encoding itself, jump offsets
// included, is what is tested.
func run(t *testing.T, code []byte, devType uint32, major, minor uint32, access Access) uint64 {
	t.Helper()
	ctx := make([]byte, 12)
	binary.LittleEndian.PutUint32(ctx[0:], uint32(access)<<16|devType)
	binary.LittleEndian.PutUint32(ctx[4:], major)
	binary.LittleEndian.PutUint32(ctx[8:], minor)
	var reg [11]uint64
	set := [11]bool{1: true}
	get := func(r byte) uint64 {
		if !set[r] {
			t.Fatalf("read of uninitialised register r%d", r)
		}
		return reg[r]
	}
	for pc, steps := 0, 0; ; pc, steps = pc+1, steps+1 {
		if pc < 0 || (pc+1)*8 > len(code) || steps > 10000 {
			t.Fatalf("pc %d out of the program (%d instructions)", pc, len(code)/8)
		}
		ins := code[pc*8 : pc*8+8]
		op, dst, src := ins[0], ins[1]&0xf, ins[1]>>4
		off := int(int16(binary.LittleEndian.Uint16(ins[2:])))
		imm := uint64(int64(int32(binary.LittleEndian.Uint32(ins[4:]))))
		switch op {
		case 0x61: // ldxw dst, [src+off]; src is the context
			if src != 1 || off < 0 || off+4 > len(ctx) {
				t.Fatalf("insn %d: load from r%d%+d: not the context", pc, src, off)
			}
			reg[dst], set[dst] = uint64(binary.LittleEndian.Uint32(ctx[off:])), true
		case 0xbf: // mov dst, src
			reg[dst], set[dst] = get(src), true
		case 0xb7: // mov dst, imm
			reg[dst], set[dst] = imm, true
		case 0x57: // and dst, imm
			reg[dst] = get(dst) & imm
		case 0x77: // rsh dst, imm
			reg[dst] = get(dst) >> imm
		case 0x55: // jne dst, imm
			if get(dst) != imm {
				pc += off
			}
		case 0x45: // jset dst, imm
			if get(dst)&imm != 0 {
				pc += off
			}
		case 0x95: // exit
			return get(0)
		default:
			t.Fatalf("insn %d: opcode %#x not expected in a device program", pc, op)
		}
	}
}

func TestProgram(t *testing.T) {
	tables := map[string]Rules{
		"closed":    Closed,
		"empty":     nil,
		"all":       {{Any, Wildcard, Wildcard, All}},
		"read-only": {{Any, Wildcard, Wildcard, Read}},
		"extra":     append(append(Rules{}, Closed...), Tun, Rule{Block, 7, 3, Read | Write}, Rule{Char, Wildcard, 9, Mknod}),
		"blocks":    {{Block, 8, Wildcard, Read}, {Block, Wildcard, 1, Write}},
		"catch-all": {{Char, 1, 3, Read}, {Any, Wildcard, Wildcard, All}, {Block, 7, 0, Read}},
	}
	types := []struct {
		t   Type
		raw uint32
	}{{Char, devChar}, {Block, devBlock}}
	numbers := []uint32{0, 1, 2, 3, 5, 7, 8, 9, 10, 136, 200, 229, 4095}
	for name, rules := range tables {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := rules.Program().Marshal(&buf, binary.LittleEndian); err != nil {
				t.Fatal(err)
			}
			checked := 0
			for _, ty := range types {
				for _, major := range numbers {
					for _, minor := range numbers {
						for access := Access(1); access <= All; access++ {
							want := uint64(0)
							if rules.Allows(ty.t, int64(major), int64(minor), access) {
								want = 1
							}
							got := run(t, buf.Bytes(), ty.raw, major, minor, access)
							if got != want {
								t.Errorf("program(%c %d:%d %s) = %d, want %d", ty.t, major, minor, access, got, want)
							}
							checked++
						}
					}
				}
			}
			if checked == 0 {
				t.Fatal("nothing checked")
			}
		})
	}
}

func TestClosedPolicy(t *testing.T) {
	for _, tt := range []struct {
		t            Type
		major, minor int64
		access       Access
		want         bool
	}{
		{Char, 1, 3, Read | Write, true},    // null
		{Char, 1, 3, Mknod, true},           // null may be created
		{Char, 1, 9, Read, true},            // urandom
		{Char, 136, 42, Read | Write, true}, // a pty
		{Char, 5, 2, Read | Write, true},    // ptmx
		{Char, 1, 1, Read, false},           // mem
		{Char, 1, 2, Read, false},           // kmem
		{Char, 10, 200, Read, false},        // tun: only when bound
		{Block, 7, 0, Read, false},          // loop0
		{Block, 254, 0, Read, false},        // vda
		{Block, 1, 3, Read, false},          // a block device with null's numbers
		{Char, 4, 1, Write, false},          // tty1
	} {
		if got := Closed.Allows(tt.t, tt.major, tt.minor, tt.access); got != tt.want {
			t.Errorf("Closed.Allows(%c %d:%d %s) = %v, want %v", tt.t, tt.major, tt.minor, tt.access, got, tt.want)
		}
	}
}

// TestProgramLoads has the kernel's verifier accept the programs (root).
func TestProgramLoads(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("SPAWN_MUST_WORK") == "1" {
			t.Fatal("needs root, and SPAWN_MUST_WORK=1")
		}
		t.Skip("needs root")
	}
	for _, rules := range []Rules{Closed, nil, {{Any, Wildcard, Wildcard, All}}, {{Char, 1, 3, Read}, {Any, Wildcard, Wildcard, All}, {Block, 7, 0, Read}}, append(append(Rules{}, Closed...), Tun, Fuse)} {
		p, err := rules.Load()
		if err != nil {
			t.Fatalf("Load(%v) = %v", rules, err)
		}
		p.Close()
	}
	// Attaching to something that is not a cgroup fails with the path.
	p, err := Closed.Load()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dir := t.TempDir()
	if err := p.Attach(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Attach(%s) = %v, want an error naming it", dir, err)
	}
}
