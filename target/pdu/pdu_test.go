package pdu

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"testing/iotest"
)

// RFC 3720 appendix B.4 CRC32C examples.
func TestCRC32CVectors(t *testing.T) {
	inc := make([]byte, 32)
	dec := make([]byte, 32)
	ones := bytes.Repeat([]byte{0xff}, 32)
	for i := range inc {
		inc[i] = byte(i)
		dec[i] = byte(31 - i)
	}
	readPDU := []byte{
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
		0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	}
	cases := []struct {
		name string
		in   []byte
		wire []byte
	}{
		{"zeros", make([]byte, 32), []byte{0xaa, 0x36, 0x91, 0x8a}},
		{"ones", ones, []byte{0x43, 0xab, 0xa8, 0x62}},
		{"incrementing", inc, []byte{0x4e, 0x79, 0xdd, 0x46}},
		{"decrementing", dec, []byte{0x5c, 0xdb, 0x3f, 0x11}},
		{"read-pdu", readPDU, []byte{0x56, 0x3a, 0x96, 0xd9}},
	}
	for _, c := range cases {
		var got [4]byte
		PutDigest(got[:], CRC32C(c.in))
		if !bytes.Equal(got[:], c.wire) {
			t.Errorf("%s: digest % x, want % x", c.name, got, c.wire)
		}
	}
}

func TestLUNCoding(t *testing.T) {
	for _, lun := range []uint64{0, 1, 255, 256, 1000, 16383} {
		if got := DecodeLUN(EncodeLUN(lun)); got != lun {
			t.Errorf("lun %d round trip = %d", lun, got)
		}
	}
	if got := DecodeLUN(0x0001_0000_0000_0000); got != 1 {
		t.Errorf("peripheral lun 1 = %d", got)
	}
}

func TestSN(t *testing.T) {
	if !SNLess(0xfffffffe, 1) || SNLess(1, 0xfffffffe) || !SNLessEq(5, 5) || SNLess(5, 5) {
		t.Fatal("serial arithmetic wrong")
	}
}

func buildPDU(t testing.TB, op Opcode, data []byte, hd, dd bool) []byte {
	var h BHS
	h.SetOpcode(op)
	h.SetFlags(FlagFinal)
	h.SetDataLen(len(data))
	h.SetU32(OffITT, 0x1234)
	bufs, _ := AppendPDU(nil, nil, &h, data, hd, dd)
	var out bytes.Buffer
	for _, b := range bufs {
		out.Write(b)
	}
	if out.Len() != WireLen(len(data), hd, dd) {
		t.Fatalf("wire len %d, want %d", out.Len(), WireLen(len(data), hd, dd))
	}
	return out.Bytes()
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 3, 4, 5, 8192, 70000} {
		for _, dig := range [][2]bool{{false, false}, {true, false}, {true, true}, {false, true}} {
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(i * 7)
			}
			wire := buildPDU(t, OpDataIn, data, dig[0], dig[1])
			r := NewReader(bytes.NewReader(wire))
			r.HeaderDigest, r.DataDigest = dig[0], dig[1]
			var h Header
			if err := r.ReadHeader(&h); err != nil {
				t.Fatalf("n=%d dig=%v header: %v", n, dig, err)
			}
			if h.Opcode() != OpDataIn || h.ITT() != 0x1234 || h.DataLen() != n || !h.Final() {
				t.Fatalf("decoded %s", Describe(&h.BHS))
			}
			got := make([]byte, h.DataLen())
			if err := r.ReadData(got); err != nil {
				t.Fatalf("n=%d dig=%v data: %v", n, dig, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("n=%d data mismatch", n)
			}
			if _, err := r.br.ReadByte(); err != io.EOF {
				t.Fatalf("n=%d: trailing bytes", n)
			}
		}
	}
}

func TestDigestErrors(t *testing.T) {
	wire := buildPDU(t, OpSCSICmd, []byte("hello"), true, true)
	bad := append([]byte(nil), wire...)
	bad[10] ^= 1 // header byte
	r := NewReader(bytes.NewReader(bad))
	r.HeaderDigest, r.DataDigest = true, true
	var h Header
	if err := r.ReadHeader(&h); !errors.Is(err, ErrHeaderDigest) {
		t.Fatalf("want header digest error, got %v", err)
	}
	bad = append([]byte(nil), wire...)
	bad[BHSLen+4+1] ^= 1 // data byte
	bad = append(bad, buildPDU(t, OpNOPOut, nil, true, true)...)
	r = NewReader(bytes.NewReader(bad))
	r.HeaderDigest, r.DataDigest = true, true
	if err := r.ReadHeader(&h); err != nil {
		t.Fatal(err)
	}
	if err := r.ReadData(make([]byte, h.DataLen())); !errors.Is(err, ErrDataDigest) {
		t.Fatalf("want data digest error, got %v", err)
	}
	// The stream stays in sync after a data digest error.
	if err := r.ReadHeader(&h); err != nil || h.Opcode() != OpNOPOut {
		t.Fatalf("next PDU: %v %s", err, Describe(&h.BHS))
	}
}

func TestAHSAndDiscard(t *testing.T) {
	var h BHS
	h.SetOpcode(OpSCSICmd)
	h[4] = 2 // 8 bytes of AHS
	h[7] = 6
	wire := append(h[:], make([]byte, 8)...)
	wire = append(wire, []byte("abcdef\x00\x00")...)
	wire = append(wire, buildPDU(t, OpNOPOut, nil, false, false)...)
	r := NewReader(bytes.NewReader(wire))
	var got Header
	if err := r.ReadHeader(&got); err != nil || got.AHSLen != 8 || len(got.AHSBytes()) != 8 {
		t.Fatalf("ahs: %v %d", err, got.AHSLen)
	}
	if err := r.Discard(got.DataLen()); err != nil {
		t.Fatal(err)
	}
	if err := r.ReadHeader(&got); err != nil || got.Opcode() != OpNOPOut {
		t.Fatalf("after discard: %v", err)
	}
}

func TestTruncated(t *testing.T) {
	wire := buildPDU(t, OpSCSICmd, []byte("hello world"), false, false)
	for cut := 1; cut < len(wire); cut++ {
		r := NewReader(bytes.NewReader(wire[:cut]))
		var h Header
		err := r.ReadHeader(&h)
		if err == nil {
			err = r.ReadData(make([]byte, h.DataLen()))
		}
		if err == nil {
			t.Fatalf("cut %d: no error", cut)
		}
	}
}

func TestBufPool(t *testing.T) {
	p := NewBufPool([]int{16, 64}, 128) // 64 bytes per class: 4 x 16, 1 x 64
	b := p.Get(10)
	if len(b) != 10 || cap(b) != 16 {
		t.Fatalf("len %d cap %d", len(b), cap(b))
	}
	b[0] = 42
	p.Put(b)
	c := p.Get(16)
	if cap(c) != 16 || c[0] != 42 {
		t.Fatal("buffer not reused")
	}
	big := p.Get(100)
	if len(big) != 100 {
		t.Fatal("oversize")
	}
	p.Put(big) // dropped, no panic
	// Retention is bounded by bytes over all classes, and a class in use
	// may take the whole room: 8 x 16 bytes fill the 128-byte limit...
	for i := 0; i < 10; i++ {
		p.Put(make([]byte, 0, 16))
	}
	if n, r := len(p.free[0]), p.Retained(); n != 8 || r != 128 {
		t.Fatalf("retained %d buffers (%d bytes), want 8 (128)", n, r)
	}
	// ...and when the workload moves to another class, its buffers push
	// the stale ones out: a 64-byte buffer evicts four 16-byte ones.
	p.Put(make([]byte, 0, 64))
	if n0, n1, r := len(p.free[0]), len(p.free[1]), p.Retained(); n0 != 4 || n1 != 1 || r != 128 {
		t.Fatalf("after eviction: %d x 16, %d x 64, %d bytes; want 4, 1, 128", n0, n1, r)
	}
	// A class never evicts itself: full of 64s, another 64 is dropped.
	p.Put(make([]byte, 0, 64)) // evicts the remaining 16s
	p.Put(make([]byte, 0, 64))
	if n0, n1, r := len(p.free[0]), len(p.free[1]), p.Retained(); n0 != 0 || n1 != 2 || r != 128 {
		t.Fatalf("full of 64s: %d x 16, %d x 64, %d bytes; want 0, 2, 128", n0, n1, r)
	}
	// Four 16s back: the first evicts one 64, the rest fit beside the other.
	for range 4 {
		p.Put(make([]byte, 0, 16))
	}
	if n0, n1, r := len(p.free[0]), len(p.free[1]), p.Retained(); n0 != 4 || n1 != 1 || r != 128 {
		t.Fatalf("back to 16s: %d x 16, %d x 64, %d bytes; want 4, 1, 128", n0, n1, r)
	}
	// Concurrent use keeps the count exact.
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				p.Put(p.Get(16 << (2 * (i % 2))))
			}
		}()
	}
	wg.Wait()
	sum := int64(len(p.free[0])*16 + len(p.free[1])*64)
	if r := p.Retained(); r != sum || r > 128 {
		t.Fatalf("retained counter %d, free lists hold %d (limit 128)", r, sum)
	}
}

type loopConn struct{ bytes.Buffer }

func BenchmarkEncodeDataIn(b *testing.B) {
	data := make([]byte, 4096)
	var h BHS
	bufs := make(net.Buffers, 0, 8)
	arena := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		h.SetOpcode(OpDataIn)
		h.SetFlags(FlagFinal | FlagStatus)
		h.SetDataLen(len(data))
		h.SetU32(OffITT, uint32(i))
		bufs, arena = AppendPDU(bufs[:0], arena[:0], &h, data, true, false)
	}
}

func BenchmarkEncodeDataInDigest(b *testing.B) {
	data := make([]byte, 4096)
	var h BHS
	bufs := make(net.Buffers, 0, 8)
	arena := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		h.SetOpcode(OpDataIn)
		h.SetDataLen(len(data))
		bufs, arena = AppendPDU(bufs[:0], arena[:0], &h, data, true, true)
	}
}

type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

func benchDecode(b *testing.B, n int, hd, dd bool) {
	wire := buildPDU(b, OpDataOut, make([]byte, n), hd, dd)
	r := NewReader(&repeatReader{data: wire})
	r.HeaderDigest, r.DataDigest = hd, dd
	var h Header
	dst := make([]byte, n)
	b.ReportAllocs()
	b.SetBytes(int64(n))
	for i := 0; i < b.N; i++ {
		if err := r.ReadHeader(&h); err != nil {
			b.Fatal(err)
		}
		if err := r.ReadData(dst[:h.DataLen()]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeDataOut4K(b *testing.B)       { benchDecode(b, 4096, false, false) }
func BenchmarkDecodeDataOut4KDigest(b *testing.B) { benchDecode(b, 4096, true, true) }
func BenchmarkDecodeDataOut256K(b *testing.B)     { benchDecode(b, 256<<10, false, false) }

func BenchmarkDigest4K(b *testing.B) {
	data := make([]byte, 4096)
	b.ReportAllocs()
	b.SetBytes(4096)
	for i := 0; i < b.N; i++ {
		_ = DataDigest(data)
	}
}

func BenchmarkBufPool(b *testing.B) {
	p := NewBufPool(nil, 64<<20)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p.Put(p.Get(65536))
	}
}

// The data digest is taken chunk by chunk as the bytes arrive: short reads
// of every size and a segment split over two destinations must give the
// same result as one pass, and a flipped byte anywhere must be caught.
func TestDataDigestOverShortReads(t *testing.T) {
	data := make([]byte, 70001)
	for i := range data {
		data[i] = byte(i*13 + 1)
	}
	wire := buildPDU(t, OpDataOut, data, true, true)
	readers := map[string]func([]byte) io.Reader{
		"one-byte": func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"half":     func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
		"data-err": func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
	}
	for name, mk := range readers {
		for _, split := range []int{-1, 0, 1, 4096, 70000, 70001} {
			for _, flip := range []int{-1, 0, 33333, len(data) - 1} {
				w := append([]byte(nil), wire...)
				if flip >= 0 {
					w[BHSLen+DigestLen+flip] ^= 0x40
				}
				r := NewReader(mk(w))
				r.HeaderDigest, r.DataDigest = true, true
				var h Header
				if err := r.ReadHeader(&h); err != nil {
					t.Fatalf("%s: header: %v", name, err)
				}
				got := make([]byte, h.DataLen())
				var err error
				if split < 0 {
					err = r.ReadData(got)
				} else {
					err = r.ReadDataParts(got[:split], got[split:])
				}
				if flip >= 0 {
					if !errors.Is(err, ErrDataDigest) {
						t.Fatalf("%s split=%d flip=%d: want digest error, got %v", name, split, flip, err)
					}
					continue
				}
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("%s split=%d: err=%v equal=%v", name, split, err, bytes.Equal(got, data))
				}
			}
		}
	}
	// A stream cut inside the data is an unexpected EOF, not a digest error.
	r := NewReader(iotest.HalfReader(bytes.NewReader(wire[:BHSLen+DigestLen+500])))
	r.HeaderDigest, r.DataDigest = true, true
	var h Header
	if err := r.ReadHeader(&h); err != nil {
		t.Fatal(err)
	}
	if err := r.ReadData(make([]byte, h.DataLen())); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut stream: got %v", err)
	}
}

// AppendPDUDigested with DataDigest(data) produces the same bytes as
// AppendPDU computing it.
func TestAppendPDUDigested(t *testing.T) {
	data := []byte("seventeen bytes!!")
	var h BHS
	h.SetOpcode(OpDataIn)
	h.SetDataLen(len(data))
	a, _ := AppendPDU(nil, nil, &h, data, true, true)
	b, _ := AppendPDUDigested(nil, nil, &h, data, true, DataDigest(data))
	var wa, wb bytes.Buffer
	a.WriteTo(&wa)
	b.WriteTo(&wb)
	if !bytes.Equal(wa.Bytes(), wb.Bytes()) {
		t.Fatalf("differ:\n%x\n%x", wa.Bytes(), wb.Bytes())
	}
}

// A BHS built on the caller's stack must stay there when the header
// digest is on: the connection writer builds one per response, and an
// escape is one heap allocation per command.
func TestAppendPDUKeepsHeaderOnStack(t *testing.T) {
	data := make([]byte, 512)
	bufs := make(net.Buffers, 0, 8)
	arena := make([]byte, 0, 256)
	for _, dd := range []bool{false, true} {
		allocs := testing.AllocsPerRun(100, func() {
			var h BHS
			h.SetOpcode(OpSCSIResp)
			h.SetDataLen(len(data))
			bufs, arena = AppendPDU(bufs[:0], arena[:0], &h, data, true, dd)
		})
		if allocs != 0 {
			t.Errorf("DataDigest %v: %.1f allocations per PDU, want 0", dd, allocs)
		}
		if want := WireLen(len(data), true, dd); len(arena)+len(data) != want {
			t.Errorf("DataDigest %v: %d bytes on the wire, want %d", dd, len(arena)+len(data), want)
		}
	}
}
