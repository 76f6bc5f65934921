package cgroups

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Plan is where a container's cgroup is made: one cgroup in each hierarchy
// it uses, and which of them carries each controller it needs.
type Plan struct {
	Hierarchies []Hierarchy    // cgroup2 first
	Enable      []string       // controllers to enable below the caller's cgroup2 cgroup
	on          map[string]int // controller -> index in Hierarchies
}

// On returns the hierarchy that carries controller for the container.
func (p *Plan) On(controller string) (Hierarchy, bool) {
	i, ok := p.on[controller]
	if !ok {
		return Hierarchy{}, false
	}
	return p.Hierarchies[i], true
}

func (p *Plan) use(h Hierarchy) int {
	for i, x := range p.Hierarchies {
		if x.Mount == h.Mount {
			return i
		}
	}
	p.Hierarchies = append(p.Hierarchies, h)
	return len(p.Hierarchies) - 1
}

// Select plans a container's cgroup among the hierarchies hs (as Detect
// returns them) for the controllers it needs ("memory", "pids", "cpu";
// "devices" for the v1 devices controller): in every hierarchy the caller
// is in.
//
// Every one, not only those a limit needs: the container's cgroup
// namespace is rooted where its first process was placed, in each
// hierarchy. A hierarchy left out would show container root, which keeps
// CAP_SYS_ADMIN, the caller's own cgroup there (its limits, its freezer,
// its processes), and the hierarchy's root cgroup when the caller is in it,
// whose v1 release_agent the kernel runs as root on the host.
//
// A controller is taken from cgroup2 where the caller's cgroup offers it
// (cgroup.controllers), else from the v1 hierarchy that has it. cgroup2
// tracks the container's processes, kills them with cgroup.kill and
// carries the BPF device program; without cgroup2, v1 name=systemd tracks
// them and the v1 freezer stops forks while the container is killed.
//
// Placing a process in the v1 cgroups costs little as long as the forking
// thread moves itself ("0" to tasks, see Group.AddSelf): moving a task by
// its ID takes the kernel's threadgroup lock for writing, an RCU grace
// period (8 ms here).
func Select(hs []Hierarchy, controllers []string) (*Plan, error) {
	return plan(hs, controllers, true)
}

// SelectNeeded plans like Select, but only in cgroup2 (without it, in v1
// name=systemd and the freezer) and the v1 hierarchies the controllers
// need.
// It is a test hook: the attack tests use it to show what the other
// hierarchies are for.
func SelectNeeded(hs []Hierarchy, controllers []string) (*Plan, error) {
	return plan(hs, controllers, false)
}

func plan(hs []Hierarchy, controllers []string, every bool) (*Plan, error) {
	p := &Plan{on: map[string]int{}}
	v2, hasV2 := V2(hs)
	var offered []string
	if hasV2 {
		p.use(v2)
		var err error
		if offered, err = v2.Available(); err != nil {
			return nil, err
		}
	}
	if h, ok := V1(hs, "name=systemd"); ok && !hasV2 {
		p.use(h)
	}
	for _, c := range controllers {
		// devices and freezer are v1 controllers only: cgroup2 has a BPF
		// hook and a built-in freezer instead.
		if hasV2 && c != "devices" && c != "freezer" && contains(offered, c) {
			p.on[c] = 0
			if !contains(p.Enable, c) {
				p.Enable = append(p.Enable, c)
			}
			continue
		}
		h, ok := V1(hs, c)
		if !ok {
			return nil, noController(c, v2, hasV2, offered)
		}
		p.on[c] = p.use(h)
	}
	if !hasV2 {
		if h, ok := V1(hs, "freezer"); ok {
			p.on["freezer"] = p.use(h)
		}
	}
	for _, h := range hs {
		if every || len(p.Hierarchies) == 0 {
			// Without every, a legacy v1 machine without name=systemd or a
			// freezer: any hierarchy we are in still tracks the container.
			p.use(h)
		}
	}
	if len(p.Hierarchies) == 0 {
		return nil, errors.New("no cgroup hierarchy is mounted (neither cgroup2 nor a v1 hierarchy in /proc/self/mountinfo)")
	}
	return p, nil
}

func noController(c string, v2 Hierarchy, hasV2 bool, offered []string) error {
	if !hasV2 {
		return fmt.Errorf("no %s controller: no v1 hierarchy has it and cgroup2 is not mounted", c)
	}
	list := strings.Join(offered, " ")
	if list == "" {
		list = "none"
	}
	return fmt.Errorf("no %s controller: neither %s/cgroup.controllers (%s) nor a v1 hierarchy has it", c, v2.Dir(), list)
}

// Set is a container's cgroup in each hierarchy of its plan.
type Set struct {
	Plan   *Plan
	Groups []*Group // as Plan.Hierarchies
}

// Create makes the cgroup name below the caller's own in every hierarchy of
// the plan, enabling the plan's cgroup2 controllers first, and locks each
// (see Group.Lock). On failure, nothing is left created.
func (p *Plan) Create(name string) (*Set, error) {
	s := &Set{Plan: p}
	if len(p.Enable) > 0 {
		if err := p.Hierarchies[0].Enable(p.Enable); err != nil {
			return nil, err
		}
	}
	for _, h := range p.Hierarchies {
		g, err := h.Create(name)
		if err == nil {
			s.Groups = append(s.Groups, g)
			err = g.Lock()
		}
		if err != nil {
			s.Remove(time.Second)
			return nil, err
		}
	}
	return s, nil
}

// Nest makes the cgroup name below each of the set's cgroups and returns
// them as a set of the same plan. On failure, nothing of it is left.
//
// The container's processes go into the nested set, while the limits and
// the device policy stay on the outer one, which they cannot reach from
// inside: a v1 devices cgroup is never granted more than its parent, a v2
// BPF program attached to the outer cgroup applies to every cgroup below
// it and is detached only through a descriptor of the outer cgroup, and
// with a cgroup namespace rooted at the nested cgroup (spawn-ns) the outer
// one cannot even be named. Kill and Remove on the outer set take in the
// nested one (they walk the tree).
func (s *Set) Nest(name string) (*Set, error) {
	in := &Set{Plan: s.Plan}
	for _, g := range s.Groups {
		sub, err := g.Sub(name)
		if err != nil {
			in.Remove(time.Second)
			return nil, err
		}
		in.Groups = append(in.Groups, sub)
	}
	return in, nil
}

// On returns the container's cgroup that carries controller.
func (s *Set) On(controller string) *Group {
	if i, ok := s.Plan.on[controller]; ok {
		return s.Groups[i]
	}
	return nil
}

// V2 returns the container's cgroup2 cgroup, if it has one.
func (s *Set) V2() *Group {
	if len(s.Groups) > 0 && s.Groups[0].Version == 2 {
		return s.Groups[0]
	}
	return nil
}

// V1 returns the container's v1 cgroups.
func (s *Set) V1() []*Group {
	var v1 []*Group
	for _, g := range s.Groups {
		if g.Version == 1 {
			v1 = append(v1, g)
		}
	}
	return v1
}

// Apply writes the limits, each to the cgroup carrying its controller, in
// its v2 or v1 form.
func (s *Set) Apply(limits []Limit) error {
	for _, l := range limits {
		g := s.On(l.Controller())
		if g == nil {
			return fmt.Errorf("%s: no %s controller planned", l.File, l.Controller())
		}
		writes := [][2]string{{l.File, l.String()}}
		if g.Version == 1 {
			writes = l.V1()
		}
		for _, w := range writes {
			if err := g.Write(w[0], w[1]); err != nil {
				return fmt.Errorf("%s=%s: %w", l.File, l.String(), err)
			}
		}
	}
	return nil
}

// Kill kills every process in the container's cgroups (see Kill).
func (s *Set) Kill(timeout time.Duration, reap func()) error {
	return Kill(s.Groups, timeout, reap)
}

// Remove removes the container's cgroups, each bottom-up, and returns the
// first failure.
func (s *Set) Remove(timeout time.Duration) error {
	var first error
	for i := len(s.Groups) - 1; i >= 0; i-- {
		if err := s.Groups[i].Remove(timeout); err != nil && first == nil {
			first = err
		}
	}
	return first
}
