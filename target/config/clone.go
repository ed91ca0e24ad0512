package config

import "encoding/json"

// Clone returns a deep copy of c. The model is plain data, so a JSON round
// trip copies every field, including ones added later.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		// The model holds only strings, numbers, bools, slices and
		// pointers to structs: Marshal cannot fail.
		panic("config: clone: " + err.Error())
	}
	out := new(Config)
	if err := json.Unmarshal(b, out); err != nil {
		panic("config: clone: " + err.Error())
	}
	return out
}

// NextTID returns the smallest TID greater than every TID in use.
func (c *Config) NextTID() int {
	max := 0
	for _, t := range c.Targets {
		if t.TID > max {
			max = t.TID
		}
	}
	return max + 1
}
