package rootfs

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"spawn/lib/mount"
)

// Options are spawn-rootfs's set-up choices beyond DIR, checked before
// anything is mounted.
type Options struct {
	Mounts     []*Custom // in the order they are mounted
	ReadOnly   bool      // the root mount read-only at the end
	Root       RootMode
	ResolvConf string // off, copy-host, bind-host, auto
	Timezone   string // off, copy, bind, auto
	PrivateNet bool   // in a network namespace of our own (--resolv-conf=auto)
	Quiet      bool
}

// RootMode is what the container's root is made of.
type RootMode int

const (
	RootBind      RootMode = iota // DIR itself
	RootOverlay                   // DIR under an overlay with a tmpfs upper layer (-x, --volatile=overlay)
	RootVolatile                  // a tmpfs with DIR's /usr, read-only (--volatile=yes)
	RootStateless                 // DIR read-only, a tmpfs on /var (--volatile=state)
)

// Kind is the kind of a custom mount; on one destination they are mounted
// in this order.
type Kind int

const (
	KindBind Kind = iota
	KindTmpfs
	KindOverlay
	KindInaccessible
)

// Custom is one --bind, --bind-ro, --tmpfs, --overlay, --overlay-ro or
// --inaccessible mount.
type Custom struct {
	Option string // as given ("--bind=/src:/src"), for messages
	Kind   Kind
	// Sources: a bind's source; an overlay's layers, lowest first, the last
	// one the upper layer unless ReadOnly. A host path, absolute; "+/p" is
	// p inside the tree; "" (an overlay's upper only) is a tmpfs.
	Sources   []string
	Dest      string // inside the tree, absolute and clean
	ReadOnly  bool
	Recursive bool    // a bind of the source's submounts too
	Flags     uintptr // a tmpfs's mount flags
	Data      string  // a tmpfs's mount data
}

func (m *Custom) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", m.Option, fmt.Errorf(format, args...))
}

// parseOptions reads and checks every option that changes the file system:
// syntax first, then that the host paths named exist, so that a mistake
// fails before anything is mounted or created.
func parseOptions(c *cli.Context) (*Options, error) {
	o := &Options{ReadOnly: c.Bool("read-only"), Quiet: c.Bool("quiet")}
	var err error
	if o.Root, err = parseVolatile(c.String("volatile")); err != nil {
		return nil, err
	}
	if c.Bool("ephemeral") {
		if o.Root != RootBind {
			return nil, fmt.Errorf("--ephemeral and --volatile=%s: both choose what the root is; use one", c.String("volatile"))
		}
		o.Root = RootOverlay
	}
	if o.ResolvConf, err = oneOf("resolv-conf", c.String("resolv-conf"), "off", "copy-host", "bind-host", "auto"); err != nil {
		return nil, err
	}
	if o.Timezone, err = oneOf("timezone", c.String("timezone"), "off", "copy", "bind", "auto"); err != nil {
		return nil, err
	}
	if o.readOnlyRoot() {
		for _, m := range []struct{ opt, mode string }{{"resolv-conf", o.ResolvConf}, {"timezone", o.Timezone}} {
			if strings.HasPrefix(m.mode, "copy") {
				return nil, fmt.Errorf("--%s=%s: the tree is read-only (%s): use bind%s", m.opt, m.mode, o.readOnlyReason(), strings.TrimPrefix(m.mode, "copy"))
			}
		}
	}
	parsers := []struct {
		flag  string
		parse func(string) (*Custom, error)
	}{
		{"bind", func(v string) (*Custom, error) { return parseBind(v, false) }},
		{"bind-ro", func(v string) (*Custom, error) { return parseBind(v, true) }},
		{"tmpfs", parseTmpfs},
		{"overlay", func(v string) (*Custom, error) { return parseOverlay(v, false) }},
		{"overlay-ro", func(v string) (*Custom, error) { return parseOverlay(v, true) }},
		{"inaccessible", parseInaccessible},
	}
	for _, p := range parsers {
		for _, v := range c.StringSlice(p.flag) {
			m, err := p.parse(v)
			if err != nil {
				return nil, err
			}
			o.Mounts = append(o.Mounts, m)
		}
	}
	for _, m := range o.Mounts {
		if err := m.checkHost(); err != nil {
			return nil, err
		}
	}
	SortMounts(o.Mounts)
	return o, nil
}

func (o *Options) readOnlyRoot() bool { return o.ReadOnly || o.Root == RootStateless }

func (o *Options) readOnlyReason() string {
	if o.ReadOnly {
		return "--read-only"
	}
	return "--volatile=state"
}

func oneOf(flag, v string, modes ...string) (string, error) {
	for _, m := range modes {
		if v == m {
			return v, nil
		}
	}
	return "", fmt.Errorf("--%s=%s: unknown mode (%s)", flag, v, strings.Join(modes, ", "))
}

// parseVolatile reads --volatile's mode; a boolean yes or no as nspawn
// spells them.
func parseVolatile(v string) (RootMode, error) {
	switch strings.ToLower(v) {
	case "", "no", "false", "0", "off":
		return RootBind, nil
	case "yes", "true", "1", "on":
		return RootVolatile, nil
	case "state":
		return RootStateless, nil
	case "overlay":
		return RootOverlay, nil
	}
	return 0, fmt.Errorf("--volatile=%s: unknown mode (yes, no, state, overlay)", v)
}

// splitEscaped cuts s at colons, at most n pieces (n < 0: all), with
// nspawn's escapes: "\:" is a colon inside a piece and "\\" a backslash.
func splitEscaped(s string, n int) ([]string, error) {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '\\':
			if i+1 == len(s) {
				return nil, errors.New("trailing backslash")
			}
			i++
			if n > 0 && len(parts) == n-1 {
				cur.WriteByte('\\') // the rest is kept as it was given
			}
			cur.WriteByte(s[i])
		case ch == ':' && (n < 0 || len(parts) < n-1):
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(ch)
		}
	}
	return append(parts, cur.String()), nil
}

// source reads a host path (made absolute against the working directory)
// or a "+" path inside the tree.
func source(m *Custom, p string) (string, error) {
	if in, ok := strings.CutPrefix(p, "+"); ok {
		q, err := mount.InsidePath(in)
		if err != nil {
			return "", m.errorf("+%w", err)
		}
		return "+" + q, nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", m.errorf("%s: %w", p, err)
	}
	return abs, nil
}

// dest reads a mount's destination inside the tree.
func dest(m *Custom, p string) (string, error) {
	if p == "" {
		return "", m.errorf("empty destination")
	}
	q, err := mount.InsidePath(p)
	if err != nil {
		return "", m.errorf("%w", err)
	}
	if q == "/" {
		return "", m.errorf("/: cannot mount over the tree's root (use another -D)")
	}
	return q, nil
}

// parseBind reads --bind=SRC[:DST[:OPTS]] (and --bind-ro): DST defaults
// to SRC; OPTS is rbind (the default) or norbind.
func parseBind(v string, ro bool) (*Custom, error) {
	m := &Custom{Option: "--bind=" + v, Kind: KindBind, ReadOnly: ro, Recursive: true}
	if ro {
		m.Option = "--bind-ro=" + v
	}
	parts, err := splitEscaped(v, -1)
	if err != nil {
		return nil, m.errorf("%w", err)
	}
	if len(parts) > 3 {
		return nil, m.errorf("too many colons (SRC[:DST[:OPTS]]; write a colon in a path as \\:)")
	}
	if parts[0] == "" {
		return nil, m.errorf("empty source")
	}
	src, err := source(m, parts[0])
	if err != nil {
		return nil, err
	}
	m.Sources = []string{src}
	d := strings.TrimPrefix(src, "+")
	if len(parts) > 1 && parts[1] != "" {
		d = parts[1]
	}
	if m.Dest, err = dest(m, d); err != nil {
		return nil, err
	}
	if len(parts) == 3 {
		for _, w := range strings.Split(parts[2], ",") {
			switch w {
			case "rbind":
				m.Recursive = true
			case "norbind":
				m.Recursive = false
			case "":
			default:
				return nil, m.errorf("unknown option word %q (rbind, norbind)", w)
			}
		}
	}
	return m, nil
}

// tmpfsFlags are the mount flag words a --tmpfs option list may hold.
var tmpfsFlags = map[string]struct {
	set, clear uintptr
}{
	"ro":          {set: unix.MS_RDONLY},
	"rw":          {clear: unix.MS_RDONLY},
	"nosuid":      {set: unix.MS_NOSUID},
	"suid":        {clear: unix.MS_NOSUID},
	"nodev":       {set: unix.MS_NODEV},
	"dev":         {clear: unix.MS_NODEV},
	"noexec":      {set: unix.MS_NOEXEC},
	"exec":        {clear: unix.MS_NOEXEC},
	"sync":        {set: unix.MS_SYNCHRONOUS},
	"async":       {clear: unix.MS_SYNCHRONOUS},
	"dirsync":     {set: unix.MS_DIRSYNC},
	"noatime":     {set: unix.MS_NOATIME},
	"atime":       {clear: unix.MS_NOATIME},
	"nodiratime":  {set: unix.MS_NODIRATIME},
	"relatime":    {set: unix.MS_RELATIME},
	"strictatime": {set: unix.MS_STRICTATIME},
}

// tmpfsData are the words tmpfs itself takes (the kernel refuses others
// with a bare EINVAL, so they are checked here where the message can say
// which).
var tmpfsData = map[string]bool{
	"size": true, "nr_blocks": true, "nr_inodes": true, "mode": true,
	"uid": true, "gid": true, "huge": true, "mpol": true,
	"inode32": false, "inode64": false, "noswap": false,
	"quota": false, "usrquota": false, "grpquota": false,
	"usrquota_block_hardlimit": true, "usrquota_inode_hardlimit": true,
	"grpquota_block_hardlimit": true, "grpquota_inode_hardlimit": true,
}

// parseTmpfs reads --tmpfs=DST[:OPTS]: a tmpfs, nodev and mode 0755 unless
// OPTS says otherwise.
func parseTmpfs(v string) (*Custom, error) {
	m := &Custom{Option: "--tmpfs=" + v, Kind: KindTmpfs, Flags: unix.MS_NODEV | unix.MS_STRICTATIME}
	parts, err := splitEscaped(v, 2)
	if err != nil {
		return nil, m.errorf("%w", err)
	}
	if m.Dest, err = dest(m, parts[0]); err != nil {
		return nil, err
	}
	data := []string{"mode=0755"}
	if len(parts) == 2 {
		for _, w := range strings.Split(parts[1], ",") {
			if w == "" {
				continue
			}
			if f, ok := tmpfsFlags[w]; ok {
				m.Flags = m.Flags&^f.clear | f.set
				continue
			}
			key, _, hasValue := strings.Cut(w, "=")
			if takesValue, ok := tmpfsData[key]; !ok || takesValue != hasValue {
				return nil, m.errorf("unknown option word %q (mount flags like ro, nosuid, noexec, or tmpfs's size=, mode=, uid=, gid=, nr_inodes=...)", w)
			}
			data = append(data, w)
		}
	}
	m.Data = strings.Join(data, ",")
	return m, nil
}

// parseOverlay reads --overlay=LOWER[:LOWER...]:UPPER:DST (and
// --overlay-ro=LOWER[:LOWER...]:DST, where every layer is a lower one).
// Layers are listed lowest first, as nspawn does. With two paths, the
// second is both the top layer and, inside the tree, the destination.
func parseOverlay(v string, ro bool) (*Custom, error) {
	m := &Custom{Option: "--overlay=" + v, Kind: KindOverlay, ReadOnly: ro}
	if ro {
		m.Option = "--overlay-ro=" + v
	}
	parts, err := splitEscaped(v, -1)
	if err != nil {
		return nil, m.errorf("%w", err)
	}
	if len(parts) < 2 {
		return nil, m.errorf("need at least two paths (LOWER[:LOWER...]:UPPER:DST)")
	}
	layers, d := parts[:len(parts)-1], parts[len(parts)-1]
	if len(parts) == 2 {
		layers, d = parts, strings.TrimPrefix(parts[1], "+")
	}
	if m.Dest, err = dest(m, d); err != nil {
		return nil, err
	}
	for i, l := range layers {
		if l == "" {
			if ro || i != len(layers)-1 {
				return nil, m.errorf("only the upper layer may be empty (a temporary directory)")
			}
			m.Sources = append(m.Sources, "")
			continue
		}
		src, err := source(m, l)
		if err != nil {
			return nil, err
		}
		m.Sources = append(m.Sources, src)
	}
	return m, nil
}

// parseInaccessible reads --inaccessible=PATH.
func parseInaccessible(v string) (*Custom, error) {
	m := &Custom{Option: "--inaccessible=" + v, Kind: KindInaccessible}
	var err error
	if m.Dest, err = dest(m, v); err != nil {
		return nil, err
	}
	return m, nil
}

// checkHost checks that the host paths a mount names exist (and, for an
// overlay, are directories).
func (m *Custom) checkHost() error {
	for _, s := range m.Sources {
		if s == "" || strings.HasPrefix(s, "+") {
			continue
		}
		st, err := os.Stat(s)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return m.errorf("%s: %w", s, err)
		}
		if m.Kind == KindOverlay && !st.IsDir() {
			return m.errorf("%s: not a directory", s)
		}
	}
	return nil
}

// SortMounts orders mounts so that a mount comes after the one its
// destination lies in (component by component: /a, /a/b, /ab), and on one
// destination by kind; otherwise in the order given.
func SortMounts(ms []*Custom) {
	sort.SliceStable(ms, func(i, j int) bool {
		a, b := strings.Split(ms[i].Dest, "/"), strings.Split(ms[j].Dest, "/")
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		if len(a) != len(b) {
			return len(a) < len(b)
		}
		return ms[i].Kind < ms[j].Kind
	})
}

// checkMachine checks a machine name as nspawn does: a valid hostname of
// at most 64 characters, letters, digits, "-" and "_" in dot-separated
// labels.
func checkMachine(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("--machine=%s: must be 1 to 64 characters", name)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" {
			return fmt.Errorf("--machine=%s: empty label (leading, trailing or double dot)", name)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("--machine=%s: %q is not allowed (letters, digits, -, _ and dots)", name, r)
			}
		}
	}
	return nil
}

// parseUUID reads a UUID as 32 hex digits, with or without the dashes of
// the 8-4-4-4-12 form, and returns it in that form, lower case.
func parseUUID(s string) (string, error) {
	h := s
	if len(s) == 36 {
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return "", fmt.Errorf("--uuid=%s: not a UUID (32 hex digits, optionally 8-4-4-4-12)", s)
		}
		h = strings.ReplaceAll(s, "-", "")
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 {
		return "", fmt.Errorf("--uuid=%s: not a UUID (32 hex digits, optionally 8-4-4-4-12)", s)
	}
	if strings.Trim(h, "0") == "" {
		return "", fmt.Errorf("--uuid=%s: all zeros", s)
	}
	h = strings.ToLower(h)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}
