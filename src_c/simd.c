/*
 * simd.c -- which SIMD level and how many threads this build and this CPU offer.
 *
 * The package is compiled without -march, so the AVX2 and AVX-512 code paths are always present
 * (GCC target attributes, from simd_targets.h) and the CPU is asked at run time, through cpuid, which
 * of them it can run: a level needs every feature its kernels are compiled for. Nothing is cached:
 * __builtin_cpu_supports reads data that __builtin_cpu_init fills once, so asking again is cheap and
 * no global state of ours is needed.
 */
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "fastconv.h"
#include "simd_targets.h"

/* The highest level whose every compiled-for feature (simd_targets.h) the CPU has. */
fc_simd_level fc_simd_best(void)
{
#if FC_HAVE_X86
    __builtin_cpu_init();
    if (FC_CPU_HAS_AVX512())
        return FC_SIMD_AVX512;
    if (FC_CPU_HAS_AVX2())
        return FC_SIMD_AVX2;
#endif
    return FC_SIMD_SCALAR;
}

int fc_simd_resolve(const char *request)
{
    fc_simd_level best = fc_simd_best();
    fc_simd_level wanted;

    if (request == NULL || request[0] == '\0')
        return (int)best;
    if (strcmp(request, "scalar") == 0)
        wanted = FC_SIMD_SCALAR;
    else if (strcmp(request, "avx2") == 0)
        wanted = FC_SIMD_AVX2;
    else if (strcmp(request, "avx512") == 0)
        wanted = FC_SIMD_AVX512;
    else
        return -1;
    return (int)(wanted > best ? best : wanted);
}

const char *fc_simd_name(fc_simd_level level)
{
    switch (level) {
    case FC_SIMD_SCALAR: return "scalar";
    case FC_SIMD_AVX2: return "avx2";
    case FC_SIMD_AVX512: return "avx512";
    }
    return "unknown";
}

int fc_have_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fc_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
