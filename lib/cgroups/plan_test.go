package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeMachine lays out cgroup hierarchies in a temp dir: mounts maps a
// mount point (relative to the dir) to "cgroup2" or a v1 option list, and
// own maps the same key to the caller's cgroup in it. Each own cgroup
// directory gets the files in files (relative to the mount point).
type fakeMachine struct {
	root      string
	mountinfo string
	cgroup    string
}

func newFake(t *testing.T, mounts [][3]string, files map[string]string) fakeMachine {
	t.Helper()
	root := t.TempDir()
	var mi, cg strings.Builder
	for i, m := range mounts {
		dir, kind, own := filepath.Join(root, m[0]), m[1], m[2]
		if err := os.MkdirAll(filepath.Join(dir, own), 0o755); err != nil {
			t.Fatal(err)
		}
		if kind == "cgroup2" {
			fmt.Fprintf(&mi, "%d 1 0:%d / %s rw,relatime - cgroup2 cgroup2 rw\n", 40+i, 30+i, dir)
			fmt.Fprintf(&cg, "0::%s\n", own)
		} else {
			fmt.Fprintf(&mi, "%d 1 0:%d / %s rw,relatime - cgroup cgroup rw,%s\n", 40+i, 30+i, dir, kind)
			fmt.Fprintf(&cg, "%d:%s:%s\n", i+1, kind, own)
		}
	}
	for p, content := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return fakeMachine{root, mi.String(), cg.String()}
}

func (f fakeMachine) hierarchies(t *testing.T) []Hierarchy {
	t.Helper()
	hs, err := Parse(strings.NewReader(f.mountinfo), strings.NewReader(f.cgroup))
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

var (
	// Pure v2, the caller in a cgroup that offers memory and pids only.
	unifiedMounts = [][3]string{{"cg", "cgroup2", "/user.slice/s"}}
	unifiedFiles  = map[string]string{
		"cg/user.slice/s/cgroup.controllers":     "memory pids\n",
		"cg/user.slice/s/cgroup.subtree_control": "",
	}
	// Hybrid as on our machines: v1 controllers, cgroup2 with none.
	hybridMounts = [][3]string{
		{"cpu,cpuacct", "cpu,cpuacct", "/"},
		{"memory", "memory", "/process_api/x"},
		{"devices", "devices", "/"},
		{"freezer", "freezer", "/"},
		{"pids", "pids", "/"},
		{"systemd", "name=systemd", "/"},
		{"unified", "cgroup2", "/"},
	}
	hybridFiles = map[string]string{"unified/cgroup.controllers": "\n"}
	// Legacy v1: no cgroup2.
	legacyMounts = [][3]string{
		{"memory", "memory", "/u"},
		{"devices", "devices", "/u"},
		{"freezer", "freezer", "/u"},
		{"systemd", "name=systemd", "/u/session"},
	}
)

func TestLayout(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mounts [][3]string
		files  map[string]string
		want   Layout
	}{
		{"unified", unifiedMounts, unifiedFiles, Unified},
		{"hybrid", hybridMounts, hybridFiles, Hybrid},
		{"legacy", legacyMounts, nil, Legacy},
		{"none", nil, nil, None},
	} {
		hs := newFake(t, tt.mounts, tt.files).hierarchies(t)
		if got := LayoutOf(hs); got != tt.want {
			t.Errorf("%s: LayoutOf = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// describe renders a plan as "mount[controllers]" words relative to the
// fake root, with the v2 controllers to enable.
func describe(root string, p *Plan, controllers []string) string {
	var words []string
	for _, h := range p.Hierarchies {
		words = append(words, strings.TrimPrefix(h.Mount, root+"/"))
	}
	out := strings.Join(words, " ")
	for _, c := range controllers {
		h, ok := p.On(c)
		where := "-"
		if ok {
			where = strings.TrimPrefix(h.Mount, root+"/")
		}
		out += fmt.Sprintf("; %s@%s", c, where)
	}
	if len(p.Enable) > 0 {
		out += "; enable " + strings.Join(p.Enable, ",")
	}
	return out
}

func TestSelect(t *testing.T) {
	for _, tt := range []struct {
		name        string
		mounts      [][3]string
		files       map[string]string
		controllers []string
		want        string // describe(Select), or "error: substring"
		needed      string // describe(SelectNeeded), where it differs
	}{
		{"unified, nothing needed", unifiedMounts, unifiedFiles, nil, "cg", ""},
		{"unified, memory and pids from v2", unifiedMounts, unifiedFiles,
			[]string{"memory", "pids"}, "cg; memory@cg; pids@cg; enable memory,pids", ""},
		{"unified, cpu not offered", unifiedMounts, unifiedFiles,
			[]string{"cpu"}, "error: no cpu controller: neither " /* path follows */, ""},
		{"unified, v1 devices needed", unifiedMounts, unifiedFiles,
			[]string{"devices"}, "error: no devices controller", ""},
		{"hybrid, nothing needed: every hierarchy all the same", hybridMounts, hybridFiles,
			nil, "unified cpu,cpuacct memory devices freezer pids systemd", "unified"},
		{"hybrid, limits from v1", hybridMounts, hybridFiles,
			[]string{"memory", "pids", "cpu"}, "unified memory pids cpu,cpuacct devices freezer systemd; memory@memory; pids@pids; cpu@cpu,cpuacct",
			"unified memory pids cpu,cpuacct; memory@memory; pids@pids; cpu@cpu,cpuacct"},
		{"hybrid, v1 devices", hybridMounts, hybridFiles,
			[]string{"devices"}, "unified devices cpu,cpuacct memory freezer pids systemd; devices@devices", "unified devices; devices@devices"},
		{"hybrid, a controller offered by cgroup2 is taken from it", hybridMounts,
			map[string]string{"unified/cgroup.controllers": "pids\n"},
			[]string{"pids", "memory"}, "unified memory cpu,cpuacct devices freezer pids systemd; pids@unified; memory@memory; enable pids",
			"unified memory; pids@unified; memory@memory; enable pids"},
		{"legacy: name=systemd and the freezer", legacyMounts, nil,
			[]string{"freezer"}, "systemd freezer memory devices; freezer@freezer", "systemd freezer; freezer@freezer"},
		{"legacy, memory and devices", legacyMounts, nil,
			[]string{"memory", "devices"}, "systemd memory devices freezer; memory@memory; devices@devices", ""},
		{"legacy, pids missing", legacyMounts, nil,
			[]string{"pids"}, "error: no pids controller: no v1 hierarchy has it and cgroup2 is not mounted", ""},
		{"legacy without name=systemd or freezer", [][3]string{{"pids", "pids", "/"}, {"cpu", "cpu", "/"}}, nil,
			nil, "pids cpu", "pids"},
		{"nothing mounted", nil, nil, nil, "error: no cgroup hierarchy is mounted", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.mounts, tt.files)
			for _, sel := range []struct {
				name string
				f    func([]Hierarchy, []string) (*Plan, error)
				want string
			}{{"Select", Select, tt.want}, {"SelectNeeded", SelectNeeded, tt.needed}} {
				if sel.want == "" {
					sel.want = tt.want
				}
				p, err := sel.f(f.hierarchies(t), tt.controllers)
				var got string
				if err != nil {
					got = "error: " + err.Error()
				} else {
					got = describe(f.root, p, tt.controllers)
				}
				if got != sel.want && !(strings.HasPrefix(sel.want, "error: ") && strings.HasPrefix(got, sel.want)) {
					t.Errorf("%s(%v) = %q, want %q", sel.name, tt.controllers, got, sel.want)
				}
			}
		})
	}
}

func TestCreateApplyRemove(t *testing.T) {
	// Plain directories stand in for cgroupfs: the files a kernel would
	// show are made where the test needs them.
	f := newFake(t, hybridMounts, hybridFiles)
	p, err := Select(f.hierarchies(t), []string{"memory", "pids", "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Create("spawn-test")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"memory/process_api/x/spawn-test/memory.limit_in_bytes":      "67108864",
		"memory/process_api/x/spawn-test/memory.soft_limit_in_bytes": "-1",
		"pids/spawn-test/pids.max":                                   "20",
		"cpu,cpuacct/spawn-test/cpu.shares":                          "512",
		"cpu,cpuacct/spawn-test/cpu.cfs_period_us":                   "100000",
		"cpu,cpuacct/spawn-test/cpu.cfs_quota_us":                    "50000",
	}
	for p := range want {
		os.WriteFile(filepath.Join(f.root, p), nil, 0o644)
	}
	var limits []Limit
	for _, l := range [][2]string{{"memory.max", "64M"}, {"memory.high", "max"}, {"pids.max", "20"}, {"cpu.weight", "50"}, {"cpu.max", "50000"}} {
		lim, err := ParseLimit(l[0], l[1])
		if err != nil {
			t.Fatal(err)
		}
		limits = append(limits, lim)
	}
	if err := s.Apply(limits); err != nil {
		t.Fatal(err)
	}
	for p, v := range want {
		got, _ := os.ReadFile(filepath.Join(f.root, p))
		if string(got) != v {
			t.Errorf("%s = %q, want %q", p, got, v)
		}
	}
	// A second Create of the same name fails and leaves the first alone.
	if _, err := p.Create("spawn-test"); err == nil || !strings.Contains(err.Error(), "spawn-test: file exists") {
		t.Errorf("second Create = %v, want file exists", err)
	}
	for p := range want {
		os.Remove(filepath.Join(f.root, p))
	}
	// A cgroup the payload made below ours goes too.
	os.Mkdir(filepath.Join(s.V2().Dir, "inner"), 0o755)
	if err := s.Remove(time.Second); err != nil {
		t.Fatal(err)
	}
	for _, g := range s.Groups {
		if _, err := os.Stat(g.Dir); !os.IsNotExist(err) {
			t.Errorf("%s still there after Remove (%v)", g.Dir, err)
		}
	}
}

// TestNest: the payload cgroup is made below the container's in every
// hierarchy, a v1 memory cgroup is made hierarchical first, and removing
// the container's cgroups takes it along; a failed Nest leaves none of it.
func TestNest(t *testing.T) {
	f := newFake(t, hybridMounts, hybridFiles)
	p, err := Select(f.hierarchies(t), []string{"memory"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Create("spawn-test")
	if err != nil {
		t.Fatal(err)
	}
	hier := filepath.Join(s.On("memory").Dir, "memory.use_hierarchy")
	os.WriteFile(hier, []byte("0\n"), 0o644)
	in, err := s.Nest("payload")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Groups) != len(s.Groups) {
		t.Fatalf("Nest made %d cgroups, want %d (one per hierarchy)", len(in.Groups), len(s.Groups))
	}
	for i, g := range in.Groups {
		if want := filepath.Join(s.Groups[i].Dir, "payload"); g.Dir != want {
			t.Errorf("nested cgroup %d = %s, want %s", i, g.Dir, want)
		}
		if fi, err := os.Stat(g.Dir); err != nil || !fi.IsDir() {
			t.Errorf("%s not made: %v", g.Dir, err)
		}
	}
	if got, _ := os.ReadFile(hier); strings.TrimSpace(string(got)) != "1" {
		t.Errorf("memory.use_hierarchy = %q after Nest, want 1", got)
	}
	if in.On("memory") == nil || in.On("memory").Dir != filepath.Join(s.On("memory").Dir, "payload") {
		t.Errorf("nested set's memory cgroup = %v, want payload below %s", in.On("memory"), s.On("memory").Dir)
	}
	// Nesting again fails where payload exists, and takes back what it
	// made before that.
	os.Remove(filepath.Join(in.Groups[len(in.Groups)-1].Dir))
	os.Remove(filepath.Join(in.Groups[0].Dir))
	if _, err := s.Nest("payload"); err == nil || !strings.Contains(err.Error(), "payload: file exists") {
		t.Errorf("second Nest = %v, want file exists", err)
	}
	if _, err := os.Stat(in.Groups[0].Dir); !os.IsNotExist(err) {
		t.Errorf("%s left after a failed Nest (%v)", in.Groups[0].Dir, err)
	}
	os.Remove(hier)
	if err := s.Remove(time.Second); err != nil {
		t.Fatal(err)
	}
	for _, g := range append(in.Groups, s.Groups...) {
		if _, err := os.Stat(g.Dir); !os.IsNotExist(err) {
			t.Errorf("%s still there after Remove (%v)", g.Dir, err)
		}
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	f := newFake(t, hybridMounts, hybridFiles)
	hs := f.hierarchies(t)
	p, err := Select(hs, []string{"pids"})
	if err != nil {
		t.Fatal(err)
	}
	// The name already exists in the last hierarchy only.
	os.Mkdir(filepath.Join(f.root, "pids", "spawn-x"), 0o755)
	if _, err := p.Create("spawn-x"); err == nil {
		t.Fatal("Create over an existing cgroup succeeded")
	}
	for _, d := range []string{"unified/spawn-x", "systemd/spawn-x"} {
		if _, err := os.Stat(filepath.Join(f.root, d)); !os.IsNotExist(err) {
			t.Errorf("%s left after a failed Create (%v)", d, err)
		}
	}
}

func TestStaleAndLock(t *testing.T) {
	f := newFake(t, hybridMounts, hybridFiles)
	hs := f.hierarchies(t)
	for _, d := range []string{"unified/spawn-1", "unified/spawn-2", "unified/other", "pids/spawn-3", "unified/spawn-1/spawn-nested"} {
		os.MkdirAll(filepath.Join(f.root, d), 0o755)
	}
	os.WriteFile(filepath.Join(f.root, "unified/spawn-file"), nil, 0o644)
	var got []string
	for _, g := range Stale(hs, "spawn-") {
		got = append(got, strings.TrimPrefix(g.Dir, f.root+"/"))
	}
	if strings.Join(got, " ") != "unified/spawn-1 unified/spawn-2 pids/spawn-3" {
		t.Errorf("Stale = %v, want [unified/spawn-1 unified/spawn-2 pids/spawn-3]", got)
	}
	owner := &Group{Dir: filepath.Join(f.root, "unified/spawn-1")}
	if err := owner.Lock(); err != nil {
		t.Fatal(err)
	}
	other := &Group{Dir: owner.Dir}
	if err := other.TryLockExclusive(); err == nil {
		t.Error("TryLockExclusive on a cgroup whose owner holds its lock succeeded")
	}
	owner.Unlock()
	if err := other.TryLockExclusive(); err != nil {
		t.Errorf("TryLockExclusive after the owner let go = %v", err)
	}
	// The owner cannot lock a cgroup a cleanup is holding.
	if err := owner.Lock(); err == nil || !strings.Contains(err.Error(), "--cleanup is removing it") {
		t.Errorf("Lock during a cleanup = %v, want it refused", err)
	}
	other.Unlock()
}

func TestOOMKills(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "memory.events"), []byte("low 0\nhigh 3\nmax 10\noom 2\noom_kill 1\noom_group_kill 0\n"), 0o644)
	if n, ok := (&Group{Hierarchy: Hierarchy{Version: 2}, Dir: dir}).OOMKills(); n != 1 || !ok {
		t.Errorf("v2 OOMKills = %d, %v, want 1, true", n, ok)
	}
	os.Mkdir(filepath.Join(dir, "inner"), 0o755)
	os.WriteFile(filepath.Join(dir, "memory.oom_control"), []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "inner", "memory.oom_control"), []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"), 0o644)
	if n, ok := (&Group{Hierarchy: Hierarchy{Version: 1}, Dir: dir}).OOMKills(); n != 5 || !ok {
		t.Errorf("v1 OOMKills = %d, %v, want 5 (summed over the tree), true", n, ok)
	}
	if n, ok := (&Group{Hierarchy: Hierarchy{Version: 1}, Dir: filepath.Join(dir, "none")}).OOMKills(); n != 0 || ok {
		t.Errorf("OOMKills without the file = %d, %v, want 0, false", n, ok)
	}
}

func TestEnable(t *testing.T) {
	f := newFake(t, unifiedMounts, map[string]string{
		"cg/user.slice/s/cgroup.controllers":     "memory pids\n",
		"cg/user.slice/s/cgroup.subtree_control": "pids\n",
	})
	h, _ := V2(f.hierarchies(t))
	// pids is on already: only memory is written.
	if err := h.Enable([]string{"pids", "memory"}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(h.Dir(), "cgroup.subtree_control"))
	if string(got) != "+memory" {
		t.Errorf("subtree_control written = %q, want %q", got, "+memory")
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"4096", 4096, ""},
		{"1K", 1024, ""},
		{"1k", 1024, ""},
		{"64M", 64 << 20, ""},
		{"64m", 64 << 20, ""},
		{"2G", 2 << 30, ""},
		{"1T", 1 << 40, ""},
		{"max", Max, ""},
		{"8191P", 0, "want a number"},
		{"12Q", 0, "want a number"},
		{"", 0, "want a number"},
		{"M", 0, "want a number"},
		{"-1", 0, "want a number"},
		{"1.5G", 0, "want a number"},
		{" 64M", 0, "want a number"},
		{"64MB", 0, "want a number"},
		{"0x10", 0, "want a number"},
		{"9223372036854775807", 1<<63 - 1, ""},
		{"9223372036854775808", 0, "too large"},
		{"8388608T", 0, "too large"},
		{"8388607T", 8388607 << 40, ""},
		{"MAX", 0, "want a number"},
	} {
		got, err := ParseSize(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseSize(%q) = %d, %v, want an error with %q", tt.in, got, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("ParseSize(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseLimit(t *testing.T) {
	for _, tt := range []struct {
		file, in string
		v2       string // Limit.String(), or "error: substring"
		v1       string
	}{
		{"memory.max", "64M", "67108864", "[[memory.limit_in_bytes 67108864]]"},
		{"memory.max", "max", "max", "[[memory.limit_in_bytes -1]]"},
		{"memory.high", "1G", "1073741824", "[[memory.soft_limit_in_bytes 1073741824]]"},
		{"pids.max", "20", "20", "[[pids.max 20]]"},
		{"pids.max", "max", "max", "[[pids.max max]]"},
		{"pids.max", "0", "error: \"0\": want a whole number from 1", ""},
		{"pids.max", "-5", "error: want a whole number", ""},
		{"pids.max", "lots", "error: want a whole number", ""},
		{"cpu.weight", "100", "100", "[[cpu.shares 1024]]"},
		{"cpu.weight", "1", "1", "[[cpu.shares 10]]"},
		{"cpu.weight", "10000", "10000", "[[cpu.shares 102400]]"},
		{"cpu.weight", "0", "error: want a whole number from 1 to 10000", ""},
		{"cpu.weight", "10001", "error: want a whole number from 1 to 10000", ""},
		{"cpu.weight", "max", "error: want a whole number", ""},
		{"cpu.max", "50000", "50000 100000", "[[cpu.cfs_period_us 100000] [cpu.cfs_quota_us 50000]]"},
		{"cpu.max", "50000/200000", "50000 200000", "[[cpu.cfs_period_us 200000] [cpu.cfs_quota_us 50000]]"},
		{"cpu.max", "200000 100000", "200000 100000", "[[cpu.cfs_period_us 100000] [cpu.cfs_quota_us 200000]]"},
		{"cpu.max", "max", "max 100000", "[[cpu.cfs_period_us 100000] [cpu.cfs_quota_us -1]]"},
		{"cpu.max", "max/50000", "max 50000", "[[cpu.cfs_period_us 50000] [cpu.cfs_quota_us -1]]"},
		{"cpu.max", "999", "error: quota \"999\" must be at least 1000", ""},
		{"cpu.max", "5000/999", "error: period \"999\" must be 1000..1000000", ""},
		{"cpu.max", "5000/1000001", "error: period \"1000001\"", ""},
		{"cpu.max", "half", "error: quota \"half\"", ""},
		{"cpu.max", "", "error: quota \"\"", ""},
		{"cpu.max", "5000/", "error: period \"\"", ""},
		{"io.max", "1", "error: unknown limit io.max", ""},
	} {
		l, err := ParseLimit(tt.file, tt.in)
		if err != nil {
			if got := "error: " + err.Error(); !strings.HasPrefix(tt.v2, "error: ") || !strings.Contains(got, strings.TrimPrefix(tt.v2, "error: ")) {
				t.Errorf("ParseLimit(%s, %q) = %v, want %s", tt.file, tt.in, err, tt.v2)
			}
			continue
		}
		if got := l.String(); got != tt.v2 {
			t.Errorf("ParseLimit(%s, %q).String() = %q, want %q", tt.file, tt.in, got, tt.v2)
		}
		if got := fmt.Sprint(l.V1()); got != tt.v1 {
			t.Errorf("ParseLimit(%s, %q).V1() = %s, want %s", tt.file, tt.in, got, tt.v1)
		}
		if l.Controller() != strings.Split(tt.file, ".")[0] {
			t.Errorf("Controller() = %q for %s", l.Controller(), tt.file)
		}
	}
}
