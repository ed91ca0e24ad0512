#include "textflag.h"

// func foldAVX512(crc uint32, p []byte, k *[12]uint64) uint32
//
// Four 512-bit accumulators take the first 256 bytes (crc XORed into the
// first four bytes); each further 256 bytes fold every 128-bit lane 2048 bits on
// (k[0:2]) into the new data. Then accumulator i folds 512 bits on (k[2:4])
// into i+1, the last one's lanes 0-2 fold 384, 256 and 128 bits on
// (k[4:10]) into lane 3, and the CRC32 instruction over that lane's 16 bytes,
// from 0, gives the register (the lane is congruent to the whole input).
TEXT ·foldAVX512(SB), NOSPLIT, $0-44
	MOVL crc+0(FP), AX
	MOVQ p_base+8(FP), SI
	MOVQ p_len+16(FP), CX
	MOVQ k+32(FP), DX

	VMOVDQU64 0(SI), Z0
	VMOVDQU64 64(SI), Z1
	VMOVDQU64 128(SI), Z2
	VMOVDQU64 192(SI), Z3
	VMOVD AX, X4
	VPXORQ Z4, Z0, Z0
	VBROADCASTI32X4 0(DX), Z8
	ADDQ $256, SI
	SUBQ $256, CX
	JZ combine

loop:
	VPCLMULQDQ $0x00, Z8, Z0, Z4
	VPCLMULQDQ $0x11, Z8, Z0, Z0
	VPTERNLOGD $0x96, 0(SI), Z4, Z0
	VPCLMULQDQ $0x00, Z8, Z1, Z5
	VPCLMULQDQ $0x11, Z8, Z1, Z1
	VPTERNLOGD $0x96, 64(SI), Z5, Z1
	VPCLMULQDQ $0x00, Z8, Z2, Z6
	VPCLMULQDQ $0x11, Z8, Z2, Z2
	VPTERNLOGD $0x96, 128(SI), Z6, Z2
	VPCLMULQDQ $0x00, Z8, Z3, Z7
	VPCLMULQDQ $0x11, Z8, Z3, Z3
	VPTERNLOGD $0x96, 192(SI), Z7, Z3
	ADDQ $256, SI
	SUBQ $256, CX
	JNZ loop

combine:
	VBROADCASTI32X4 16(DX), Z8
	VPCLMULQDQ $0x00, Z8, Z0, Z4
	VPCLMULQDQ $0x11, Z8, Z0, Z0
	VPTERNLOGD $0x96, Z1, Z4, Z0
	VPCLMULQDQ $0x00, Z8, Z0, Z4
	VPCLMULQDQ $0x11, Z8, Z0, Z0
	VPTERNLOGD $0x96, Z2, Z4, Z0
	VPCLMULQDQ $0x00, Z8, Z0, Z4
	VPCLMULQDQ $0x11, Z8, Z0, Z0
	VPTERNLOGD $0x96, Z3, Z4, Z0

	VMOVDQU64 32(DX), Z8
	VPCLMULQDQ $0x00, Z8, Z0, Z4
	VPCLMULQDQ $0x11, Z8, Z0, Z5
	VPXORQ Z5, Z4, Z4
	VEXTRACTI32X4 $3, Z0, X6
	VEXTRACTI64X4 $1, Z4, Y5
	VPXOR Y5, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPXOR X5, X4, X4
	VPXOR X6, X4, X4
	VMOVQ X4, AX
	VPEXTRQ $1, X4, BX
	XORL CX, CX
	CRC32Q AX, CX
	CRC32Q BX, CX
	MOVL CX, ret+40(FP)
	VZEROUPPER
	RET
