package iscsi

// coverage records which byte ranges of a write's buffer Data-Out (and
// immediate data) filled, so that a PDU landing on bytes already filled is
// caught. Without it, received bytes are only counted: an initiator that
// sends one range twice reaches the expected length with a gap left, and
// the gap (pooled memory, not cleared: an earlier command's data, maybe
// another session's) would be written to the medium.
//
// Spans are kept sorted and merged; data in order (the usual case, and
// the only one with DataPDUInOrder=Yes) keeps a single span, held in the
// inline array without allocating.
type coverage struct {
	spans []span
	inl   [4]span
	limit int // most spans kept; 0 means maxCoverageSpans
}

type span struct{ start, end uint32 }

// maxCoverageSpans bounds the holes a write's data may leave while it
// arrives, unless limit asks for more. In order (DataPDUInOrder=Yes, what
// initiators do) there is at most one span per outstanding R2T sequence
// plus the unsolicited one, so a connection sets limit from
// MaxOutstandingR2T; a write scattered wider fails like an overlap,
// instead of costing memory and time per PDU without bound (1-byte PDUs
// with gaps between them).
const maxCoverageSpans = 64

func (cv *coverage) reset() { cv.spans = cv.inl[:0] }

// add records [off, off+n) and reports false, recording nothing, when it
// overlaps a range already filled or would be one span too many.
func (cv *coverage) add(off, n uint32) bool {
	if n == 0 {
		return true
	}
	if cv.spans == nil {
		cv.spans = cv.inl[:0]
	}
	end := off + n
	// i: the first span that ends at or after off.
	i := 0
	for i < len(cv.spans) && cv.spans[i].end < off {
		i++
	}
	if i < len(cv.spans) && cv.spans[i].start < end && off < cv.spans[i].end {
		return false
	}
	s := cv.spans
	switch {
	case i < len(s) && s[i].end == off:
		// Extends span i; may now reach span i+1.
		s[i].end = end
		if i+1 < len(s) {
			if s[i+1].start < end {
				s[i].end = off // undo: overlaps the next one
				return false
			}
			if s[i+1].start == end {
				s[i].end = s[i+1].end
				cv.spans = append(s[:i+1], s[i+2:]...)
			}
		}
	case i < len(s) && s[i].start == end:
		s[i].start = off
	default:
		if len(s) >= max(cv.limit, maxCoverageSpans) {
			return false
		}
		s = append(s, span{})
		copy(s[i+1:], s[i:])
		s[i] = span{off, end}
		cv.spans = s
	}
	return true
}

// holes calls fn for each range of [start, end) not filled, in order.
func (cv *coverage) holes(start, end uint32, fn func(span)) {
	at := start
	for _, sp := range cv.spans {
		if sp.end <= at {
			continue
		}
		if sp.start >= end {
			break
		}
		if sp.start > at {
			fn(span{at, sp.start})
		}
		at = sp.end
	}
	if at < end {
		fn(span{at, end})
	}
}
