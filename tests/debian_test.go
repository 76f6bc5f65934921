package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// debianTree is the Debian bookworm tree (debootstrap --variant=minbase)
// that make test-debian builds and make test passes in SPAWN_DEBIAN when
// it exists. Tests use it through -x, so it is never changed, or copy it.
func debianTree(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	d := os.Getenv("SPAWN_DEBIAN")
	if d == "" {
		t.Skip("SPAWN_DEBIAN not set: make test-debian builds the Debian tree (build/debian) and runs these")
	}
	if _, err := os.Stat(filepath.Join(d, "usr/bin/apt-get")); err != nil {
		t.Fatalf("SPAWN_DEBIAN=%s is not a Debian tree: %v", d, err)
	}
	return d
}

func TestDebianTools(t *testing.T) {
	deb := debianTree(t)
	before := snapshot(t)
	for _, tc := range []struct {
		argv []string
		want string // a line the output must hold
	}{
		{[]string{"apt-get", "--version"}, "apt 2."},
		{[]string{"dpkg", "-l"}, "ii  dpkg "},
		{[]string{"dpkg", "-l", "apt"}, "ii  apt "},
		{[]string{"getent", "passwd", "root"}, "root:x:0:0:root:/root:/bin/bash"},
		{[]string{"sh", "-c", ". /etc/os-release; echo $ID $VERSION_CODENAME"}, "debian bookworm"},
	} {
		t.Run(strings.Join(tc.argv, " "), func(t *testing.T) {
			out := wantOK(t, spawn(t, deb, append([]string{"-x", "--"}, tc.argv...)...))
			found := false
			for _, l := range strings.Split(out, "\n") {
				found = found || strings.HasPrefix(l, tc.want)
			}
			if !found {
				t.Errorf("%v printed %q, want a line starting %q", tc.argv, out, tc.want)
			}
		})
	}
	checkHost(t, before)
}

// A user added with useradd in one run is the -u of the next, and gets its
// home made.
func TestDebianUserAdd(t *testing.T) {
	deb := debianTree(t)
	tree := filepath.Join(t.TempDir(), "debian")
	if out, err := exec.Command("cp", "-a", "--reflink=auto", deb, tree).CombinedOutput(); err != nil {
		t.Fatalf("copy the Debian tree: %v: %s", err, out)
	}
	before := snapshot(t)
	wantOK(t, spawn(t, tree, "--", "useradd", "--uid", "1234", "--user-group", "--shell", "/bin/bash", "builder"))
	if _, err := os.Stat(tree + "/home/builder"); !os.IsNotExist(err) {
		t.Fatalf("useradd without -m made the home already (%v): the test proves nothing", err)
	}
	out := wantOK(t, spawn(t, tree, "-u", "builder", "--", "bash", "-c", `id; pwd; echo "$HOME $USER"; stat -c "%U %G" .`))
	want := "uid=1234(builder) gid=1234(builder) groups=1234(builder)\n/home/builder\n/home/builder builder\nbuilder builder\n"
	if out != want {
		t.Errorf("as builder: %q, want %q", out, want)
	}
	checkHost(t, before)
}

// A project bound from the host is built inside (a Debian package, with
// the tree's own dpkg-deb: no network and no compiler needed), the result
// lands on the host, and the package installs and runs in a second,
// ephemeral run without touching the tree.
func TestDebianBuildBoundProject(t *testing.T) {
	deb := debianTree(t)
	proj := hostDir(t)
	writeHostFile(t, proj+"/src/hello.in", "#!/bin/sh\necho \"hello from @VERSION@ built in $(hostname)\"\n")
	writeHostFile(t, proj+"/build.sh", `#!/bin/sh
# Builds spawn-hello_$VERSION_all.deb into out/.
set -eu
version=${VERSION:?set VERSION}
rm -rf build out
mkdir -p build/pkg/DEBIAN build/pkg/usr/bin out
sed "s/@VERSION@/$version/" src/hello.in > build/pkg/usr/bin/spawn-hello
chmod 755 build/pkg/usr/bin/spawn-hello
cat > build/pkg/DEBIAN/control <<EOF
Package: spawn-hello
Version: $version
Architecture: all
Maintainer: spawn tests <root@localhost>
Description: a package built inside a spawn container
EOF
dpkg-deb --root-owner-group --build build/pkg "out/spawn-hello_${version}_all.deb"
`)
	if err := chmodX(proj + "/build.sh"); err != nil {
		t.Fatal(err)
	}
	listing := treeListing(t, deb)
	before := snapshot(t)

	r := spawn(t, deb, "-x", "-M", "builder", "--bind="+proj+":/src", "--chdir=/src", "-E", "VERSION=1.2", "--", "./build.sh")
	wantOK(t, r)
	pkg := proj + "/out/spawn-hello_1.2_all.deb"
	data, err := os.ReadFile(pkg)
	if err != nil {
		t.Fatalf("the package built inside is not on the host: %v (stderr: %s)", err, r.Stderr)
	}
	if !bytes.HasPrefix(data, []byte("!<arch>\ndebian-binary")) {
		t.Errorf("%s does not start like a .deb: %q", pkg, data[:min(len(data), 24)])
	}

	out := wantOK(t, spawn(t, deb, "-x", "-M", "tester", "--bind-ro="+proj+"/out:/pkgs", "--",
		"sh", "-c", "dpkg -i /pkgs/spawn-hello_1.2_all.deb >/dev/null && spawn-hello && dpkg-query -W -f '${Status} ${Version}\\n' spawn-hello"))
	if want := "hello from 1.2 built in tester\ninstall ok installed 1.2\n"; out != want {
		t.Errorf("installed and run in a second container: %q, want %q", out, want)
	}
	sameTree(t, deb, listing)
	checkHost(t, before)
}
