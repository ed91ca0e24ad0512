package scsi

import "fmt"

// Nexus identifies one I_T nexus (an iSCSI session): the initiator port
// (iSCSI name + ISID) on one target port. The transport creates one per
// session and passes the same pointer with every command of that session.
type Nexus struct {
	// ID is unique among live nexuses of the process.
	ID uint64
	// InitiatorName is the iSCSI initiator name (iqn...).
	InitiatorName string
	// ISID is the 6-byte initiator session id.
	ISID [6]byte
	// TargetName is the iSCSI target name.
	TargetName string
	// TPGT is the target portal group tag (1).
	TPGT uint16
	// RelativePort is the relative target port identifier (1).
	RelativePort uint16
	// Reinstated says the session replaced an earlier one of the same
	// initiator port (session reinstatement, RFC 7143 6.3.5): that I_T
	// nexus was lost, so the unit attention the new one starts with is
	// I_T NEXUS LOSS OCCURRED (29h/07h) instead of POWER ON, RESET, OR
	// BUS DEVICE RESET OCCURRED (29h/00h).
	Reinstated bool

	key string // itKey, set by NexusAttach before the nexus is used
}

// TaskAttr is the SAM task attribute from the SCSI Command PDU.
type TaskAttr uint8

const (
	Untagged TaskAttr = 0
	Simple   TaskAttr = 1
	Ordered  TaskAttr = 2
	HeadOfQ  TaskAttr = 3
	ACA      TaskAttr = 4
)

// Command is one SCSI command as the transport delivers it.
type Command struct {
	Nexus *Nexus
	LUN   uint64 // decoded LUN number (flat/peripheral addressing)
	CDB   []byte // 6..16 bytes (+AHS extended CDB)
	Attr  TaskAttr
	Tag   uint32 // initiator task tag
	// ExpectedLen is the iSCSI Expected Data Transfer Length.
	ExpectedLen uint32
	// Read/Write are the R and W bits of the PDU.
	Read, Write bool
	// DataOut holds the data the initiator sent (writes); len(DataOut) may
	// be less than ExpectedLen only if the initiator sent less.
	DataOut []byte
	// DataIn is a transport-owned buffer the device may fill for reads:
	// for the READ commands its cap is the CDB's transfer length (blocks
	// of up to 8192 bytes) capped by ExpectedLen; other commands get none.
	// The device may return another slice instead.
	DataIn []byte
}

// Status codes (SAM-5).
const (
	StatusGood                = 0x00
	StatusCheckCondition      = 0x02
	StatusConditionMet        = 0x04
	StatusBusy                = 0x08
	StatusReservationConflict = 0x18
	StatusTaskSetFull         = 0x28
	StatusACAActive           = 0x30
	StatusTaskAborted         = 0x40
)

// Result is the outcome of a command.
type Result struct {
	Status byte
	// Sense is the sense data (fixed or descriptor format) for CHECK
	// CONDITION; nil otherwise.
	Sense []byte
	// Data is the Data-In payload (reads). It may be longer than
	// Command.ExpectedLen: the transport sends ExpectedLen bytes and
	// reports the overflow as a residual.
	Data []byte
	// XferLen is the number of bytes the CDB asked to transfer in the
	// command's data direction (for residual computation): for reads it
	// is normally len(Data); for writes the CDB's transfer length in
	// bytes. -1 when the command has no data phase.
	XferLen int
}

// TMF identifies a task management function (RFC 7143 11.5.1).
type TMF uint8

const (
	TMFAbortTask        TMF = 1
	TMFAbortTaskSet     TMF = 2
	TMFClearACA         TMF = 3
	TMFClearTaskSet     TMF = 4
	TMFLogicalUnitReset TMF = 5
	TMFTargetWarmReset  TMF = 6
	TMFTargetColdReset  TMF = 7
	TMFTaskReassign     TMF = 8
)

var tmfNames = [...]string{1: "ABORT TASK", 2: "ABORT TASK SET", 3: "CLEAR ACA", 4: "CLEAR TASK SET",
	5: "LOGICAL UNIT RESET", 6: "TARGET WARM RESET", 7: "TARGET COLD RESET", 8: "TASK REASSIGN"}

// String is the function's name in RFC 7143.
func (f TMF) String() string {
	if int(f) < len(tmfNames) && tmfNames[f] != "" {
		return tmfNames[f]
	}
	return fmt.Sprintf("task management function %d", uint8(f))
}

// TaskAborter is implemented by the transport so the device server can
// abort commands of other I_T nexuses (PERSISTENT RESERVE OUT with
// PREEMPT AND ABORT, SPC-4 5.13.11.2.6). AbortTasks aborts every command
// the given nexuses have in flight on LUN lun, except keep (the command
// asking), as SAM-5 aborts with TAS=0: no response is sent for them. It
// returns once none of them can still execute (those executing have
// finished). Without a TaskAborter (SetTaskAborter) PREEMPT AND ABORT
// does what PREEMPT does.
type TaskAborter interface {
	AbortTasks(lun uint64, nexuses []*Nexus, keep *Command)
}
