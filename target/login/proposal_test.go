package login

import (
	"testing"

	"github.com/ietgo/ietd/target/config"
)

// The initiator's answer to a key the target proposed is combined with
// the target's value by the key's result function (RFC 7143 6.2.2), and
// an answer that is no value leaves the RFC default (6.2): "ImmediateData
// =Yes" to our No stays No, "InitialR2T=NotUnderstood" to our No is Yes.
func TestProposalAnswersFollowTheResultFunctions(t *testing.T) {
	cfg := config.DefaultParams()
	cfg.ImmediateData = false
	cfg.InitialR2T = false
	cfg.MaxBurstLength = 65536
	l := limits{cfg: cfg}
	for _, c := range []struct {
		key, answer string
		check       func(p Params) bool
	}{
		{"ImmediateData", "Yes", func(p Params) bool { return !p.ImmediateData }},
		{"ImmediateData", "No", func(p Params) bool { return !p.ImmediateData }},
		{"ImmediateData", "Reject", func(p Params) bool { return p.ImmediateData }},
		{"InitialR2T", "NotUnderstood", func(p Params) bool { return p.InitialR2T }},
		{"InitialR2T", "No", func(p Params) bool { return !p.InitialR2T }},
		{"InitialR2T", "Yes", func(p Params) bool { return p.InitialR2T }},
		{"MaxBurstLength", "1048576", func(p Params) bool { return p.MaxBurstLength == 65536 }},
		{"MaxBurstLength", "16384", func(p Params) bool { return p.MaxBurstLength == 16384 }},
		{"MaxBurstLength", "Irrelevant", func(p Params) bool { return p.MaxBurstLength == 262144 }},
	} {
		p := defaultParams()
		l.applyProposalAnswer(&p, c.key, c.answer)
		if !c.check(p) {
			t.Errorf("%s=%s answered to our proposal: %+v", c.key, c.answer, p)
		}
	}
}
