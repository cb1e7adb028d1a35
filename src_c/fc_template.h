/*
 * fc_template.h -- write a kernel once, get it for float and double.
 *
 * A source file that holds type-generic code includes itself twice through this header:
 *
 *     // im2col.c
 *     #ifndef FC_TEMPLATE_PASS
 *     #define FC_TEMPLATE_FILE "im2col.c"
 *     #include "fc_template.h"          // includes im2col.c once with real=float, once with double
 *     #else
 *     ... code written with `real` and FC_FN(name) ...
 *     #endif
 *
 * Inside a pass: `real` is the element type, FC_FN(name) appends the suffix (name_f32 / name_f64),
 * FC_IS_F32 is 1 or 0 (for the few places, such as SIMD widths, that must know the type), FC_DTYPE the
 * fc_dtype of `real` (for the type-independent functions, such as the plans, that take one).
 */
#include "fastconv.h"

#define FC_TEMPLATE_PASS
#define FC_CAT_(a, b) a##_##b
#define FC_CAT(a, b) FC_CAT_(a, b)
#define FC_FN(name) FC_CAT(name, FC_SUFFIX)

#define real float
#define FC_SUFFIX f32
#define FC_IS_F32 1
#define FC_DTYPE FC_DTYPE_F32
#include FC_TEMPLATE_FILE
#undef real
#undef FC_SUFFIX
#undef FC_IS_F32
#undef FC_DTYPE

#define real double
#define FC_SUFFIX f64
#define FC_IS_F32 0
#define FC_DTYPE FC_DTYPE_F64
#include FC_TEMPLATE_FILE
#undef real
#undef FC_SUFFIX
#undef FC_IS_F32
#undef FC_DTYPE

#undef FC_TEMPLATE_PASS
