package caps

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// setenv reads --setenv words: NAME=VALUE, or a bare NAME for the value
// in spawn-caps's own environment (nothing when it has none, as nspawn).
func setenv(words []string, lookup func(string) (string, bool)) ([]string, error) {
	var env []string
	for _, w := range words {
		name, value, ok := strings.Cut(w, "=")
		if !validName(name) {
			return nil, fmt.Errorf("--setenv=%s: invalid variable name %q (letters, digits and _, not starting with a digit)", w, name)
		}
		if !ok {
			if value, ok = lookup(name); !ok {
				continue
			}
		}
		env = append(env, name+"="+value)
	}
	return env, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// merge is env with each of set's NAME=VALUE replacing an entry of the
// same name, or added after.
func merge(env, set []string) []string {
	out := append([]string(nil), env...)
	for _, kv := range set {
		name := kv[:strings.IndexByte(kv, '=')+1]
		replaced := false
		for i := range out {
			if strings.HasPrefix(out[i], name) {
				if !replaced {
					out[i] = kv
					replaced = true
				} else {
					out[i] = ""
				}
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	clean := out[:0]
	for _, kv := range out {
		if kv != "" {
			clean = append(clean, kv)
		}
	}
	return clean
}

// containerUUID is the container_uuid=... entry spawn-rootfs --uuid put in
// our environment, passed on when it has the form spawn-rootfs writes.
func containerUUID() []string {
	v, ok := os.LookupEnv("container_uuid")
	if !ok || len(v) != 36 {
		return nil
	}
	for i, r := range v {
		dash := i == 8 || i == 13 || i == 18 || i == 23
		if dash != (r == '-') || !dash && !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return nil
		}
	}
	return []string{"container_uuid=" + v}
}

// checkChdir reads --chdir: an absolute path.
func checkChdir(dir string) (string, error) {
	if !path.IsAbs(dir) {
		return "", fmt.Errorf("--chdir=%s: not an absolute path", dir)
	}
	return path.Clean(dir), nil
}

// parseUmask reads --umask: octal, at most 0777.
func parseUmask(s string) (int, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("--umask=%s: not an octal mask from 0000 to 0777", s)
	}
	return int(m), nil
}

var rlimits = map[string]int{
	"CPU": unix.RLIMIT_CPU, "FSIZE": unix.RLIMIT_FSIZE, "DATA": unix.RLIMIT_DATA,
	"STACK": unix.RLIMIT_STACK, "CORE": unix.RLIMIT_CORE, "RSS": unix.RLIMIT_RSS,
	"NPROC": unix.RLIMIT_NPROC, "NOFILE": unix.RLIMIT_NOFILE, "MEMLOCK": unix.RLIMIT_MEMLOCK,
	"AS": unix.RLIMIT_AS, "LOCKS": unix.RLIMIT_LOCKS, "SIGPENDING": unix.RLIMIT_SIGPENDING,
	"MSGQUEUE": unix.RLIMIT_MSGQUEUE, "NICE": unix.RLIMIT_NICE, "RTPRIO": unix.RLIMIT_RTPRIO,
	"RTTIME": unix.RLIMIT_RTTIME,
}

// rlimit is one --rlimit.
type rlimit struct {
	name     string
	resource int
	lim      syscall.Rlimit
}

// parseRlimit reads RLIMIT_X=SOFT[:HARD] (or x=...): numbers or
// "infinity"; a single value is both limits.
func parseRlimit(w string) (rlimit, error) {
	name, value, ok := strings.Cut(w, "=")
	key := strings.TrimPrefix(strings.ToUpper(name), "RLIMIT_")
	res, known := rlimits[key]
	if !ok || !known {
		return rlimit{}, fmt.Errorf("--rlimit=%s: unknown limit %q (RLIMIT_NOFILE or nofile, RLIMIT_NPROC, RLIMIT_CORE, ...)", w, name)
	}
	soft, hard, twoValues := strings.Cut(value, ":")
	if !twoValues {
		hard = soft
	}
	var lim syscall.Rlimit
	var err error
	if lim.Cur, err = limitValue(soft); err == nil {
		lim.Max, err = limitValue(hard)
	}
	if err != nil {
		return rlimit{}, fmt.Errorf("--rlimit=%s: %w", w, err)
	}
	if lim.Cur > lim.Max {
		return rlimit{}, fmt.Errorf("--rlimit=%s: soft limit above the hard one", w)
	}
	return rlimit{name: "RLIMIT_" + key, resource: res, lim: lim}, nil
}

func limitValue(s string) (uint64, error) {
	if s == "infinity" {
		return unix.RLIM_INFINITY, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number or infinity", s)
	}
	return v, nil
}

// apply sets the limit on spawn-caps, for the payload to inherit.
// syscall.Setrlimit (not x/sys/unix's) also stops the Go runtime from
// putting back its saved RLIMIT_NOFILE at exec.
func (r rlimit) apply() error {
	if err := syscall.Setrlimit(r.resource, &r.lim); err != nil {
		return fmt.Errorf("set %s to %s:%s: %w", r.name, limitString(r.lim.Cur), limitString(r.lim.Max), err)
	}
	return nil
}

func limitString(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "infinity"
	}
	return strconv.FormatUint(v, 10)
}
