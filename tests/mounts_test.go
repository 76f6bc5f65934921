package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// started starts cmd and returns what waits for it: for tests that talk
// to a running container.
func started(t *testing.T, cmd *exec.Cmd) func() result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return func() result {
		err := cmd.Wait()
		r := result{Stdout: stdout.String(), Stderr: stderr.String(), Code: -1}
		if err == nil {
			r.Code = 0
		} else if ee, ok := err.(*exec.ExitError); ok {
			if ws := ee.Sys().(syscall.WaitStatus); ws.Exited() {
				r.Code = ws.ExitStatus()
			}
		}
		return r
	}
}

func TestBindHostDirectoryBothWays(t *testing.T) {
	tree := newTree(t, "bind")
	h := hostDir(t)
	writeHostFile(t, h+"/before", "from the host\n")
	before := snapshot(t)
	cmd := command(t, "spawn", "-q", "-D", tree, "--bind="+h+":/mnt/h", "--", "sh", "-c", `
		cat /mnt/h/before
		echo from inside > /mnt/h/inside
		n=0; while [ ! -e /mnt/h/later ] && [ $n -lt 1000 ]; do sleep 0.01; n=$((n+1)); done
		cat /mnt/h/later
		grep " /mnt/h " /proc/self/mounts`)
	done := started(t, cmd)
	if !waitForFile(h+"/inside", 20*time.Second) {
		done()
		t.Fatal("the file written inside never appeared on the host")
	}
	if got, _ := os.ReadFile(h + "/inside"); string(got) != "from inside\n" {
		t.Errorf("host's copy of the file written inside = %q, want %q", got, "from inside\n")
	}
	writeHostFile(t, h+"/later", "written on the host while it runs\n")
	out := wantOK(t, done())
	lines := strings.SplitN(out, "\n", 3)
	if len(lines) < 3 || lines[0] != "from the host" || lines[1] != "written on the host while it runs" {
		t.Errorf("inside saw %q, want the host's two files", out)
	}
	if l := mountLine(out, "/mnt/h"); l == "" || !hasOption(l, "rw") {
		t.Errorf("mount of /mnt/h = %q, want a read-write mount", l)
	}
	if st, err := os.Stat(tree + "/mnt/h"); err != nil || !st.IsDir() {
		t.Errorf("mount point %s/mnt/h: %v, want a directory created in the tree", tree, err)
	}
	checkHost(t, before)
}

func TestBindFileAndDefaultDestination(t *testing.T) {
	tree := newTree(t, "bindfile")
	h := hostDir(t)
	writeHostFile(t, h+"/conf", "setting=1\n")
	before := snapshot(t)
	// A file source gets an empty file as its mount point; DST defaults
	// to SRC.
	out := wantOK(t, spawn(t, tree, "--bind="+h+"/conf:/etc/app.conf", "--bind-ro="+h, "--",
		"sh", "-c", "cat /etc/app.conf; cat "+h+"/conf"))
	if out != "setting=1\nsetting=1\n" {
		t.Errorf("inside = %q, want the file twice", out)
	}
	if st, err := os.Stat(tree + "/etc/app.conf"); err != nil || !st.Mode().IsRegular() || st.Size() != 0 {
		t.Errorf("mount point %s/etc/app.conf = %v, %v; want an empty regular file", tree, st, err)
	}
	checkHost(t, before)
}

func TestBindReadOnlyRefusesWrites(t *testing.T) {
	tree := newTree(t, "bindro")
	h := hostDir(t)
	writeHostFile(t, h+"/f", "keep\n")
	// A submount of the source is bound too (rbind) and must be read-only
	// as well.
	if err := os.Mkdir(h+"/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", h+"/sub", "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(h+"/sub", syscall.MNT_DETACH) })
	before := snapshot(t)
	r := spawn(t, tree, "--bind-ro="+h+":/ro", "--", "sh", "-c",
		`echo x > /ro/f; echo "top=$?"; echo x > /ro/sub/g; echo "sub=$?"; cat /ro/f`)
	out := wantOK(t, r)
	if want := "top=1\nsub=1\nkeep\n"; out != want {
		t.Errorf("inside = %q, want %q", out, want)
	}
	if n := strings.Count(r.Stderr, "Read-only file system"); n != 2 {
		t.Errorf("stderr = %q, want two EROFS failures", r.Stderr)
	}
	if got, _ := os.ReadFile(h + "/f"); string(got) != "keep\n" {
		t.Errorf("host file = %q, want it unchanged", got)
	}
	checkHost(t, before)
}

func TestBindNorbind(t *testing.T) {
	tree := newTree(t, "norbind")
	h := hostDir(t)
	if err := os.Mkdir(h+"/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", h+"/sub", "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(h+"/sub", syscall.MNT_DETACH) })
	writeHostFile(t, h+"/sub/on-the-submount", "x")
	before := snapshot(t)
	out := wantOK(t, spawn(t, tree, "--bind="+h+":/r", "--bind="+h+":/n:norbind", "--",
		"sh", "-c", "ls /r/sub; echo --; ls /n/sub"))
	if want := "on-the-submount\n--\n"; out != want {
		t.Errorf("rbind then norbind listing = %q, want %q", out, want)
	}
	checkHost(t, before)
}

func TestBindPlusSourceInsideTree(t *testing.T) {
	tree := newTree(t, "plus")
	before := snapshot(t)
	out := wantOK(t, spawn(t, tree, "--bind-ro=+/etc:/mnt/etc", "--", "sh", "-c", "head -n 1 /mnt/etc/passwd"))
	if !strings.HasPrefix(out, "root:") {
		t.Errorf("the tree's /etc bound at /mnt/etc shows %q, want its passwd", out)
	}
	checkHost(t, before)
}

// A tree whose paths are symlinks to host directories must not lead a
// mount onto the host: destinations resolve inside the tree.
func TestMountTargetsStayInsideTree(t *testing.T) {
	tree := newTree(t, "evil")
	target := hostDir(t) // what the hostile tree points at
	if err := os.Symlink(target, tree+"/evil"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../../../.."+target, tree+"/evil2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target+"/file", tree+"/evil3"); err != nil {
		t.Fatal(err)
	}
	src := hostDir(t)
	writeHostFile(t, src+"/f", "source\n")
	before := snapshot(t)
	out := wantOK(t, spawn(t, tree, "--bind="+src+":/evil/b", "--tmpfs=/evil2/t",
		"--bind="+src+"/f:/evil3", "--overlay="+src+"::/evil/o", "--", "sh", "-c", "cat /evil/b/f /evil3 /evil/o/f"))
	if out != "source\nsource\nsource\n" {
		t.Errorf("inside = %q, want the source three times", out)
	}
	if ents, _ := os.ReadDir(target); len(ents) != 0 {
		t.Errorf("host directory %s the tree links to got %d entries, want none", target, len(ents))
	}
	for _, p := range []string{"b", "t", "file", "o"} {
		if _, err := os.Lstat(filepath.Join(tree, target, p)); err != nil {
			t.Errorf("mount point %s not made inside the tree: %v", filepath.Join(tree, target, p), err)
		}
	}
	checkHost(t, before)
}

func TestBindBadInput(t *testing.T) {
	tree := newTree(t, "badbind")
	h := hostDir(t)
	for _, tc := range []struct {
		name, opt string
		want      []string
	}{
		{"missing source", "--bind=/nonexistent-spawn-src:/x", []string{"--bind=/nonexistent-spawn-src:/x", "/nonexistent-spawn-src: no such file or directory"}},
		{"missing source read-only", "--bind-ro=/nonexistent-spawn-src", []string{"--bind-ro=", "/nonexistent-spawn-src: no such file or directory"}},
		{"relative destination", "--bind=" + h + ":rel/x", []string{"rel/x: not an absolute path"}},
		{"dot-dot escaping the tree", "--bind=" + h + ":/../../../etc", []string{`/../../../etc: ".." is not allowed`}},
		{"dot-dot inside", "--bind=" + h + ":/a/../b", []string{`".." is not allowed`}},
		{"unknown option word", "--bind=" + h + ":/x:rbind,bogus", []string{`unknown option word "bogus"`}},
		{"too many colons", "--bind=" + h + ":/x:rbind:more", []string{"too many colons"}},
		{"empty source", "--bind=:/x", []string{"empty source"}},
		{"over the root", "--bind=" + h + ":/", []string{"cannot mount over the tree's root"}},
		{"tree source escaping", "--bind=+/../etc:/x", []string{`".." is not allowed`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, listing := snapshot(t), treeListing(t, tree)
			wantFailure(t, spawn(t, tree, tc.opt, "--", "true"), "spawn-rootfs", tc.want...)
			checkHost(t, before)
			sameTree(t, tree, listing)
		})
	}
}

func TestTmpfs(t *testing.T) {
	tree := newTree(t, "tmpfs")
	before := snapshot(t)
	out := wantOK(t, spawn(t, tree, "--tmpfs=/scratch", "--tmpfs=/data:mode=1777,size=1M,noexec", "--",
		"sh", "-c", "stat -c %a /scratch /data; echo x > /scratch/f && cat /scratch/f; cat /proc/self/mounts"))
	if !strings.HasPrefix(out, "755\n1777\nx\n") {
		t.Errorf("modes and a write = %q, want 755, 1777, x", out)
	}
	if l := mountLine(out, "/scratch"); !strings.HasPrefix(l, "tmpfs ") || !hasOption(l, "nodev") || !hasOption(l, "mode=755") {
		t.Errorf("/scratch mount = %q, want a nodev tmpfs of mode 755", l)
	}
	if l := mountLine(out, "/data"); !hasOption(l, "noexec") || !hasOption(l, "size=1024k") {
		t.Errorf("/data mount = %q, want noexec and size=1024k", l)
	}
	if ents, err := os.ReadDir(tree + "/scratch"); err != nil || len(ents) != 0 {
		t.Errorf("%s/scratch = %v, %v; want an empty mount point", tree, ents, err)
	}
	checkHost(t, before)
}

func TestTmpfsBadInput(t *testing.T) {
	tree := newTree(t, "badtmpfs")
	for _, tc := range []struct {
		name, opt string
		want      []string
	}{
		{"unknown option word", "--tmpfs=/x:mode=0700,bogus", []string{"--tmpfs=/x:mode=0700,bogus", `unknown option word "bogus"`}},
		{"data word without value", "--tmpfs=/x:size", []string{`unknown option word "size"`}},
		{"relative destination", "--tmpfs=x", []string{"x: not an absolute path"}},
		{"dot-dot", "--tmpfs=/../x", []string{`".." is not allowed`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, listing := snapshot(t), treeListing(t, tree)
			wantFailure(t, spawn(t, tree, tc.opt, "--", "true"), "spawn-rootfs", tc.want...)
			checkHost(t, before)
			sameTree(t, tree, listing)
		})
	}
}

func TestOverlayHostLayers(t *testing.T) {
	tree := newTree(t, "overlay")
	h := hostDir(t)
	writeHostFile(t, h+"/lo1/a", "lowest\n")
	writeHostFile(t, h+"/lo1/b", "only in the lowest\n")
	writeHostFile(t, h+"/lo2/a", "middle\n")
	if err := os.Mkdir(h+"/up", 0o755); err != nil {
		t.Fatal(err)
	}
	lowers := treeListing(t, h+"/lo1") + treeListing(t, h+"/lo2")
	before := snapshot(t)
	out := wantOK(t, spawn(t, tree, "--overlay="+h+"/lo1:"+h+"/lo2:"+h+"/up:/ov", "--", "sh", "-c",
		"cat /ov/a /ov/b; echo new > /ov/c; rm /ov/b; ls /ov"))
	if want := "middle\nonly in the lowest\na\nc\n"; out != want {
		t.Errorf("inside = %q, want %q", out, want)
	}
	if got, _ := os.ReadFile(h + "/up/c"); string(got) != "new\n" {
		t.Errorf("upper layer's c = %q, want the write made inside", got)
	}
	if now := treeListing(t, h+"/lo1") + treeListing(t, h+"/lo2"); now != lowers {
		t.Errorf("lower layers changed:\n%s\nwant:\n%s", now, lowers)
	}
	if st, err := os.Stat(h + "/.#up.spawn-work"); err != nil || !st.IsDir() {
		t.Errorf("work directory beside the upper layer: %v", err)
	}
	checkHost(t, before)
}

func TestOverlayTemporaryUpperOnTreePath(t *testing.T) {
	tree := newTree(t, "ovtmp")
	etc := treeListing(t, tree+"/etc")
	before := snapshot(t)
	out := wantOK(t, spawn(t, tree, "--resolv-conf=off", "--timezone=off", "--overlay=+/etc::/etc", "--", "sh", "-c",
		"echo changed > /etc/passwd && echo new > /etc/new && cat /etc/passwd /etc/new"))
	if out != "changed\nnew\n" {
		t.Errorf("inside = %q, want the writes", out)
	}
	sameTree(t, tree+"/etc", etc)
	checkHost(t, before)
}

func TestOverlayReadOnly(t *testing.T) {
	tree := newTree(t, "ovro")
	h := hostDir(t)
	writeHostFile(t, h+"/lo1/a", "lowest\n")
	writeHostFile(t, h+"/lo2/b", "top\n")
	before := snapshot(t)
	r := spawn(t, tree, "--overlay-ro="+h+"/lo1:"+h+"/lo2:/ov", "--", "sh", "-c",
		`cat /ov/a /ov/b; touch /ov/c; echo "touch=$?"`)
	if out := wantOK(t, r); out != "lowest\ntop\ntouch=1\n" {
		t.Errorf("inside = %q, want both layers and a failed write", out)
	}
	if !strings.Contains(r.Stderr, "Read-only file system") {
		t.Errorf("stderr = %q, want EROFS", r.Stderr)
	}
	checkHost(t, before)
}

func TestOverlayBadInput(t *testing.T) {
	tree := newTree(t, "badov")
	h := hostDir(t)
	writeHostFile(t, h+"/file", "x")
	for _, tc := range []struct {
		name, opt string
		want      []string
	}{
		{"missing lower", "--overlay=/nonexistent-spawn-lower::/x", []string{"--overlay=/nonexistent-spawn-lower::/x", "/nonexistent-spawn-lower: no such file or directory"}},
		{"lower not a directory", "--overlay=" + h + "/file::/x", []string{h + "/file: not a directory"}},
		{"one path", "--overlay=/x", []string{"need at least two paths"}},
		{"empty lower", "--overlay=:" + h + ":/x", []string{"only the upper layer may be empty"}},
		{"empty layer read-only", "--overlay-ro=" + h + "::/x", []string{"only the upper layer may be empty"}},
		{"relative destination", "--overlay=" + h + "::x", []string{"x: not an absolute path"}},
		{"dot-dot", "--overlay=" + h + "::/x/../../y", []string{`".." is not allowed`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, listing := snapshot(t), treeListing(t, tree)
			wantFailure(t, spawn(t, tree, tc.opt, "--", "true"), "spawn-rootfs", tc.want...)
			checkHost(t, before)
			sameTree(t, tree, listing)
		})
	}
}

func TestInaccessible(t *testing.T) {
	tree := newTree(t, "inacc")
	if err := syscall.Mkfifo(tree+"/tmp/fifo", 0o666); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t)
	out := wantOK(t, spawn(t, tree, "--inaccessible=/etc/passwd", "--inaccessible=/root", "--inaccessible=/tmp/fifo",
		"--", "sh", "-c", `
		stat -c "%a %F %s" /etc/passwd /root /tmp/fifo
		ls -A /root; touch /root/x 2>/dev/null; echo "write=$?"
		ls -A /run; grep -c spawn-inaccessible /proc/self/mounts; true`))
	want := "0 regular empty file 0\n0 directory 40\n0 fifo 0\nwrite=1\n0\n"
	if strings.Contains(out, "regular file 0") {
		want = strings.Replace(want, "regular empty file", "regular file", 1)
	}
	if out != want {
		t.Errorf("inside = %q, want %q (mode 000 nodes of each type, nothing left of the staging area)", out, want)
	}
	if got, _ := os.ReadFile(tree + "/etc/passwd"); !strings.HasPrefix(string(got), "root:") {
		t.Errorf("the tree's passwd = %q, want it untouched", got)
	}
	checkHost(t, before)
}

func TestInaccessibleBadInput(t *testing.T) {
	tree := newTree(t, "badinacc")
	for _, tc := range []struct {
		name, opt string
		want      []string
	}{
		{"missing path", "--inaccessible=/nonexistent", []string{"--inaccessible=/nonexistent", "nonexistent: no such file or directory"}},
		{"relative", "--inaccessible=etc/passwd", []string{"etc/passwd: not an absolute path"}},
		{"dot-dot", "--inaccessible=/../etc/passwd", []string{`".." is not allowed`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t)
			wantFailure(t, spawn(t, tree, tc.opt, "--", "true"), "spawn-rootfs", tc.want...)
			checkHost(t, before)
		})
	}
}
