/*
 * fc_compiler.h -- compiler-specific attributes the kernels use, with empty fallbacks.
 */
#ifndef FASTCONV_FC_COMPILER_H
#define FASTCONV_FC_COMPILER_H

/* Keep short copy / fill loops as loops: GCC otherwise turns them into memcpy / memset calls, whose
 * call cost exceeds the copy for runs of one micro-panel row (16 floats on AVX2): measured 18-30% of
 * the fused im2col forward, and most of a small GEMM's B packing (see gemm.c, pack_b_panel). */
#if defined(__GNUC__) && !defined(__clang__)
#define FC_INLINE_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define FC_INLINE_LOOPS
#endif

#endif /* FASTCONV_FC_COMPILER_H */
