/*
 * gemm_kernels.h -- the GEMM micro-kernels (gemm_kernels.c) as gemm.c sees them.
 *
 * A micro-kernel updates one tile of C, m rows (1 <= m <= MR) by NR columns, from packed operands:
 *
 *   C[i][j] = alpha * sum_{p < k} a_pack[p*MR + i] * b_pack[p*NR + j]  +  beta * C[i][j]
 *
 * for i < m, j < NR, C[i][j] at c[i*ldc + j]. a_pack is one packed A micro-panel (MR x k, column by
 * column), b_pack one packed B micro-panel (k x NR, row by row), both 64-byte aligned. k may be 0.
 * beta == 0 means C is write-only (never read, so NaN in C does not leak into the result).
 * Rows beyond m are neither computed nor stored; columns are always NR (gemm.c handles a right
 * edge through a local NR-wide tile). Each C element is a sum over p in increasing order, the same
 * whatever m is, so how tiles are cut never changes a result.
 */
#ifndef FASTCONV_GEMM_KERNELS_H
#define FASTCONV_GEMM_KERNELS_H

#include "fastconv.h"
#include "gemm_config.h"

#define FC_DECLARE_GEMM_UKERNEL(real, sfx)                                                        \
typedef void (*fc_gemm_ukernel_##sfx)(int m, fc_index k, real alpha, const real *a_pack,          \
                                      const real *b_pack, real beta, real *c, fc_index ldc);      \
/* What gemm.c needs for one SIMD level: the micro-kernel and its blocking parameters. */          \
typedef struct {                                                                                  \
    fc_gemm_ukernel_##sfx ukernel;                                                                \
    fc_gemm_blocks blocks;                                                                        \
} fc_gemm_plan_##sfx;                                                                             \
/* The plan for `level` (a level this build cannot run falls back to the scalar plan). */         \
fc_gemm_plan_##sfx fc_gemm_plan_for_##sfx(fc_simd_level level);

FC_DECLARE_GEMM_UKERNEL(float, f32)
FC_DECLARE_GEMM_UKERNEL(double, f64)

#endif /* FASTCONV_GEMM_KERNELS_H */
