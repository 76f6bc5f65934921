package chain

import (
	"flag"
	"strings"

	"github.com/urfave/cli/v2"
)

// OptionalFlag is a string option whose value may be left out, like a
// getopt option with an optional argument: "--volatile" alone means Bare,
// "--volatile=state" means state, and in "--volatile state" the word state
// is not the option's (it is PROG).
type OptionalFlag struct {
	cli.StringFlag
	Bare string // the value of the option given without one
}

// Apply registers the option with a fresh value on every parse.
func (f *OptionalFlag) Apply(set *flag.FlagSet) error {
	v := &optionalValue{bare: f.Bare, value: f.Value}
	for _, name := range f.Names() {
		set.Var(v, name, f.Usage)
	}
	return nil
}

// optionalValue is a flag.Value that the flag package treats as a boolean
// (IsBoolFlag), which is what lets the value be left out.
type optionalValue struct {
	bare, value string
}

func (v *optionalValue) String() string { return v.value }
func (v *optionalValue) Get() any       { return v.value }
func (v *optionalValue) IsBoolFlag() bool {
	return true
}

func (v *optionalValue) Set(s string) error {
	// The flag package passes "true" for a bare boolean option.
	if s == "true" {
		s = v.bare
	}
	v.value = s
	return nil
}

// canonicalArgs spells an option given in more than one form in argv (up
// to the first non-option word or "--") by its first name: "-E x
// --setenv=y" becomes "--setenv x --setenv=y". getopt programs accept an
// option's short and long forms mixed; urfave/cli refuses that ("Cannot
// use two forms of the same flag") unless they are one form by the time it
// parses. Options given in one form only are left as written, so that
// messages name them as the user did.
func canonicalArgs(flags []cli.Flag, argv []string) []string {
	primary := map[string]string{}
	value := map[string]bool{}
	for _, f := range flags {
		names := f.Names()
		for _, n := range names {
			primary[n] = names[0]
			value[n] = takesValue(f)
		}
	}
	type option struct {
		i     int      // index in argv
		names []string // as written: one, or several run together (-qx)
		rest  string   // "=value" attached to the last one
	}
	var opts []option
	forms := map[string]map[string]bool{}
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
			break
		}
		o := option{i: i}
		body := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		name, v, hasValue := strings.Cut(body, "=")
		if hasValue {
			o.rest = "=" + v
		}
		if strings.HasPrefix(a, "--") || hasValue || len(body) == 1 {
			o.names = []string{name}
		} else {
			for _, r := range body { // -qx: urfave/cli splits these too
				o.names = append(o.names, string(r))
			}
		}
		opts = append(opts, o)
		for _, n := range o.names {
			if p, ok := primary[n]; ok {
				if forms[p] == nil {
					forms[p] = map[string]bool{}
				}
				forms[p][n] = true
			}
		}
		if last := o.names[len(o.names)-1]; o.rest == "" && value[last] && i+1 < len(argv) {
			i++ // the option's value, whatever it looks like
		}
	}
	mixed := false
	for _, f := range forms {
		mixed = mixed || len(f) > 1
	}
	if !mixed {
		return argv
	}
	out := append([]string(nil), argv[0])
	next := 1
	for _, o := range opts {
		out = append(out, argv[next:o.i]...) // values consumed by the previous option
		next = o.i + 1
		for j, n := range o.names {
			p, ok := primary[n]
			switch {
			case ok && len(forms[p]) > 1:
				n = "--" + p
			case len(o.names) == 1:
				n = argv[o.i][:len(argv[o.i])-len(o.rest)]
			default:
				n = "-" + n
			}
			if j == len(o.names)-1 {
				n += o.rest
			}
			out = append(out, n)
		}
	}
	return append(out, argv[next:]...)
}

// takesValue reports whether an option consumes the next word as its
// value when none is attached with "=".
func takesValue(f cli.Flag) bool {
	switch f.(type) {
	case *cli.BoolFlag, *OptionalFlag:
		return false
	}
	if d, ok := f.(cli.DocGenerationFlag); ok {
		return d.TakesValue()
	}
	return true
}
