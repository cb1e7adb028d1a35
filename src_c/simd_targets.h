/*
 * simd_targets.h -- the one list of x86 features each SIMD level is compiled for and checked on.
 *
 * The kernels carry GCC target attributes (no -march), so the CPU is asked at run time which levels
 * it runs. Both come from the lists below: FC_TARGET_* (the attribute on every kernel of a level) and
 * FC_CPU_HAS_* (simd.c's cpuid check), so a level is never picked on a CPU that lacks one of the
 * features its kernels were compiled with (an AVX-512F CPU without VL/BW/DQ runs the AVX2 kernels).
 */
#ifndef FASTCONV_SIMD_TARGETS_H
#define FASTCONV_SIMD_TARGETS_H

#if defined(__x86_64__) || defined(__i386__)
#define FC_HAVE_X86 1
#else
#define FC_HAVE_X86 0
#endif

/* The features of each level: first(f) for the first, next(f) for each further one. */
#define FC_FEATURES_AVX2(first, next) first("avx2") next("fma")
#define FC_FEATURES_AVX512(first, next) first("avx512f") next("avx512vl") next("avx512bw") next("avx512dq")

/* "avx2,fma": a list as one string literal (adjacent literals are joined before the attribute is read). */
#define FC_FEATURE_STRING_FIRST(f) f
#define FC_FEATURE_STRING_NEXT(f) "," f
#define FC_TARGET_STRING(features) features(FC_FEATURE_STRING_FIRST, FC_FEATURE_STRING_NEXT)
#define FC_TARGET_AVX2 __attribute__((target(FC_TARGET_STRING(FC_FEATURES_AVX2))))
#define FC_TARGET_AVX512 __attribute__((target(FC_TARGET_STRING(FC_FEATURES_AVX512))))

/* 1 if this CPU has every feature of the list (x86 only; call __builtin_cpu_init first). */
#define FC_CPU_SUPPORTS_FIRST(f) __builtin_cpu_supports(f)
#define FC_CPU_SUPPORTS_NEXT(f) && __builtin_cpu_supports(f)
#define FC_CPU_HAS(features) (features(FC_CPU_SUPPORTS_FIRST, FC_CPU_SUPPORTS_NEXT))
#define FC_CPU_HAS_AVX2() FC_CPU_HAS(FC_FEATURES_AVX2)
#define FC_CPU_HAS_AVX512() FC_CPU_HAS(FC_FEATURES_AVX512)

#endif /* FASTCONV_SIMD_TARGETS_H */
