package relay

import (
	"testing"
	"time"
)

func TestEscape(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	type press struct {
		b  string
		at time.Time
	}
	for _, tc := range []struct {
		name   string
		writes []press
		want   bool
	}{
		{"three at once", []press{{"\x1d\x1d\x1d", ms(0)}}, true},
		{"three within 1s", []press{{"\x1d", ms(0)}, {"\x1d", ms(400)}, {"\x1d", ms(1000)}}, true},
		{"third too late", []press{{"\x1d", ms(0)}, {"\x1d", ms(400)}, {"\x1d", ms(1001)}}, false},
		{"late one starts anew", []press{{"\x1d", ms(0)}, {"\x1d", ms(1500)}, {"\x1d\x1d", ms(1600)}}, true},
		{"other byte between", []press{{"\x1d\x1dx\x1d", ms(0)}}, false},
		{"other byte between writes", []press{{"\x1d\x1d", ms(0)}, {"a", ms(1)}, {"\x1d", ms(2)}}, false},
		{"two only", []press{{"ab\x1d\x1d", ms(0)}}, false},
		{"after text", []press{{"ls\r", ms(0)}, {"\x1d\x1d\x1d", ms(5)}}, true},
	} {
		var e escape
		got := false
		for _, p := range tc.writes {
			if e.pressed([]byte(p.b), p.at) {
				got = true
			}
		}
		if got != tc.want {
			t.Errorf("%s: pressed(%v) = %v, want %v", tc.name, tc.writes, got, tc.want)
		}
	}
}
