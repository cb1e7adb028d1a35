/*
 * gemm_kernels.c -- register-blocked GEMM micro-kernels: portable C, AVX2+FMA, AVX-512.
 *
 * Contract: gemm_kernels.h. Every kernel holds an MR x NR tile of C in registers and, for each
 * p < k, adds the outer product of one packed column of A (MR values, broadcast one at a time) and
 * one packed row of B (NR values, loaded as NR/W vectors of W lanes):
 *
 *     for p:  b_0..b_{NV-1} = load(B row p)
 *             for each row i: a = broadcast(A[i][p]);  acc[i][v] += a * b_v   (fused multiply-add)
 *
 * The SIMD kernels are written once per instruction set with loops over compile-time bounds, which
 * GCC unrolls completely so that acc[][] lives in registers. The row count is a compile-time
 * constant too: ukernel_*() switches on m and calls a copy specialised for that many rows, so a
 * partial tile at the bottom edge of C costs only the rows it has.
 *
 * The package is built without -march: AVX code is compiled through GCC target attributes
 * (simd_targets.h), written with simd_vec.h's vector vocabulary, and only called when fc_simd_best()
 * says the CPU has it (gemm.c picks the plan from ctx->simd).
 */
#ifndef FC_TEMPLATE_PASS

#include "gemm_kernels.h"
#include "simd_targets.h"

#if FC_HAVE_X86
#include <immintrin.h>
#define FC_ALWAYS_INLINE inline __attribute__((always_inline))
#endif

/* Expand BODY(rows) for rows = m, a compile-time constant in 1..16 (capped at MR). */
#define FC_GEMM_SWITCH_ROWS(m, MR, BODY)                                                          \
    switch (m) {                                                                                  \
    case 1: BODY(1); break;                                                                       \
    case 2: if (2 <= (MR)) BODY(2); break;                                                        \
    case 3: if (3 <= (MR)) BODY(3); break;                                                        \
    case 4: if (4 <= (MR)) BODY(4); break;                                                        \
    case 5: if (5 <= (MR)) BODY(5); break;                                                        \
    case 6: if (6 <= (MR)) BODY(6); break;                                                        \
    case 7: if (7 <= (MR)) BODY(7); break;                                                        \
    case 8: if (8 <= (MR)) BODY(8); break;                                                        \
    case 9: if (9 <= (MR)) BODY(9); break;                                                        \
    case 10: if (10 <= (MR)) BODY(10); break;                                                     \
    case 11: if (11 <= (MR)) BODY(11); break;                                                     \
    case 12: if (12 <= (MR)) BODY(12); break;                                                     \
    case 13: if (13 <= (MR)) BODY(13); break;                                                     \
    case 14: if (14 <= (MR)) BODY(14); break;                                                     \
    default: break;                                                                               \
    }
#define FC_GEMM_MIN(a, b) ((a) < (b) ? (a) : (b))

/* How tile_avx512 finds B's vector v of row p: packed, at b_pack + p*ldb + v*lanes; indirect, at b_pack +
 * row_off[p] + vec_off[v]; indirect in halves, its low half there and its high half ldb further
 * (gemm_kernels.h). */
enum { FC_B_PACKED, FC_B_INDIRECT, FC_B_INDIRECT_HALVES };

#define FC_TEMPLATE_FILE "gemm_kernels.c"
#include "fc_template.h"

#else /* FC_TEMPLATE_PASS: real, FC_FN, FC_IS_F32 are defined */

/* ---- Per-type names: the tile sizes ------------------------------------------------------------ */
#if FC_IS_F32
#define SCALAR_MR FC_GEMM_F32_SCALAR_MR
#define SCALAR_NR FC_GEMM_F32_SCALAR_NR
#define AVX2_MR FC_GEMM_F32_AVX2_MR
#define AVX2_NR FC_GEMM_F32_AVX2_NR
#define AVX512_MR FC_GEMM_F32_AVX512_MR
#define AVX512_NR FC_GEMM_F32_AVX512_NR
#define SCALAR_BLOCKS FC_GEMM_F32_SCALAR_BLOCKS
#define AVX2_BLOCKS FC_GEMM_F32_AVX2_BLOCKS
#define AVX512_BLOCKS FC_GEMM_F32_AVX512_BLOCKS
#else
#define SCALAR_MR FC_GEMM_F64_SCALAR_MR
#define SCALAR_NR FC_GEMM_F64_SCALAR_NR
#define AVX2_MR FC_GEMM_F64_AVX2_MR
#define AVX2_NR FC_GEMM_F64_AVX2_NR
#define AVX512_MR FC_GEMM_F64_AVX512_MR
#define AVX512_NR FC_GEMM_F64_AVX512_NR
#define SCALAR_BLOCKS FC_GEMM_F64_SCALAR_BLOCKS
#define AVX2_BLOCKS FC_GEMM_F64_AVX2_BLOCKS
#define AVX512_BLOCKS FC_GEMM_F64_AVX512_BLOCKS
#endif

/* ---- Portable C -------------------------------------------------------------------------------- */

static void FC_FN(ukernel_scalar)(int m, fc_index k, real alpha, const real *restrict a_pack,
                                  const real *restrict b_pack, fc_index ldb, real beta,
                                  real *restrict c, fc_index ldc)
{
    real acc[SCALAR_MR][SCALAR_NR] = {{0}};

    for (fc_index p = 0; p < k; p++) {
        const real *a_col = a_pack + p * SCALAR_MR;
        const real *b_row = b_pack + p * ldb;
        for (int i = 0; i < SCALAR_MR; i++)
            for (int j = 0; j < SCALAR_NR; j++)
                acc[i][j] += a_col[i] * b_row[j];
    }
    for (int i = 0; i < m; i++) {
        real *c_row = c + i * ldc;
        if (beta == 0) {
            for (int j = 0; j < SCALAR_NR; j++)
                c_row[j] = alpha * acc[i][j];
        } else {
            for (int j = 0; j < SCALAR_NR; j++)
                c_row[j] = beta * c_row[j] + alpha * acc[i][j];
        }
    }
}

#if FC_HAVE_X86

/* Ask for the C tile now: it is read (beta != 0) or written only after the k loop, and by then
 * the prefetches have hidden the cache misses of its rows (C is far larger than any cache). */
static FC_ALWAYS_INLINE void FC_FN(prefetch_tile)(const int rows, const int cols, const real *c,
                                                  fc_index ldc)
{
    enum { LINE = 64 / sizeof(real) };
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 16
        for (int j = 0; j < cols; j += LINE)
            _mm_prefetch((const char *)(c + i * ldc + j), _MM_HINT_T0);
}

/* ---- AVX2 + FMA -------------------------------------------------------------------------------- */
#define FC_VEC_LEVEL FC_VEC_AVX2
#include "simd_vec.h"

static FC_ALWAYS_INLINE FC_TARGET_AVX2 void
FC_FN(tile_avx2)(const int rows, fc_index k, real alpha, const real *restrict a_pack,
                 const real *restrict b_pack, fc_index ldb,
                 real beta, real *restrict c, fc_index ldc)
{
    enum { MR = AVX2_MR, NR = AVX2_NR, NV = AVX2_NR / FCV_LANES };
    fcv_vec acc[MR][NV];

    FC_FN(prefetch_tile)(rows, NR, c, ldc);
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 16
        for (int v = 0; v < NV; v++)
            acc[i][v] = fcv_set1((real)0);
    for (fc_index p = 0; p < k; p++) {
        fcv_vec b_vec[NV];
#pragma GCC unroll 16
        for (int v = 0; v < NV; v++)
            b_vec[v] = fcv_loadu(b_pack + p * ldb + v * FCV_LANES);
#pragma GCC unroll 16
        for (int i = 0; i < rows; i++) {
            fcv_vec a_val = fcv_set1(a_pack[p * MR + i]);
#pragma GCC unroll 16
            for (int v = 0; v < NV; v++)
                acc[i][v] = fcv_fmadd(a_val, b_vec[v], acc[i][v]);
        }
    }
    fcv_vec alpha_vec = fcv_set1(alpha), beta_vec = fcv_set1(beta);
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 16
        for (int v = 0; v < NV; v++) {
            real *c_vec = c + i * ldc + v * FCV_LANES;
            fcv_vec result = fcv_mul(alpha_vec, acc[i][v]);
            if (beta != 0)
                result = fcv_fmadd(beta_vec, fcv_loadu(c_vec), result);
            fcv_storeu(c_vec, result);
        }
}

static FC_TARGET_AVX2 void
FC_FN(ukernel_avx2)(int m, fc_index k, real alpha, const real *restrict a_pack,
                    const real *restrict b_pack, fc_index ldb, real beta, real *restrict c,
                    fc_index ldc)
{
    /* A packed panel's stride as a constant, so that its B loads take fixed offsets (a run-time
     * stride cost 13% on 128x64x576, 1 thread: tests/c/test_gemm.c bench). */
#define FC_AVX2_ROWS(r) FC_FN(tile_avx2)(FC_GEMM_MIN(r, AVX2_MR), k, alpha, a_pack, b_pack, AVX2_NR, beta, c, ldc)
#define FC_AVX2_ROWS_LDB(r) FC_FN(tile_avx2)(FC_GEMM_MIN(r, AVX2_MR), k, alpha, a_pack, b_pack, ldb, beta, c, ldc)
    if (ldb == AVX2_NR) {
        FC_GEMM_SWITCH_ROWS(m, AVX2_MR, FC_AVX2_ROWS)
    } else {
        FC_GEMM_SWITCH_ROWS(m, AVX2_MR, FC_AVX2_ROWS_LDB)
    }
#undef FC_AVX2_ROWS
#undef FC_AVX2_ROWS_LDB
}

/* ---- AVX-512 ----------------------------------------------------------------------------------- */
#undef FC_VEC_LEVEL
#define FC_VEC_LEVEL FC_VEC_AVX512
#include "simd_vec.h"

/* A tile of `rows` x `nv` vectors, B read as `b_reads` says; with `masked`, the last vector's lanes are
 * `last_mask` only (a right edge: B and C are read and written on those lanes alone, so nothing past the
 * edge is touched). */
static FC_ALWAYS_INLINE FC_TARGET_AVX512 void
FC_FN(tile_avx512)(const int rows, const int nv, const int masked, fcv_mask last_mask, fc_index k,
                   real alpha, const real *restrict a_pack, const real *restrict b_pack,
                   fc_index ldb, const int b_reads, const fc_index *row_off, const fc_index *vec_off,
                   real beta, real *restrict c, fc_index ldc)
{
    enum { MR = AVX512_MR, NV = AVX512_NR / FCV_LANES };
    const int indirect = b_reads != FC_B_PACKED;
    fcv_vec acc[MR][NV];
    fc_index b_vec_at[NV];

#pragma GCC unroll 16
    for (int v = 0; v < nv; v++)
        b_vec_at[v] = indirect ? vec_off[v] : v * FCV_LANES;

    FC_FN(prefetch_tile)(rows, nv * FCV_LANES, c, ldc);
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++)
            acc[i][v] = fcv_set1((real)0);
    for (fc_index p = 0; p < k; p++) {
        fcv_vec b_vec[NV];
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++) {
            const real *b_at = b_pack + (indirect ? row_off[p] : p * ldb) + b_vec_at[v];
            if (b_reads == FC_B_INDIRECT_HALVES)
                b_vec[v] = fcv_load_halves(b_at, b_at + ldb);
            else
                b_vec[v] = masked && v == nv - 1 ? fcv_load_mask(b_at, last_mask) : fcv_loadu(b_at);
        }
#pragma GCC unroll 16
        for (int i = 0; i < rows; i++) {
            fcv_vec a_val = fcv_set1(a_pack[p * MR + i]);
#pragma GCC unroll 16
            for (int v = 0; v < nv; v++)
                acc[i][v] = fcv_fmadd(a_val, b_vec[v], acc[i][v]);
        }
    }
    fcv_vec alpha_vec = fcv_set1(alpha), beta_vec = fcv_set1(beta);
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++) {
            real *c_vec = c + i * ldc + v * FCV_LANES;
            const int edge = masked && v == nv - 1;
            fcv_vec result = fcv_mul(alpha_vec, acc[i][v]);
            if (beta != 0)
                result = fcv_fmadd(beta_vec, edge ? fcv_load_mask(c_vec, last_mask) : fcv_loadu(c_vec),
                                    result);
            if (edge)
                fcv_store_mask(c_vec, last_mask, result);
            else
                fcv_storeu(c_vec, result);
        }
}

static FC_TARGET_AVX512 void
FC_FN(ukernel_avx512)(int m, fc_index k, real alpha, const real *restrict a_pack,
                      const real *restrict b_pack, fc_index ldb, real beta, real *restrict c,
                      fc_index ldc)
{
    enum { NV = AVX512_NR / FCV_LANES };
#define FC_AVX512_ROWS(r) FC_FN(tile_avx512)(FC_GEMM_MIN(r, AVX512_MR), NV, 0, 0, k, alpha, a_pack, b_pack, AVX512_NR, FC_B_PACKED, NULL, NULL, beta, c, ldc)
#define FC_AVX512_ROWS_LDB(r) FC_FN(tile_avx512)(FC_GEMM_MIN(r, AVX512_MR), NV, 0, 0, k, alpha, a_pack, b_pack, ldb, FC_B_PACKED, NULL, NULL, beta, c, ldc)
    if (ldb == AVX512_NR) {   /* as in ukernel_avx2 */
        FC_GEMM_SWITCH_ROWS(m, AVX512_MR, FC_AVX512_ROWS)
    } else {
        FC_GEMM_SWITCH_ROWS(m, AVX512_MR, FC_AVX512_ROWS_LDB)
    }
#undef FC_AVX512_ROWS
#undef FC_AVX512_ROWS_LDB
}

/* tile_avx512 for a run-time m (1..MR) and nv (1..4): one compiled copy per pair. Inlined into each
 * caller, whose `masked` and `b_reads` are constants, so that every copy is specialised. */
static FC_ALWAYS_INLINE FC_TARGET_AVX512 void
FC_FN(tile_avx512_any)(int m, int nv, const int masked, fcv_mask last_mask, fc_index k, real alpha,
                       const real *restrict a_pack, const real *restrict b, fc_index ldb, const int b_reads,
                       const fc_index *row_off, const fc_index *vec_off, real beta, real *restrict c,
                       fc_index ldc)
{
#define FC_AVX512_TILE(r, vectors) FC_FN(tile_avx512)(FC_GEMM_MIN(r, AVX512_MR), vectors, masked, last_mask, k, alpha, a_pack, b, ldb, b_reads, row_off, vec_off, beta, c, ldc)
#define FC_AVX512_TILE_1(r) FC_AVX512_TILE(r, 1)
#define FC_AVX512_TILE_2(r) FC_AVX512_TILE(r, 2)
#define FC_AVX512_TILE_3(r) FC_AVX512_TILE(r, 3)
#define FC_AVX512_TILE_4(r) FC_AVX512_TILE(r, 4)
    switch (nv) {
    case 1: FC_GEMM_SWITCH_ROWS(m, AVX512_MR, FC_AVX512_TILE_1) break;
    case 2: FC_GEMM_SWITCH_ROWS(m, AVX512_MR, FC_AVX512_TILE_2) break;
    case 3: FC_GEMM_SWITCH_ROWS(m, AVX512_MR, FC_AVX512_TILE_3) break;
    default: FC_GEMM_SWITCH_ROWS(m, AVX512_MR, FC_AVX512_TILE_4) break;
    }
#undef FC_AVX512_TILE
#undef FC_AVX512_TILE_1
#undef FC_AVX512_TILE_2
#undef FC_AVX512_TILE_3
#undef FC_AVX512_TILE_4
}

/* The right edge, n < NR columns: only the vectors the edge needs, the last one masked. Computing the
 * full NR-wide tile aside and copying n columns cost a third of the time on LeNet's im2col GEMMs
 * (N = 784 and 100 leave edges of 16 and 36 columns of 64). */
static FC_TARGET_AVX512 void
FC_FN(edge_ukernel_avx512)(int m, int n, fc_index k, real alpha, const real *restrict a_pack,
                           const real *restrict b, fc_index ldb, real beta, real *restrict c,
                           fc_index ldc)
{
    const int nv = (n + FCV_LANES - 1) / FCV_LANES;
    const fcv_mask last_mask = (fcv_mask)((1u << (n - (nv - 1) * FCV_LANES)) - 1);
    FC_FN(tile_avx512_any)(m, nv, 1, last_mask, k, alpha, a_pack, b, ldb, FC_B_PACKED, NULL, NULL, beta, c, ldc);
}

/* Implicit GEMM: nv whole vectors, B read through the offsets, in halves half_step apart if half_step > 0
 * (gemm_kernels.h). */
static FC_TARGET_AVX512 void
FC_FN(indirect_ukernel_avx512)(int m, int nv, fc_index k, const real *restrict a_pack, const real *restrict b,
                               const fc_index *row_offsets, const fc_index *vec_offsets, fc_index half_step,
                               real beta, real *restrict c, fc_index ldc)
{
    if (half_step > 0)
        FC_FN(tile_avx512_any)(m, nv, 0, 0, k, (real)1, a_pack, b, half_step, FC_B_INDIRECT_HALVES, row_offsets,
                               vec_offsets, beta, c, ldc);
    else
        FC_FN(tile_avx512_any)(m, nv, 0, 0, k, (real)1, a_pack, b, 0, FC_B_INDIRECT, row_offsets, vec_offsets,
                               beta, c, ldc);
}

#undef FC_VEC_LEVEL
#include "simd_vec.h"   /* (FC_VEC_LEVEL undefined: drops the vocabulary) */
#endif /* FC_HAVE_X86 */

/* ---- Plan selection ---------------------------------------------------------------------------- */

FC_CAT(fc_gemm_plan, FC_SUFFIX) FC_FN(fc_gemm_plan_for)(fc_simd_level level)
{
    FC_CAT(fc_gemm_plan, FC_SUFFIX) plan = { FC_FN(ukernel_scalar), SCALAR_BLOCKS, NULL, NULL };
#if FC_HAVE_X86
    if (level == FC_SIMD_AVX512) {
        FC_CAT(fc_gemm_plan, FC_SUFFIX) avx512 = { FC_FN(ukernel_avx512), AVX512_BLOCKS,
                                                   FC_FN(edge_ukernel_avx512),
                                                   FC_FN(indirect_ukernel_avx512) };
        plan = avx512;
    } else if (level == FC_SIMD_AVX2) {
        FC_CAT(fc_gemm_plan, FC_SUFFIX) avx2 = { FC_FN(ukernel_avx2), AVX2_BLOCKS, NULL, NULL };
        plan = avx2;
    }
#else
    (void)level;
#endif
    return plan;
}

#undef SCALAR_MR
#undef SCALAR_NR
#undef AVX2_MR
#undef AVX2_NR
#undef AVX512_MR
#undef AVX512_NR
#undef SCALAR_BLOCKS
#undef AVX2_BLOCKS
#undef AVX512_BLOCKS

#endif /* FC_TEMPLATE_PASS */
