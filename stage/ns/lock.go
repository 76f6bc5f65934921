package ns

import (
	"errors"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"spawn/lib/chain"
)

// lockFlags name the tree so that spawn-ns, the stage that lives exactly as
// long as the container, can hold a lock on it (nspawn semantics: a second
// container on the same tree fails "busy"). The front door hands the same
// options to spawn-rootfs, which mounts the tree.
var lockFlags = []cli.Flag{
	&cli.StringFlag{Name: "directory", Aliases: []string{"D"}, Usage: "the OS tree `DIR`; locked while the container runs (spawn-ns) and set up as its root (spawn-rootfs)"},
	&cli.BoolFlag{Name: "read-only", Usage: "the tree is mounted read-only: other read-only or ephemeral containers may share it"},
	&cli.BoolFlag{Name: "ephemeral", Aliases: []string{"x"}, Usage: "run on a throw-away overlay of the tree: other read-only or ephemeral containers may share it"},
	&chain.OptionalFlag{StringFlag: cli.StringFlag{Name: "volatile", Usage: "run with a volatile root: `MODE` yes, state, overlay or no; bare: yes (shares the tree like --read-only)"}, Bare: "yes"},
}

// lockTree takes the tree's lock: exclusive, or shared when the tree is not
// written to. The descriptor is close-on-exec and stays open in spawn-ns
// until it exits, and the lock with it.
func lockTree(c *cli.Context) error {
	dir := c.String("directory")
	if dir == "" {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return chain.Failf("%s: %w", dir, err)
	}
	fd, err := unix.Open(abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return chain.Failf("%s: %w", abs, err)
	}
	how := unix.LOCK_EX
	volatile := true
	switch strings.ToLower(c.String("volatile")) {
	case "", "no", "false", "0", "off":
		volatile = false
	}
	if c.Bool("read-only") || c.Bool("ephemeral") || volatile {
		how = unix.LOCK_SH
	}
	if err := unix.Flock(fd, how|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return chain.Failf("%s: busy: another container is running on this tree", abs)
		}
		return chain.Failf("lock %s: %w", abs, err)
	}
	return nil
}
