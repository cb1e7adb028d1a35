/*
 * gemm_kernels.h -- the GEMM micro-kernels (gemm_kernels.c) as gemm.c sees them.
 *
 * A micro-kernel updates one tile of C, m rows (1 <= m <= MR) by NR columns, from packed operands:
 *
 *   C[i][j] = alpha * sum_{p < k} a_pack[p*MR + i] * b[p*ldb + j]  +  beta * C[i][j]
 *
 * for i < m, j < NR, C[i][j] at c[i*ldc + j]. a_pack is one packed A micro-panel (MR x k, column by
 * column, 64-byte aligned). b is k rows of NR values, ldb apart: a packed B micro-panel (ldb = NR),
 * or B itself when its rows are contiguous and NR columns exist (gemm.c reads B in place when packing
 * would not pay). k may be 0.
 * beta == 0 means C is write-only (never read, so NaN in C does not leak into the result).
 * Rows beyond m are neither computed nor stored; columns are always NR. A right edge of C (n < NR
 * columns) goes to the plan's edge kernel, which takes n and touches only those n columns of b and
 * C (AVX-512 masks them); a plan without one has gemm.c run the micro-kernel on a local NR-wide tile.
 * Each C element is a sum over p in increasing order, the same whatever m and n are, so how tiles
 * are cut never changes a result.
 *
 * An indirect micro-kernel (implicit GEMM: B is never packed) reads B where it lies: vector v of B's
 * row p (lanes elements) at b + row_offsets[p] + vec_offsets[v], for v < nv (1 <= nv <= NR / lanes),
 * or, with half_step > 0, its low lanes / 2 elements there and its high ones half_step further; it
 * updates nv vectors of C's rows, alpha 1. conv_im2col.c's implicit forward hands it a copy of the
 * image (or the image) in which every such vector is one output row's taps, or with half_step two
 * output rows' halves.
 */
#ifndef FASTCONV_GEMM_KERNELS_H
#define FASTCONV_GEMM_KERNELS_H

#include <stddef.h>

#include "fastconv.h"
#include "gemm_config.h"

#define FC_DECLARE_GEMM_UKERNEL(real, sfx)                                                        \
typedef void (*fc_gemm_ukernel_##sfx)(int m, fc_index k, real alpha, const real *a_pack,          \
                                      const real *b, fc_index ldb, real beta, real *c,            \
                                      fc_index ldc);                                              \
typedef void (*fc_gemm_edge_ukernel_##sfx)(int m, int n, fc_index k, real alpha,                  \
                                           const real *a_pack, const real *b, fc_index ldb,       \
                                           real beta, real *c, fc_index ldc);                     \
typedef void (*fc_gemm_indirect_ukernel_##sfx)(int m, int nv, fc_index k, const real *a_pack,     \
                                               const real *b, const fc_index *row_offsets,        \
                                               const fc_index *vec_offsets, fc_index half_step,   \
                                               real beta, real *c, fc_index ldc);                 \
/* What gemm.c needs for one SIMD level: the micro-kernel, its blocking parameters and the kernel  \
 * for a right edge of n < NR columns (NULL: gemm.c computes an NR-wide tile aside), and the       \
 * indirect micro-kernel (NULL at levels without one). */                                         \
typedef struct {                                                                                  \
    fc_gemm_ukernel_##sfx ukernel;                                                                \
    fc_gemm_blocks blocks;                                                                        \
    fc_gemm_edge_ukernel_##sfx edge_ukernel;                                                      \
    fc_gemm_indirect_ukernel_##sfx indirect_ukernel;                                              \
} fc_gemm_plan_##sfx;                                                                             \
/* The plan for `level` (a level this build cannot run falls back to the scalar plan). */         \
fc_gemm_plan_##sfx fc_gemm_plan_for_##sfx(fc_simd_level level);                                  \
/* Building blocks (gemm.c) for kernels that pack B themselves, as conv_im2col.c's forward does:   \
 * A packed once for every KC step (layout: gemm.c, fc_gemm_pack_a_all; caller allocates          \
 * fc_gemm_packed_a_size elements, 64-byte aligned), and one packed B micro-panel (KC x NR rows,    \
 * n <= NR valid columns) times m rows of a packed A block: C (m x n, ldc) = beta C + alpha A B. */  \
void fc_gemm_pack_a_all_##sfx(const fc_gemm_plan_##sfx *plan, const real *A, fc_index rs_a,       \
                              fc_index cs_a, fc_index M, fc_index K, real *a_all);               \
void fc_gemm_multiply_panel_##sfx(const fc_gemm_plan_##sfx *plan, fc_index m, fc_index n,         \
                                  fc_index kc, real alpha, const real *a_block,                  \
                                  const real *b_panel, real beta, real *c, fc_index ldc);

FC_DECLARE_GEMM_UKERNEL(float, f32)
FC_DECLARE_GEMM_UKERNEL(double, f64)

/* Scratch for packed operands: 64-byte aligned (the micro-kernels' aligned loads), free() releases it. */
void *fc_gemm_alloc(size_t bytes);

/* Elements of A packed for every KC step: M rounded up to whole MR micro-panels, times K. */
static inline fc_index fc_gemm_packed_a_size(const fc_gemm_blocks *blocks, fc_index M, fc_index K)
{
    return (M + blocks->mr - 1) / blocks->mr * blocks->mr * K;
}

#endif /* FASTCONV_GEMM_KERNELS_H */
