package backing

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzComposedStores decodes a store layout and an operation list from the
// input, runs the operations on a concat-of-mirrors-and-limits built from
// memory stores and on a flat buffer, and requires identical contents and
// identical bounds decisions.
func FuzzComposedStores(f *testing.F) {
	f.Add([]byte{3, 10, 200, 7, 0, 0, 0, 5, 0, 0, 10, 1, 1, 0, 3, 0, 20, 2, 0, 0, 0, 255})
	f.Add([]byte{1, 255, 0, 0, 1, 0, 0, 2, 0})
	f.Add(bytes.Repeat([]byte{2, 9, 100, 0, 33}, 8))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 1 {
			return
		}
		nm := int(in[0]%4) + 1
		in = in[1:]
		var members []Store
		var size int64
		for i := 0; i < nm && len(in) >= 2; i++ {
			sz := int64(in[0])*16 + int64(in[1]%16)
			kind := in[1] / 16 % 3
			in = in[2:]
			var m Store
			switch kind {
			case 0:
				m = NewMemory(sz)
			case 1:
				m = NewMirror(nil, MirrorMember{"a", NewMemory(sz)}, MirrorMember{"b", NewFaulty(NewMemory(sz + 5))})
			default:
				m = NewLimit(NewMemory(sz+100), sz, false)
			}
			members = append(members, m)
			size += sz
		}
		s := NewConcat(members...)
		if s.Size() != size {
			t.Fatalf("size %d, want %d", s.Size(), size)
		}
		ref := make([]byte, size)
		for k := 0; len(in) >= 5 && k < 200; k++ {
			op := in[0] % 3
			off := int64(binary.BigEndian.Uint16(in[1:3])) - 8
			n := int64(binary.BigEndian.Uint16(in[3:5]) % 4096)
			in = in[5:]
			ok := off >= 0 && off+n <= size
			switch op {
			case 0:
				p := pattern(int64(k), int(n))
				_, err := s.WriteAt(p, off)
				if (err == nil) != ok {
					t.Fatalf("write [%d,+%d) in %d: %v", off, n, size, err)
				}
				if ok {
					copy(ref[off:], p)
				}
			case 1:
				p := make([]byte, n)
				_, err := s.ReadAt(p, off)
				if (err == nil) != ok {
					t.Fatalf("read [%d,+%d) in %d: %v", off, n, size, err)
				}
				if ok && !bytes.Equal(p, ref[off:off+n]) {
					t.Fatalf("read [%d,+%d) differs", off, n)
				}
			case 2:
				err := s.Unmap(off, n)
				if (err == nil) != ok {
					t.Fatalf("unmap [%d,+%d) in %d: %v", off, n, size, err)
				}
				if ok {
					clear(ref[off : off+n])
				}
			}
		}
		all := make([]byte, size)
		if _, err := s.ReadAt(all, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(all, ref) {
			t.Fatal("final contents differ")
		}
	})
}
