package scsi

import "encoding/binary"

// Sense keys (SPC-4 4.5.6).
const (
	keyNoSense        = 0x0
	keyNotReady       = 0x2
	keyMediumError    = 0x3
	keyHardwareError  = 0x4
	keyIllegalRequest = 0x5
	keyUnitAttention  = 0x6
	keyDataProtect    = 0x7
	keyCopyAborted    = 0xa
	keyAbortedCommand = 0xb
	keyMiscompare     = 0xe
)

// asc is an additional sense code and qualifier.
type asc uint16

const (
	ascNone                     asc = 0x0000
	ascNotReadyInitRequired     asc = 0x0402
	ascNotReadyManualInterv     asc = 0x0403
	ascNotReadySanitize         asc = 0x041b
	ascWriteError               asc = 0x0c00
	ascUnrecoveredReadError     asc = 0x1100
	ascParamListLength          asc = 0x1a00
	ascMiscompareVerify         asc = 0x1d00
	ascInvalidOpcode            asc = 0x2000
	ascLBAOutOfRange            asc = 0x2100
	ascInvalidFieldCDB          asc = 0x2400
	ascLUNNotSupported          asc = 0x2500
	ascInvalidFieldParam        asc = 0x2600
	ascInvalidReleasePR         asc = 0x2604
	ascWriteProtected           asc = 0x2700
	ascSpaceAllocFailedWP       asc = 0x2707
	ascPowerOnReset             asc = 0x2900
	ascBusDeviceReset           asc = 0x2903
	ascITNexusLoss              asc = 0x2907
	ascModeParamsChanged        asc = 0x2a01
	ascReservationsPreempted    asc = 0x2a03
	ascReservationsReleased     asc = 0x2a04
	ascRegistrationsPreempted   asc = 0x2a05
	ascCapacityChanged          asc = 0x2a09
	ascCommandsClearedByAnother asc = 0x2f00
	ascSavingNotSupported       asc = 0x3900
	ascMediumNotPresent         asc = 0x3a00
	ascInquiryDataChanged       asc = 0x3f03
	ascReportedLUNsChanged      asc = 0x3f0e
	ascInternalTargetFailure    asc = 0x4400
	ascMediumRemovalPrevented   asc = 0x5302
	ascInsufficientRegResources asc = 0x5504
	ascSanitizeFailed           asc = 0x3103
	ascFailedSelfTest           asc = 0x3e03
)

// senseData describes one sense condition.
type senseData struct {
	key  byte
	asc  asc
	info uint64 // INFORMATION field (VALID set when hasInfo)
	// hasInfo says info is meaningful.
	hasInfo bool
	// sks is the sense-key specific field (SKSV set when hasSKS):
	// for ILLEGAL REQUEST the field pointer.
	sks    [3]byte
	hasSKS bool
}

// fieldPointer builds ILLEGAL REQUEST sense with a field pointer into the
// CDB (cd=true) or the parameter list, at byte and optional bit.
func fieldPointer(a asc, cd bool, bytePos int, bit int) senseData {
	s := senseData{key: keyIllegalRequest, asc: a, hasSKS: true}
	s.sks[0] = 0x80
	if cd {
		s.sks[0] |= 0x40
	}
	if bit >= 0 {
		s.sks[0] |= 0x08 | byte(bit&7)
	}
	binary.BigEndian.PutUint16(s.sks[1:], uint16(bytePos))
	return s
}

// encode renders the sense data in fixed (0x70) or descriptor (0x72) format.
func (s senseData) encode(descriptor bool) []byte {
	if descriptor {
		b := make([]byte, 8, 8+12+8)
		b[0] = 0x72
		b[1] = s.key & 0x0f
		b[2] = byte(s.asc >> 8)
		b[3] = byte(s.asc)
		if s.hasInfo {
			d := make([]byte, 12)
			d[0] = 0x00 // information descriptor
			d[1] = 0x0a
			d[2] = 0x80
			binary.BigEndian.PutUint64(d[4:], s.info)
			b = append(b, d...)
		}
		if s.hasSKS {
			d := make([]byte, 8)
			d[0] = 0x02 // sense key specific descriptor
			d[1] = 0x06
			copy(d[4:7], s.sks[:])
			b = append(b, d...)
		}
		b[7] = byte(len(b) - 8)
		return b
	}
	b := make([]byte, 18)
	b[0] = 0x70
	if s.hasInfo {
		b[0] |= 0x80
		binary.BigEndian.PutUint32(b[3:], uint32(s.info))
	}
	b[2] = s.key & 0x0f
	b[7] = 10
	b[12] = byte(s.asc >> 8)
	b[13] = byte(s.asc)
	if s.hasSKS {
		copy(b[15:18], s.sks[:])
	}
	return b
}

// checkCondition is a CHECK CONDITION result with sense data.
func checkCondition(s senseData, descriptor bool) Result {
	return Result{Status: StatusCheckCondition, Sense: s.encode(descriptor), XferLen: -1}
}

func sense(key byte, a asc) senseData { return senseData{key: key, asc: a} }

var (
	senseInvalidOpcode = senseData{key: keyIllegalRequest, asc: ascInvalidOpcode}
	senseLBARange      = senseData{key: keyIllegalRequest, asc: ascLBAOutOfRange}
	senseLUNNotSupp    = senseData{key: keyIllegalRequest, asc: ascLUNNotSupported}
	senseWriteProt     = senseData{key: keyDataProtect, asc: ascWriteProtected}
	senseParamLen      = senseData{key: keyIllegalRequest, asc: ascParamListLength}
)

// invalidCDB is INVALID FIELD IN CDB pointing at byte (and bit, or -1).
func invalidCDB(bytePos, bit int) senseData {
	return fieldPointer(ascInvalidFieldCDB, true, bytePos, bit)
}

// invalidParam is INVALID FIELD IN PARAMETER LIST pointing at byte.
func invalidParam(bytePos, bit int) senseData {
	return fieldPointer(ascInvalidFieldParam, false, bytePos, bit)
}
