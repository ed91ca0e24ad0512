package config

// forcedBools are the boolean session keys the engine (like IET's kernel)
// does not negotiate, with the value it always offers and why.
var forcedBools = map[string]struct {
	value bool
	why   string
}{
	"datapduinorder":      {true, "out-of-order Data PDUs are not implemented"},
	"datasequenceinorder": {true, "out-of-order data sequences are not implemented"},
	"ofmarker":            {false, "markers are not implemented"},
	"ifmarker":            {false, "markers are not implemented"},
}

// ForcedBool reports, for a boolean key in lower case, whether the engine
// does not negotiate it, and then the value it always offers and why. The
// config loader and ietadm --op update store that value (and warn), so
// the model holds what is offered.
func ForcedBool(key string) (value bool, why string, forced bool) {
	f, ok := forcedBools[key]
	return f.value, f.why, ok
}
