package login

// Text negotiation in the full feature phase (RFC 7143 6.2, 11.10).
//
// Only keys whose "Use" is ALL may be negotiated after login; of the
// keys this target knows, those an initiator sends are
// MaxRecvDataSegmentLength (declarative, connection scope) and
// InitiatorAlias (declarative, taken without an answer). SendTargets is answered by the caller, which knows
// the portals. Everything else a target understands is login-only and is
// answered Reject; keys it does not know (X- extensions among them) are
// answered NotUnderstood.

// FullFeatureAnswer is what one full-feature text key produced.
type FullFeatureAnswer struct {
	// Value is the answer to send ("" = no answer: a declaration).
	Value string
	// MaxRecvDSL is the initiator's new MaxRecvDataSegmentLength when
	// the key declared one (0 otherwise).
	MaxRecvDSL int
}

// NegotiateFullFeature answers one key of a full-feature Text Request
// other than SendTargets.
func NegotiateFullFeature(key, value string) FullFeatureAnswer {
	spec, ok := keyTable[key]
	if !ok {
		return FullFeatureAnswer{Value: valNotUnderstood}
	}
	if key == "InitiatorAlias" {
		// Use: ALL, declarative (RFC 7143 13.6): nothing to answer.
		return FullFeatureAnswer{}
	}
	if key != "MaxRecvDataSegmentLength" {
		// Understood but login-only (LO/IO) or target-only here.
		return FullFeatureAnswer{Value: valReject}
	}
	if len(value) > MaxValueLen {
		return FullFeatureAnswer{Value: valReject}
	}
	v, ok := parseNumber(value)
	if !ok || v < spec.min {
		return FullFeatureAnswer{Value: valReject}
	}
	return FullFeatureAnswer{MaxRecvDSL: min(v, spec.max)}
}
