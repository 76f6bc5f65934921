package ns

import (
	"reflect"
	"testing"
)

func TestInitEncoding(t *testing.T) {
	argv := []string{"spawn-rootfs", "-D", "/srv/a tree", "--", "spawn-caps", "", "x=y"}
	env := []string{"PATH=/bin", "EMPTY=", "TERM=xterm"}
	gotArgv, gotEnv, err := decodeInit(encodeInit(argv, env))
	if err != nil || !reflect.DeepEqual(gotArgv, argv) || !reflect.DeepEqual(gotEnv, env) {
		t.Errorf("decodeInit(encodeInit) = %q, %q, %v; want %q, %q", gotArgv, gotEnv, err, argv, env)
	}
	if a, e, err := decodeInit(encodeInit([]string{"prog"}, nil)); err != nil || len(a) != 1 || e != nil {
		t.Errorf("no environment: %q, %q, %v", a, e, err)
	}
	for _, bad := range []string{"", "x\x00", "0\x00", "3\x00a\x00", "1\x00a"} {
		if _, _, err := decodeInit([]byte(bad)); err == nil {
			t.Errorf("decodeInit(%q) = nil error", bad)
		}
	}
}
