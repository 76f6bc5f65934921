package cgroups

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Max is a limit's value "max": no limit.
const Max = -1

// Limit is one resource limit, named after its cgroup v2 file. Where the
// controller lives on v1 it is written to that controller's equivalent
// files instead (V1).
type Limit struct {
	File   string // memory.max, memory.high, pids.max, cpu.weight or cpu.max
	Value  int64  // bytes, tasks, weight, or cpu.max's quota in µs; Max for none
	Period int64  // cpu.max's period in µs
}

// LimitFiles are the v2 files a Limit may name, in the order they are
// applied.
var LimitFiles = []string{"memory.max", "memory.high", "pids.max", "cpu.weight", "cpu.max"}

// Controller is the controller that owns the limit's file.
func (l Limit) Controller() string {
	c, _, _ := strings.Cut(l.File, ".")
	return c
}

func (l Limit) value(max string) string {
	if l.Value == Max {
		return max
	}
	return strconv.FormatInt(l.Value, 10)
}

// String is the value as the v2 file takes it.
func (l Limit) String() string {
	if l.File == "cpu.max" {
		return l.value("max") + " " + strconv.FormatInt(l.Period, 10)
	}
	return l.value("max")
}

// V1 is the limit as writes to the v1 controller's files, in order:
// {file, value}. The v1 files do not mean quite the same: memory.high
// becomes memory.soft_limit_in_bytes (reclaimed down to under memory
// pressure, never throttled); cpu.weight (1..10000, default 100) becomes
// cpu.shares (default 1024) scaled alike.
func (l Limit) V1() [][2]string {
	switch l.File {
	case "memory.max":
		return [][2]string{{"memory.limit_in_bytes", l.value("-1")}}
	case "memory.high":
		return [][2]string{{"memory.soft_limit_in_bytes", l.value("-1")}}
	case "pids.max":
		return [][2]string{{"pids.max", l.value("max")}}
	case "cpu.weight":
		shares := min(max(l.Value*1024/100, 2), 262144)
		return [][2]string{{"cpu.shares", strconv.FormatInt(shares, 10)}}
	case "cpu.max":
		// The period first: the quota is checked against it.
		return [][2]string{
			{"cpu.cfs_period_us", strconv.FormatInt(l.Period, 10)},
			{"cpu.cfs_quota_us", l.value("-1")},
		}
	}
	return nil
}

// ParseLimit reads the value s of the option named after file.
func ParseLimit(file, s string) (Limit, error) {
	l := Limit{File: file}
	var err error
	switch file {
	case "memory.max", "memory.high":
		l.Value, err = ParseSize(s)
	case "pids.max":
		l.Value, err = parseCount(s, 1, math.MaxInt32, true)
	case "cpu.weight":
		l.Value, err = parseCount(s, 1, 10000, false)
	case "cpu.max":
		l.Value, l.Period, err = parseCPUMax(s)
	default:
		err = fmt.Errorf("unknown limit %s", file)
	}
	return l, err
}

// ParseSize reads a size in bytes: a number with an optional K, M, G or T
// suffix (powers of 1024, either case), or "max".
func ParseSize(s string) (int64, error) {
	if s == "max" {
		return Max, nil
	}
	num, shift := s, 0
	if n := len(s); n > 0 {
		if i := strings.IndexByte("KMGT", s[n-1]&^0x20); i >= 0 && s[n-1] >= 'A' {
			num, shift = s[:n-1], 10*(i+1)
		}
	}
	bad := fmt.Errorf("size %q: want a number of bytes with an optional K, M, G or T suffix, or max", s)
	if num == "" || strings.IndexFunc(num, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, bad
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n << shift, nil
}

func parseCount(s string, lo, hi int64, allowMax bool) (int64, error) {
	if allowMax && s == "max" {
		return Max, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		want := fmt.Sprintf("a whole number from %d to %d", lo, hi)
		if allowMax {
			want += ", or max"
		}
		return 0, fmt.Errorf("%q: want %s", s, want)
	}
	return n, nil
}

// The kernel's bounds for CFS bandwidth: period 1 ms..1 s, quota >= 1 ms.
const (
	minPeriod     = 1000
	maxPeriod     = 1000000
	defaultPeriod = 100000
	minQuota      = 1000
)

// parseCPUMax reads QUOTA[/PERIOD] (or "QUOTA PERIOD", as cpu.max shows
// it), in microseconds; QUOTA may be "max"; PERIOD defaults to 100000.
func parseCPUMax(s string) (quota, period int64, err error) {
	q, p, hasPeriod := strings.Cut(s, "/")
	if !hasPeriod {
		q, p, hasPeriod = strings.Cut(s, " ")
	}
	bad := func(why string) (int64, int64, error) {
		return 0, 0, fmt.Errorf("%q: %s (want QUOTA[/PERIOD] in microseconds, e.g. 50000/100000 for half a CPU, or max)", s, why)
	}
	period = defaultPeriod
	if hasPeriod {
		period, err = strconv.ParseInt(p, 10, 64)
		if err != nil || period < minPeriod || period > maxPeriod {
			return bad(fmt.Sprintf("period %q must be %d..%d", p, minPeriod, maxPeriod))
		}
	}
	if q == "max" {
		return Max, period, nil
	}
	quota, err = strconv.ParseInt(q, 10, 64)
	if err != nil || quota < minQuota {
		return bad(fmt.Sprintf("quota %q must be at least %d or max", q, minQuota))
	}
	if quota > math.MaxInt64/1000 {
		return bad(fmt.Sprintf("quota %q is too large", q))
	}
	return quota, period, nil
}
