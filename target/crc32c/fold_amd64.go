package crc32c

import (
	"os"
	"strings"

	"golang.org/x/sys/cpu"
)

// useFold needs every extension fold_amd64.s uses (AVX-512F and
// VPCLMULQDQ on zmm registers; VEX-encoded AVX and AVX2 for the last
// reductions; SSE4.2's CRC32), each also enabled by the OS in XCR0 (x/sys/cpu
// clears the AVX and AVX-512 ones otherwise). Each of them can be turned off
// with GODEBUG, by x/sys/cpu's names (cpu.avx512=off, cpu.avx512f=off,
// cpu.avx512vpclmulqdq=off, cpu.avx=off, cpu.avx2=off, cpu.sse42=off,
// cpu.all=off) and by the Go runtime's name for VPCLMULQDQ
// (cpu.vpclmulqdq=off), which x/sys/cpu does not know.
var useFold = cpu.X86.HasAVX512 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512VPCLMULQDQ &&
	cpu.X86.HasAVX && cpu.X86.HasAVX2 && cpu.X86.HasSSE42 &&
	!godebugOff(os.Getenv("GODEBUG"), "vpclmulqdq")

// godebugOff reports whether the last cpu.<feature> setting in godebug (a
// GODEBUG value) is off, as the runtime reads it: later settings win.
func godebugOff(godebug, feature string) bool {
	off := false
	for _, f := range strings.Split(godebug, ",") {
		switch f {
		case "cpu." + feature + "=off":
			off = true
		case "cpu." + feature + "=on":
			off = false
		}
	}
	return off
}

// foldAVX512 returns rawUpdate(crc, p); len(p) is a non-zero multiple of
// 256 (fold_amd64.s).
//
//go:noescape
func foldAVX512(crc uint32, p []byte, k *[12]uint64) uint32

func fold(crc uint32, p []byte) uint32 { return foldAVX512(crc, p, &foldConsts) }
