package iscsi

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/pdu"
	"github.com/ietgo/ietd/target/scsi"
)

// abortDisk is a fakeDisk that takes the transport's TaskAborter and
// records the nexuses it sees.
type abortDisk struct {
	*fakeDisk
	mu      sync.Mutex
	aborter scsi.TaskAborter
	nexuses []*scsi.Nexus
	// tmfAborted is what each TaskManagement call was told: the other
	// nexuses that lost commands to the TMF.
	tmfAborted [][]*scsi.Nexus
}

func (d *abortDisk) TaskManagement(fn scsi.TMF, lun uint64, n *scsi.Nexus, aborted []*scsi.Nexus) byte {
	d.mu.Lock()
	d.tmfAborted = append(d.tmfAborted, aborted)
	d.mu.Unlock()
	return d.fakeDisk.TaskManagement(fn, lun, n, aborted)
}

// nexusOf is the nexus attached for the initiator name.
func (d *abortDisk) nexusOf(name string) *scsi.Nexus {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.nexuses {
		if n.InitiatorName == name {
			return n
		}
	}
	return nil
}

func (d *abortDisk) SetTaskAborter(a scsi.TaskAborter) { d.aborter = a }

func (d *abortDisk) NexusAttach(n *scsi.Nexus) {
	d.mu.Lock()
	d.nexuses = append(d.nexuses, n)
	d.mu.Unlock()
	d.fakeDisk.NexusAttach(n)
}

// The TaskAborter the server registers aborts an executing command of
// the named session (its Execute sees the context cancelled, no response
// is sent) and returns once that Execute is done; another session's
// command is not touched.
func TestTaskAborterAbortsOtherSessionsTasks(t *testing.T) {
	cfg, _ := basicConfig()
	disk := &abortDisk{fakeDisk: newFakeDisk(1 << 20)}
	disk.block = make(chan struct{})
	ts := startServerWithDevice(t, cfg, disk, disk.fakeDisk)
	if disk.aborter == nil {
		t.Fatal("the server did not register a TaskAborter")
	}
	ra := dialRaw(t, ts.addr, normalKeys())
	rb := dialRaw(t, ts.addr, keysOf("raw-b"))
	read := []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}
	ra.command(read, 512, true)
	ittB := rb.command(read, 512, true)
	time.Sleep(50 * time.Millisecond) // both READs are waiting in the disk
	nexusA := disk.nexusOf("iqn.2026-01.test:raw")
	done := make(chan struct{})
	go func() {
		disk.aborter.AbortTasks(0, []*scsi.Nexus{nexusA}, nil)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("AbortTasks did not return")
	}
	// a: no answer for the aborted READ; its next command is answered.
	itt := ra.command([]byte{0x00, 0, 0, 0, 0, 0}, 0, false)
	if p := ra.recv(); p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt {
		t.Fatalf("session a after the abort: %s", pdu.Describe(&p.BHS))
	}
	// b: its READ still completes.
	close(disk.block)
	for {
		p := rb.recv()
		if p.ITT() == ittB && (p.Opcode() == pdu.OpSCSIResp || p.BHS.Flags()&pdu.FlagStatus != 0) {
			if p.BHS[3] != 0 {
				t.Fatalf("session b's READ: status %#x", p.BHS[3])
			}
			break
		}
	}
}

// CLEAR TASK SET tells the SCSI layer which other nexuses lost commands
// (they, and no other, get COMMANDS CLEARED BY ANOTHER INITIATOR): b with
// a READ on the LUN, not c with nothing in flight, not the requester a.
func TestClearTaskSetNamesTheNexusesThatLostCommands(t *testing.T) {
	cfg, _ := basicConfig()
	disk := &abortDisk{fakeDisk: newFakeDisk(1 << 20)}
	disk.block = make(chan struct{})
	defer close(disk.block)
	ts := startServerWithDevice(t, cfg, disk, disk.fakeDisk)
	ra, rb := dialRaw(t, ts.addr, keysOf("raw")), dialRaw(t, ts.addr, keysOf("raw-b"))
	dialRaw(t, ts.addr, keysOf("raw-c"))
	ra.command(cdbRead1, 512, true)
	rb.command(cdbRead1, 512, true)
	waitExecs(t, disk.fakeDisk, 2)
	ra.tmf(byte(scsi.TMFClearTaskSet), 900, ra.cmdSN, 0xffffffff, 0, 0, true)
	if p := ra.recv(); p.Opcode() != pdu.OpTMFResp || p.ITT() != 900 || p.BHS[2] != tmfComplete {
		t.Fatalf("CLEAR TASK SET: %s response %d", pdu.Describe(&p.BHS), p.BHS[2])
	}
	disk.mu.Lock()
	calls := disk.tmfAborted
	disk.mu.Unlock()
	nb := disk.nexusOf("iqn.2026-01.test:raw-b")
	if len(calls) != 1 || len(calls[0]) != 1 || calls[0][0] != nb {
		t.Fatalf("TaskManagement told %v, want one call naming b's nexus %p", calls, nb)
	}
}

// startServerWithDevice is startServer for a Device that is not a plain
// fakeDisk (disk is the fakeDisk underneath it).
func startServerWithDevice(t *testing.T, cfg *config.Config, dev Device, disk *fakeDisk) *testServer {
	t.Helper()
	return startServerWith(t, cfg, disk, Options{
		NewDevice: func(*config.Target, scsi.Options) (Device, error) { return dev, nil }})
}

// preemptDisk runs every PERSISTENT RESERVE OUT as a PREEMPT AND ABORT
// of its own nexus, once both of two have started.
type preemptDisk struct {
	*abortDisk
	started, returned sync.WaitGroup
}

func (d *preemptDisk) Execute(ctx context.Context, cmd *scsi.Command) scsi.Result {
	if cmd.CDB[0] != 0x5f {
		return d.abortDisk.Execute(ctx, cmd)
	}
	d.started.Done()
	d.started.Wait()
	d.aborter.AbortTasks(0, []*scsi.Nexus{cmd.Nexus}, cmd)
	d.returned.Done()
	return scsi.Result{XferLen: -1}
}

// Two PREEMPT AND ABORTs of one nexus that abort each other both
// return: neither waits for the other (with no time limit on the wait,
// they would wait for ever). Each aborted the other, so neither is
// answered (TAS=0); the session goes on.
func TestPreemptAndAbortsOfOneNexusDoNotWaitForEachOther(t *testing.T) {
	cfg, _ := basicConfig()
	disk := &preemptDisk{abortDisk: &abortDisk{fakeDisk: newFakeDisk(1 << 20)}}
	disk.started.Add(2)
	disk.returned.Add(2)
	ts := startServerWithDevice(t, cfg, disk, disk.fakeDisk)
	r := dialRaw(t, ts.addr, normalKeys())
	prOut := []byte{0x5f, 0x05, 0, 0, 0, 0, 0, 0, 0, 0}
	r.command(prOut, 0, false)
	r.command(prOut, 0, false)
	done := make(chan struct{})
	go func() { disk.returned.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the two PREEMPT AND ABORTs wait for each other")
	}
	itt := r.command([]byte{0x00, 0, 0, 0, 0, 0}, 0, false)
	for range 3 {
		if p := r.recv(); p.Opcode() == pdu.OpSCSIResp && p.ITT() == itt {
			return
		}
	}
	t.Fatal("no answer to TEST UNIT READY after the two PREEMPT AND ABORTs")
}
