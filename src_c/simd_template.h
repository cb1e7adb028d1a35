/*
 * simd_template.h -- write a SIMD kernel once, get it for every level (AVX-512, AVX2) and element type.
 *
 * A source file includes itself through this header, in the manner of fc_template.h:
 *
 *     // conv_direct_kvec.c
 *     #if !defined(FC_TEMPLATE_PASS)
 *     #define FC_SIMD_TEMPLATE_FILE "conv_direct_kvec.c"
 *     #include "simd_template.h"     // the passes below, for float and for double
 *     #elif !defined(FC_VEC_LEVEL)
 *     ... once per type (`real`, FC_FN set): e.g. the kernels' declarations ...
 *     #else
 *     ... once per type and level: code written with simd_vec.h's fcv_* vocabulary and FCV_FN ...
 *     #endif
 *
 * Where there are no x86 levels (FC_HAVE_X86 0) only the per-type pass runs.
 */
#ifndef FC_TEMPLATE_PASS
#define FC_TEMPLATE_FILE "simd_template.h"
#include "fc_template.h"
#else
#include "simd_targets.h"
#include FC_SIMD_TEMPLATE_FILE
#if FC_HAVE_X86
#define FC_VEC_LEVEL FC_VEC_AVX512
#include "simd_vec.h"
#include FC_SIMD_TEMPLATE_FILE
#undef FC_VEC_LEVEL
#define FC_VEC_LEVEL FC_VEC_AVX2
#include "simd_vec.h"
#include FC_SIMD_TEMPLATE_FILE
#undef FC_VEC_LEVEL
#include "simd_vec.h"   /* (FC_VEC_LEVEL undefined: drops the vocabulary) */
#endif
#endif
