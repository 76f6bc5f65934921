package mount

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInsidePath(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b": "/a/b", "/a//b/./": "/a/b", "/": "/",
		"a": "", "": "", "/../x": "", "/a/../b": "", "/a/..": "",
	} {
		got, err := InsidePath(in)
		if want == "" && err == nil || want != "" && (err != nil || got != want) {
			t.Errorf("InsidePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// Resolve and MkdirAll follow a tree's symlinks, absolute or relative or
// climbing with "..", without leaving the tree.
func TestResolveStaysInside(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	for link, target := range map[string]string{
		"abs":      outside,
		"rel":      "../../../../../../../.." + outside,
		"etc/dots": "../../../..",
		"loop":     "loop",
		"chain":    "abs/deeper",
		"file":     "real-file",
	} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(link)), 0o755)
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "real-file"), nil, 0o644)
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for in, want := range map[string]string{
		"/abs/x":        outside + "/x",
		"/rel/x":        outside + "/x",
		"/etc/dots/x":   "/x",
		"/chain/y":      outside + "/deeper/y",
		"/file":         "/real-file",
		"/missing/a/b":  "/missing/a/b",
		"/etc/dots/../": "/",
	} {
		got, err := r.Resolve(in)
		if err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := r.Resolve("/loop/x"); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("Resolve(/loop/x) error = %v, want ELOOP", err)
	}
	for _, p := range []string{"/abs/made/dir", "/rel/made2"} {
		if err := r.MkdirAll(p, 0o755); err != nil {
			t.Errorf("MkdirAll(%s): %v", p, err)
		}
	}
	if err := r.CreateFile("/etc/dots/created", 0o644); err != nil {
		t.Errorf("CreateFile: %v", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("the directory outside the tree got %d entries, want none", len(ents))
	}
	for _, p := range []string{outside + "/made/dir", outside + "/made2", "/created"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s not made inside the tree: %v", p, err)
		}
	}
}

func TestWriteFileReplacesSymlink(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "target")
	os.WriteFile(outside, []byte("outside\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "etc"), 0o755)
	os.Symlink(outside, filepath.Join(dir, "etc/resolv.conf"))
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.WriteFile("/etc/resolv.conf", []byte("inside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "outside\n" {
		t.Errorf("the symlink's target outside = %q, want it untouched", b)
	}
	st, err := os.Lstat(filepath.Join(dir, "etc/resolv.conf"))
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/resolv.conf")); err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o644 || string(b) != "inside\n" {
		t.Errorf("etc/resolv.conf = %v, %q, %v; want a regular 0644 file", st.Mode(), b, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "etc")); len(ents) != 1 {
		t.Errorf("etc holds %d entries, want only resolv.conf (no temporary file left)", len(ents))
	}
}
