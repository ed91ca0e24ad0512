// Package crc32c computes CRC32C (Castagnoli), the iSCSI header and data
// digest (RFC 7143 section 13.1), with the same results as hash/crc32's
// Castagnoli table.
//
// On amd64 processors with AVX-512 and VPCLMULQDQ, inputs of 512 bytes and
// more are folded 256 bytes at a time with carry-less multiplies (four
// 512-bit accumulators; the constants are x^n mod P, computed at start-up
// from the polynomial), about twice as fast as hash/crc32's SSE4.2 CRC32
// loop (the fold ends with the CRC32 instruction over the 16 bytes it
// reduces the input to; anything shorter or left over goes through
// hash/crc32). Everywhere else Update is hash/crc32.Update.
package crc32c
