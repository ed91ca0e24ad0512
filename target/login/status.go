package login

import "fmt"

// Status is a login status: class in the high byte, detail in the low.
type Status uint16

// Login statuses (RFC 7143 section 11.13.5).
const (
	StatusSuccess            Status = 0x0000
	StatusRedirectTemp       Status = 0x0101
	StatusRedirectPerm       Status = 0x0102
	StatusInitiatorError     Status = 0x0200
	StatusAuthFailure        Status = 0x0201
	StatusForbidden          Status = 0x0202
	StatusNotFound           Status = 0x0203
	StatusTargetRemoved      Status = 0x0204
	StatusVersionUnsupported Status = 0x0205
	StatusTooManyConnections Status = 0x0206
	StatusMissingParameter   Status = 0x0207
	StatusCantIncludeInSess  Status = 0x0208
	StatusSessionTypeUnsupp  Status = 0x0209
	StatusSessionNotFound    Status = 0x020a
	StatusInvalidDuringLogin Status = 0x020b
	StatusTargetError        Status = 0x0300
	StatusServiceUnavailable Status = 0x0301
	StatusOutOfResources     Status = 0x0302
)

// Class returns the status class byte.
func (s Status) Class() byte { return byte(s >> 8) }

// Detail returns the status detail byte.
func (s Status) Detail() byte { return byte(s) }

var statusNames = map[Status]string{
	StatusSuccess: "success", StatusInitiatorError: "initiator error",
	StatusAuthFailure: "authentication failure", StatusForbidden: "authorization failure",
	StatusNotFound: "target not found", StatusTargetRemoved: "target removed",
	StatusVersionUnsupported: "unsupported version", StatusTooManyConnections: "too many connections",
	StatusMissingParameter: "missing parameter", StatusCantIncludeInSess: "can't include in session",
	StatusSessionTypeUnsupp: "session type not supported", StatusSessionNotFound: "session does not exist",
	StatusInvalidDuringLogin: "invalid request during login", StatusTargetError: "target error",
	StatusServiceUnavailable: "service unavailable", StatusOutOfResources: "out of resources",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return fmt.Sprintf("0x%04x (%s)", uint16(s), n)
	}
	return fmt.Sprintf("0x%04x", uint16(s))
}
