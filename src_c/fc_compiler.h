/*
 * fc_compiler.h -- compiler-specific attributes the kernels use, and the OpenMP thread queries, with
 * fallbacks for a compiler without them.
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

/* `ptr`, with its value hidden from the optimiser: a register-blocked kernel that reads fixed offsets
 * from it each iteration then keeps them as offsets of one base register, where GCC otherwise carries
 * loaded inputs over to the next iteration (predictive commoning) or gives each offset a register of
 * its own (induction variables), both of which spill once a block has 20 or more accumulators. */
#if defined(__GNUC__)
#define FC_OPAQUE_PTR(ptr) __asm__("" : "+r"(ptr))
#else
#define FC_OPAQUE_PTR(ptr) ((void)0)
#endif

/* This thread's number in the enclosing parallel region, and the region's team size (0 and 1 outside one,
 * or built without OpenMP). */
#ifdef _OPENMP
#include <omp.h>
static inline int fc_thread_id(void) { return omp_get_thread_num(); }
static inline int fc_team_size(void) { return omp_get_num_threads(); }
#else
static inline int fc_thread_id(void) { return 0; }
static inline int fc_team_size(void) { return 1; }
#endif

#endif /* FASTCONV_FC_COMPILER_H */
