package chain

import (
	"flag"

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
