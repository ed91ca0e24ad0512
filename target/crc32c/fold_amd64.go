package crc32c

import "golang.org/x/sys/cpu"

var useFold = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VPCLMULQDQ && cpu.X86.HasAVX2 && cpu.X86.HasSSE42

// foldAVX512 returns rawUpdate(crc, p); len(p) is a non-zero multiple of
// 256 (fold_amd64.s).
//
//go:noescape
func foldAVX512(crc uint32, p []byte, k *[12]uint64) uint32

func fold(crc uint32, p []byte) uint32 { return foldAVX512(crc, p, &foldConsts) }
