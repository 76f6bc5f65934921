package devices

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// The BPF_CGROUP_DEVICE program's context, struct bpf_cgroup_dev_ctx:
// access_type (u32: access bits << 16 | device type), major (u32),
// minor (u32).
const (
	ctxAccessType = 0
	ctxMajor      = 4
	ctxMinor      = 8
	// Device type values in the low half of access_type
	// (BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR).
	devBlock = 1
	devChar  = 2
)

// Program is the rules as a BPF_CGROUP_DEVICE program: it returns 1
// (allow) when some rule matches the request, else 0 (deny). Each rule is
// a run of compare-and-skip-to-next-rule jumps ending in "return 1".
func (rs Rules) Program() asm.Instructions {
	label := func(i int) string { return "rule" + strconv.Itoa(i) }
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, ctxAccessType, asm.Word),
		asm.Mov.Reg(asm.R3, asm.R2),
		asm.And.Imm(asm.R3, 0xffff), // R3: device type
		asm.RSh.Imm(asm.R2, 16),     // R2: requested access bits
		asm.LoadMem(asm.R4, asm.R1, ctxMajor, asm.Word),
		asm.LoadMem(asm.R5, asm.R1, ctxMinor, asm.Word),
	}
	for i, r := range rs {
		next := label(i + 1)
		var rule asm.Instructions
		switch r.Type {
		case Char:
			rule = append(rule, asm.JNE.Imm(asm.R3, devChar, next))
		case Block:
			rule = append(rule, asm.JNE.Imm(asm.R3, devBlock, next))
		}
		if deny := All &^ r.Access; deny != 0 {
			// Any requested bit outside the rule's access: not this rule.
			rule = append(rule, asm.JSet.Imm(asm.R2, int32(deny), next))
		}
		if r.Major != Wildcard {
			rule = append(rule, asm.JNE.Imm(asm.R4, int32(r.Major), next))
		}
		if r.Minor != Wildcard {
			rule = append(rule, asm.JNE.Imm(asm.R5, int32(r.Minor), next))
		}
		catchAll := len(rule) == 0
		rule = append(rule, asm.Mov.Imm(asm.R0, 1), asm.Return())
		rule[0] = rule[0].WithSymbol(label(i))
		insns = append(insns, rule...)
		if catchAll {
			// The verifier refuses unreachable instructions: nothing may
			// follow a rule that matches everything.
			return insns
		}
	}
	return append(insns,
		asm.Mov.Imm(asm.R0, 0).WithSymbol(label(len(rs))),
		asm.Return(),
	)
}

// Program is the rules' BPF program, loaded into the kernel.
type Program struct{ prog *ebpf.Program }

// Load loads the rules' program. It fails where the kernel has no BPF
// syscall or no CONFIG_CGROUP_BPF, or lockdown forbids it.
func (rs Rules) Load() (*Program, error) {
	spec := &ebpf.ProgramSpec{
		Name:         "spawn_devices",
		Type:         ebpf.CGroupDevice,
		AttachType:   ebpf.AttachCGroupDevice,
		Instructions: rs.Program(),
		License:      "GPL",
	}
	opts := ebpf.ProgramOptions{LogDisabled: true}
	prog, err := ebpf.NewProgramWithOptions(spec, opts)
	if errors.Is(err, unix.EPERM) {
		// Kernels before 5.11 charge BPF programs to RLIMIT_MEMLOCK, whose
		// default is small: lift it for the load only.
		var old unix.Rlimit
		if unix.Getrlimit(unix.RLIMIT_MEMLOCK, &old) == nil {
			inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
			if unix.Setrlimit(unix.RLIMIT_MEMLOCK, &inf) == nil {
				prog, err = ebpf.NewProgramWithOptions(spec, opts)
				unix.Setrlimit(unix.RLIMIT_MEMLOCK, &old)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("load BPF device program: %w", err)
	}
	return &Program{prog}, nil
}

// Close releases our handle; an attached program stays attached.
func (p *Program) Close() error { return p.prog.Close() }

// Attach attaches the program to the cgroup v2 directory dir. It uses the
// legacy BPF_PROG_ATTACH call, not a bpf_link: a link is detached when its
// descriptor closes (at our exec), while a legacy attachment lives as long
// as the cgroup. BPF_F_ALLOW_MULTI runs it alongside programs attached
// above (all must allow) and lets the container's own manager attach more
// below.
func (p *Program) Attach(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	defer unix.Close(fd)
	err = link.RawAttachProgram(link.RawAttachProgramOptions{
		Target:  fd,
		Program: p.prog,
		Attach:  ebpf.AttachCGroupDevice,
		Flags:   unix.BPF_F_ALLOW_MULTI,
	})
	if err != nil {
		return fmt.Errorf("attach BPF device program to %s: %w", dir, err)
	}
	return nil
}
