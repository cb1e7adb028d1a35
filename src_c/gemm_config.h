/*
 * gemm_config.h -- every blocking parameter of the GEMM, in one place, apart from the arithmetic.
 *
 * The GEMM (gemm.c) follows BLIS: C (M x N) is cut into macro-tiles by three cache blocks, and each
 * macro-tile is swept by a register-blocked micro-kernel (gemm_kernels.c).
 *
 *   NC  columns of B and C per outer block   (the packed B panel, KC x NC, lives in L2/L3)
 *   KC  depth of one rank-KC update          (one A micro-panel, MR x KC, stays in L1)
 *   MC  rows of A and C per block            (the packed A block, MC x KC, lives in L2)
 *   MR  rows of the C tile a micro-kernel holds in registers
 *   NR  columns of that tile (a multiple of the SIMD width: the micro-kernel loads B rows as vectors
 *       and broadcasts A elements)
 *
 * Constraints the code relies on: MC is a multiple of MR and NC a multiple of NR, so the grid of
 * MR x NR tiles over C is the same whatever the thread count (part of the determinism argument).
 * Sizes were measured on a Sapphire Rapids core (48 KB L1d, 2 MB L2); see tests/c/test_gemm.c. f32
 * AVX-512's KC was then doubled on a Zen 4 core (32 KB L1d, 1 MB L2): its 6 x 512 A micro-panel (12 KB)
 * still stays in L1 and its MC x KC block (288 KB) in L2, and each KC step saves a reload of C and, on
 * a team sharing B, two barriers (docs/performance.md has the measurements).
 */
#ifndef FASTCONV_GEMM_CONFIG_H
#define FASTCONV_GEMM_CONFIG_H

typedef struct {
    int mr, nr;        /* register block */
    int mc, kc, nc;    /* cache blocks */
    int in_place_b_rows;  /* B is read in place, not packed, when its rows are contiguous and A has at
                           * most this many rows (each B element is then read once per MR rows of A) */
} fc_gemm_blocks;

/* Portable C: a small tile that the compiler can keep in (SSE2) registers. */
#define FC_GEMM_F32_SCALAR_MR 4
#define FC_GEMM_F32_SCALAR_NR 16
#define FC_GEMM_F64_SCALAR_MR 4
#define FC_GEMM_F64_SCALAR_NR 8

/* AVX2 + FMA, 16 ymm registers: 6 rows x 2 vectors = 12 accumulators, 2 for B, 1 broadcast. */
#define FC_GEMM_F32_AVX2_MR 6
#define FC_GEMM_F32_AVX2_NR 16
#define FC_GEMM_F64_AVX2_MR 6
#define FC_GEMM_F64_AVX2_NR 8

/* AVX-512, 32 zmm registers: 6 rows x 4 vectors = 24 accumulators, 4 for B, 1 broadcast. */
#define FC_GEMM_F32_AVX512_MR 6
#define FC_GEMM_F32_AVX512_NR 64
#define FC_GEMM_F64_AVX512_MR 6
#define FC_GEMM_F64_AVX512_NR 32

/* Cache blocks, in elements (MC multiple of MR, NC multiple of NR), and the rows of A up to which B
 * is read in place: 3 MR tiles, or with f32 AVX-512 (64-float rows of B, four whole cache lines per
 * row of a panel) one MC block (see fc_gemm in gemm.c). */
#define FC_GEMM_F32_SCALAR_BLOCKS { FC_GEMM_F32_SCALAR_MR, FC_GEMM_F32_SCALAR_NR, 96, 256, 2048, 3 * FC_GEMM_F32_SCALAR_MR }
#define FC_GEMM_F64_SCALAR_BLOCKS { FC_GEMM_F64_SCALAR_MR, FC_GEMM_F64_SCALAR_NR, 96, 256, 1024, 3 * FC_GEMM_F64_SCALAR_MR }
#define FC_GEMM_F32_AVX2_BLOCKS   { FC_GEMM_F32_AVX2_MR, FC_GEMM_F32_AVX2_NR, 144, 256, 2048, 3 * FC_GEMM_F32_AVX2_MR }
#define FC_GEMM_F64_AVX2_BLOCKS   { FC_GEMM_F64_AVX2_MR, FC_GEMM_F64_AVX2_NR, 96, 256, 1024, 3 * FC_GEMM_F64_AVX2_MR }
#define FC_GEMM_F32_AVX512_BLOCKS { FC_GEMM_F32_AVX512_MR, FC_GEMM_F32_AVX512_NR, 144, 512, 2048, 144 }
#define FC_GEMM_F64_AVX512_BLOCKS { FC_GEMM_F64_AVX512_MR, FC_GEMM_F64_AVX512_NR, 96, 256, 1024, 3 * FC_GEMM_F64_AVX512_MR }

/* Threads split C by B's micro-panels (each packing and reading only its own) when A is one MC block
 * and each thread gets at least this many columns: 4 AVX2 panels, 1 AVX-512 one (see gemm.c,
 * gemm_thread). */
#define FC_GEMM_SPLIT_COLS_MIN_COLUMNS 64

/* Below this many multiply-adds (M*N*K) a GEMM runs on one thread: waking the team costs more than
 * the 2-3 us of work it would share, and far more when the other core is busy (16x100x150, 2 threads
 * asked, machine loaded: 1.4 GFLOP/s through the team, 16.9 on one thread). OpenBLAS's bound is the same. */
#define FC_GEMM_MIN_PARALLEL_FMAS 262144

#endif /* FASTCONV_GEMM_CONFIG_H */
