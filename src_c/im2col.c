/*
 * im2col.c -- unfold an image into the column matrix of a convolution, and fold it back.
 *
 * For a kernel offset (r, s), output position (oh, ow) reads input (ih, iw) with
 *     ih = oh*stride_h - pad_h + r,    iw = ow*stride_w - pad_w + s.
 * Row (c*R + r)*S + s of the column matrix holds, for every output position, the input value that
 * kernel tap (c, r, s) multiplies, so that convolution becomes  Y (K x P) = W (K x CRS) * col (CRS x P).
 *
 * Speed: instead of testing "is (ih, iw) inside the image?" for every element, each (r, s) row
 * computes once which output rows oh and which output columns ow read real input (a contiguous
 * range of each, see fc_valid_output_range). Outside those ranges the row is zero; inside, an output
 * row is a strided copy of an input row -- a plain memcpy when stride_w == 1.
 *
 * col2im is the adjoint (used for the input gradient): it ADDS each column value back to the input
 * element it was read from; values that were read from padding are dropped.
 */
#ifndef FC_TEMPLATE_PASS

#include <stdlib.h>
#include <string.h>
#include "fc_compiler.h"
#include "im2col.h"
#include "simd_targets.h"

/* The copy loops are inlined into each SIMD level's copy of the panel builder, which compiles them. */
#define FC_ALWAYS_INLINE __attribute__((always_inline))

/* Columns fc_im2col_panel handles in one pass (the widest micro-panel: 64 floats on AVX-512). */
#define FC_IM2COL_PANEL_COLS 64

/* The output positions o in [0, out_len) whose input coordinate o*stride - pad + offset lies in
 * [0, in_len), as the half-open range [*lo, *hi) (lo == hi when there is none). */
static inline void fc_valid_output_range(fc_index out_len, fc_index in_len, fc_index stride,
                                         fc_index pad, fc_index offset, fc_index *lo, fc_index *hi)
{
    fc_index first_needed = pad - offset;            /* o*stride >= pad - offset   */
    fc_index last_allowed = in_len - 1 + pad - offset; /* o*stride <= in_len-1+pad-offset */
    fc_index low = first_needed > 0 ? (first_needed + stride - 1) / stride : 0;
    fc_index high = last_allowed >= 0 ? last_allowed / stride + 1 : 0;
    if (high > out_len)
        high = out_len;
    if (low > high)
        low = high;
    *lo = low;
    *hi = high;
}

int fc_im2col_ranges_init(fc_im2col_ranges *ranges, const fc_conv_shape *shape, int implicit)
{
    fc_index *table = malloc((size_t)(2 * (shape->kernel_h + shape->kernel_w)) * sizeof(fc_index));
    ranges->shape = shape;
    ranges->oh_lo = table;
    if (table == NULL)
        return FC_ENOMEM;
    ranges->oh_hi = table + shape->kernel_h;
    ranges->ow_lo = table + 2 * shape->kernel_h;
    ranges->ow_hi = ranges->ow_lo + shape->kernel_w;
    ranges->split_columns = shape->stride_w == 2;
    ranges->copy_image = ranges->split_columns || (implicit && (shape->pad_h > 0 || shape->pad_w > 0));
    ranges->copy_h = shape->in_h + 2 * shape->pad_h;
    ranges->copy_w = shape->in_w + 2 * shape->pad_w;
    /* + room for the vector writes past the last row (fc_im2col_copy_image) */
    ranges->copy_size = shape->in_channels * ranges->copy_h * ranges->copy_w + 64;
    for (fc_index r = 0; r < shape->kernel_h; r++)
        fc_valid_output_range(shape->out_h, shape->in_h, shape->stride_h, shape->pad_h, r,
                              &ranges->oh_lo[r], &ranges->oh_hi[r]);
    for (fc_index s = 0; s < shape->kernel_w; s++)
        fc_valid_output_range(shape->out_w, shape->in_w, shape->stride_w, shape->pad_w, s,
                              &ranges->ow_lo[s], &ranges->ow_hi[s]);
    return FC_OK;
}

void fc_im2col_ranges_free(fc_im2col_ranges *ranges)
{
    free(ranges->oh_lo);
    ranges->oh_lo = NULL;
}

/* Where column j of a padded row sits in a row of fc_im2col_copy_image's layout. */
static inline fc_index fc_im2col_copy_column(const fc_im2col_ranges *ranges, fc_index j)
{
    if (!ranges->split_columns)
        return j;
    return j % 2 == 0 ? j / 2 : (ranges->copy_w + 1) / 2 + j / 2;
}

void fc_im2col_copy_row_offsets(const fc_im2col_ranges *ranges, fc_index *row_offsets)
{
    const fc_conv_shape *sh = ranges->shape;
    const fc_index plane = ranges->copy_h * ranges->copy_w;
    fc_index p = 0;
    for (fc_index c = 0; c < sh->in_channels; c++)
        for (fc_index r = 0; r < sh->kernel_h; r++)
            for (fc_index s = 0; s < sh->kernel_w; s++)
                row_offsets[p++] = c * plane + r * ranges->copy_w + fc_im2col_copy_column(ranges, s);
}

fc_index fc_im2col_copy_position(const fc_im2col_ranges *ranges, fc_index j)
{
    const fc_conv_shape *sh = ranges->shape;
    return j / sh->out_w * sh->stride_h * ranges->copy_w + j % sh->out_w;
}

/* Stride-2 gathers (every stride-2 convolution's im2col) as shuffles of 16-byte vectors: SSE2 or NEON
 * on every 64-bit target, so no run-time dispatch. GCC >= 12 and clang have the builtin. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define FC_IM2COL_SHUFFLE 1
#endif
#endif

#ifdef FC_IM2COL_SHUFFLE
/* The even and odd lanes of two vectors of n lanes each (__builtin_shufflevector's index lists). */
#define FC_IM2COL_EVENS_4 0, 2, 4, 6
#define FC_IM2COL_ODDS_4 1, 3, 5, 7
#define FC_IM2COL_EVENS_8 0, 2, 4, 6, 8, 10, 12, 14
#define FC_IM2COL_ODDS_8 1, 3, 5, 7, 9, 11, 13, 15
#define FC_IM2COL_EVENS_16 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30
#define FC_IM2COL_ODDS_16 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31
#define FC_IM2COL_PICK_(lo, hi, list) __builtin_shufflevector(lo, hi, list)
#define FC_IM2COL_PICK2(lo, hi, which, lanes) FC_IM2COL_PICK_(lo, hi, FC_IM2COL_##which##_##lanes)
#define FC_IM2COL_PICK(lo, hi, which, lanes) FC_IM2COL_PICK2(lo, hi, which, lanes)
#endif

#define FC_TEMPLATE_FILE "im2col.c"
#include "fc_template.h"

#else /* FC_TEMPLATE_PASS: type-generic code, `real` is float or double */

/* dst[q] = src[2q] for q < count, reading nothing outside src[0, 2*count - 1): a caller's last
 * element may end its array. Blocks of one vector of outputs pick the even lanes of two loads; the
 * last block is moved back to end at count (overlapping the one before, rewriting equal values) and
 * loads from one element earlier, picking odd lanes, so it stops at src[2*(count-1)]. Measured on the
 * strided shape's fused forward (1 thread, AVX2 EPYC, ms, best of 7): 6.5 with a scalar loop, 5.6. */
#ifdef FC_IM2COL_SHUFFLE
#if FC_IS_F32
typedef float FC_FN(im2col_wide) __attribute__((vector_size(32)));
typedef float FC_FN(im2col_vec) __attribute__((vector_size(16)));
#define FC_IM2COL_EVENS(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6)
#define FC_IM2COL_ODDS(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7)
#else
typedef double FC_FN(im2col_wide) __attribute__((vector_size(32)));
typedef double FC_FN(im2col_vec) __attribute__((vector_size(16)));
#define FC_IM2COL_EVENS(a, b) __builtin_shufflevector(a, b, 0, 2)
#define FC_IM2COL_ODDS(a, b) __builtin_shufflevector(a, b, 1, 3)
#endif

static inline FC_ALWAYS_INLINE FC_INLINE_LOOPS void
FC_FN(copy_stride2)(real *restrict dst, const real *restrict src, fc_index count)
{
    typedef FC_FN(im2col_vec) vec;
    const fc_index lanes = (fc_index)(sizeof(vec) / sizeof(real));
    vec lo, hi, picked;
    if (count <= lanes) {
        for (fc_index q = 0; q < count; q++)
            dst[q] = src[2 * q];
        return;
    }
    for (fc_index q = 0; q + lanes < count; q += lanes) {   /* reads up to src[2*count - 3] */
        memcpy(&lo, src + 2 * q, sizeof(vec));
        memcpy(&hi, src + 2 * q + lanes, sizeof(vec));
        picked = FC_IM2COL_EVENS(lo, hi);
        memcpy(dst + q, &picked, sizeof(vec));
    }
    const fc_index last = count - lanes;                     /* >= 1, so src + 2*last - 1 >= src */
    memcpy(&lo, src + 2 * last - 1, sizeof(vec));
    memcpy(&hi, src + 2 * last - 1 + lanes, sizeof(vec));
    picked = FC_IM2COL_ODDS(lo, hi);
    memcpy(dst + last, &picked, sizeof(vec));
}
#undef FC_IM2COL_EVENS
#undef FC_IM2COL_ODDS

/* dst[q] = src[q] for q < count, in whole vectors, the last one moved back to end at count (as in
 * copy_stride2): a loop with a run-time trip count spends more on its tail than on a run of 8. `vec`
 * is 16 bytes, or 32 with `wide` (the AVX2 build: one instruction each; lowered to SSE, 32-byte vectors
 * were slower on runs of 8). */
#define FC_IM2COL_COPY_VECTORS(vec, dst, src, count)                                                \
    do {                                                                                          \
        const fc_index lanes_ = (fc_index)(sizeof(vec) / sizeof(real));                           \
        vec v_;                                                                                   \
        for (fc_index q_ = 0; q_ + lanes_ < (count); q_ += lanes_) {                              \
            memcpy(&v_, (src) + q_, sizeof(vec));                                                 \
            memcpy((dst) + q_, &v_, sizeof(vec));                                                 \
        }                                                                                         \
        memcpy(&v_, (src) + (count) - lanes_, sizeof(vec));                                       \
        memcpy((dst) + (count) - lanes_, &v_, sizeof(vec));                                       \
    } while (0)

static inline FC_ALWAYS_INLINE FC_INLINE_LOOPS void
FC_FN(copy_stride1)(real *restrict dst, const real *restrict src, fc_index count, const int wide)
{
    if (wide && count * sizeof(real) >= sizeof(FC_FN(im2col_wide)))
        FC_IM2COL_COPY_VECTORS(FC_FN(im2col_wide), dst, src, count);
    else if (count * sizeof(real) >= sizeof(FC_FN(im2col_vec)))
        FC_IM2COL_COPY_VECTORS(FC_FN(im2col_vec), dst, src, count);
    else
        for (fc_index q = 0; q < count; q++)
            dst[q] = src[q];
}
#else
static inline void FC_FN(copy_stride2)(real *restrict dst, const real *restrict src, fc_index count)
{
    for (fc_index q = 0; q < count; q++)
        dst[q] = src[2 * q];
}

static inline void FC_FN(copy_stride1)(real *restrict dst, const real *restrict src, fc_index count,
                                       const int wide)
{
    (void)wide;
    for (fc_index q = 0; q < count; q++)
        dst[q] = src[q];
}
#endif

/* dst[q] = src[q * stride] for q < count (`wide`: see copy_stride1). */
static inline FC_ALWAYS_INLINE FC_INLINE_LOOPS void
FC_FN(copy_strided)(real *restrict dst, const real *restrict src, fc_index count, fc_index stride,
                    const int wide)
{
    if (stride == 1) {
        FC_FN(copy_stride1)(dst, src, count, wide);
    } else if (stride == 2) {
        FC_FN(copy_stride2)(dst, src, count);
    } else {
        for (fc_index q = 0; q < count; q++)
            dst[q] = src[q * stride];
    }
}

/* One output row of one column-matrix row: dst[0, out_w) with zeros outside [ow_lo, ow_hi) and
 * dst[ow] = src[(ow - ow_lo) * stride_w] inside. */
static inline void FC_FN(im2col_row)(real *dst, const real *src, fc_index ow_lo, fc_index ow_hi,
                                     fc_index out_w, fc_index stride_w)
{
    fc_index count = ow_hi - ow_lo;
    if (ow_lo > 0)
        memset(dst, 0, (size_t)ow_lo * sizeof(real));
    if (stride_w == 1)
        memcpy(dst + ow_lo, src, (size_t)count * sizeof(real));
    else
        FC_FN(copy_strided)(dst + ow_lo, src, count, stride_w, 0);
    if (ow_hi < out_w)
        memset(dst + ow_hi, 0, (size_t)(out_w - ow_hi) * sizeof(real));
}

void FC_FN(fc_im2col_plane)(const fc_conv_shape *shape, const real *x_plane, real *col_rows,
                            fc_index ld_col)
{
    const fc_index in_h = shape->in_h, in_w = shape->in_w;
    const fc_index out_h = shape->out_h, out_w = shape->out_w;
    const fc_index kernel_h = shape->kernel_h, kernel_w = shape->kernel_w;
    const fc_index stride_h = shape->stride_h, stride_w = shape->stride_w;
    const fc_index pad_h = shape->pad_h, pad_w = shape->pad_w;

    for (fc_index r = 0; r < kernel_h; r++) {
        fc_index oh_lo, oh_hi;
        fc_valid_output_range(out_h, in_h, stride_h, pad_h, r, &oh_lo, &oh_hi);
        for (fc_index s = 0; s < kernel_w; s++) {
            fc_index ow_lo, ow_hi;
            fc_valid_output_range(out_w, in_w, stride_w, pad_w, s, &ow_lo, &ow_hi);
            real *row = col_rows + (r * kernel_w + s) * ld_col;

            if (ow_lo == ow_hi) {   /* this tap reads only padding, whatever the output row */
                memset(row, 0, (size_t)(out_h * out_w) * sizeof(real));
                continue;
            }
            /* Output rows above/below the image read only padding. */
            memset(row, 0, (size_t)(oh_lo * out_w) * sizeof(real));
            memset(row + oh_hi * out_w, 0, (size_t)((out_h - oh_hi) * out_w) * sizeof(real));
            for (fc_index oh = oh_lo; oh < oh_hi; oh++) {
                fc_index ih = oh * stride_h - pad_h + r;
                fc_index iw_first = ow_lo * stride_w - pad_w + s;
                FC_FN(im2col_row)(row + oh * out_w, x_plane + ih * in_w + iw_first,
                                  ow_lo, ow_hi, out_w, stride_w);
            }
        }
    }
}

/* One output row's share of a panel's columns: `count` columns from output column ow of output row
 * oh, at dst_col in the panel. Every row of a panel crosses the same segments. */
typedef struct {
    fc_index oh, ow, count, dst_col;
} FC_FN(im2col_seg);

/* The segments of the panel columns [col0, col0 + cols), cols <= FC_IM2COL_PANEL_COLS. */
static int FC_FN(panel_segments)(const fc_conv_shape *sh, fc_index col0, fc_index cols,
                                 FC_FN(im2col_seg) *segs)
{
    fc_index oh = col0 / sh->out_w, ow = col0 % sh->out_w;
    int n = 0;
    for (fc_index j = 0; j < cols; n++) {
        const fc_index count = cols - j < sh->out_w - ow ? cols - j : sh->out_w - ow;
        segs[n] = (FC_FN(im2col_seg)){ oh, ow, count, j };
        j += count;
        ow = 0;
        oh++;
    }
    return n;
}

/* What one kernel tap (r, s) reads for one segment, the same in every channel plane: the segment's
 * columns [lo, hi) read the plane from element `src` on (stride_w apart), the others read padding. */
typedef struct {
    fc_index src, lo, hi;
} FC_FN(im2col_run);

/* Where the values of a row go in the split layout of its padded row (`width` wide, `evens` of them
 * even): the row's even columns form one run of (in_w + 1) / 2, its odd ones a run of in_w / 2, and
 * each lands in the padded row's evens or odds (which, by the parity of pad), after pad / 2 or
 * (pad + 1) / 2 zeros. The other positions of the row, pad * 2 of them, hold zeros: `zeros` lists
 * them (up to FC_IM2COL_SPLIT_MAX_ZEROS; with more, zeros_count is -1). */
#define FC_IM2COL_SPLIT_MAX_ZEROS 16
typedef struct {
    fc_index evens, evens_at, odds_at;
    int zeros_count;
    fc_index zeros[FC_IM2COL_SPLIT_MAX_ZEROS];
} FC_FN(split_plan);

static FC_FN(split_plan) FC_FN(split_plan_of)(fc_index in_w, fc_index pad, fc_index width)
{
    FC_FN(split_plan) plan = { (width + 1) / 2, 0, 0, 0, { 0 } };
    plan.evens_at = (pad % 2 == 0 ? 0 : plan.evens) + pad / 2;
    plan.odds_at = (pad % 2 == 0 ? plan.evens : 0) + (pad + 1) / 2;
    for (fc_index j = 0; j < width && plan.zeros_count >= 0; j++) {   /* padded column j */
        if (j >= pad && j < pad + in_w)
            continue;
        if (plan.zeros_count == FC_IM2COL_SPLIT_MAX_ZEROS)
            plan.zeros_count = -1;
        else
            plan.zeros[plan.zeros_count++] = j % 2 == 0 ? j / 2 : plan.evens + j / 2;
    }
    return plan;
}

/* The zeros of a split row: every position of [0, width) outside the two runs. */
static inline FC_ALWAYS_INLINE void FC_FN(split_zeros)(const FC_FN(split_plan) *plan, fc_index in_w,
                                                       fc_index pad, fc_index width, real *to)
{
    if (plan->zeros_count >= 0) {
        for (int z = 0; z < plan->zeros_count; z++)
            to[plan->zeros[z]] = 0;
        return;
    }
    for (fc_index j = 0; j < width; j++)
        if (j < pad || j >= pad + in_w)
            to[j % 2 == 0 ? j / 2 : plan->evens + j / 2] = 0;
}

/* Rows [0, rows) of x_rows (in_w each) into the split layout of rows `width` wide, ld_out apart:
 * plain loops, which the compiler vectorizes (a stride-2 load is two loads and a shuffle). */
static FC_INLINE_LOOPS void
FC_FN(split_rows_portable)(const FC_FN(split_plan) *plan, const real *x_rows, fc_index rows, fc_index in_w,
                           fc_index pad, fc_index width, fc_index ld_out, real *out)
{
    for (fc_index y = 0; y < rows; y++) {
        const real *row = x_rows + y * in_w;
        real *evens = out + y * ld_out + plan->evens_at, *odds = out + y * ld_out + plan->odds_at;
        for (fc_index j = 0; j < (in_w + 1) / 2; j++)
            evens[j] = row[2 * j];
        for (fc_index j = 0; j < in_w / 2; j++)
            odds[j] = row[2 * j + 1];
        FC_FN(split_zeros)(plan, in_w, pad, width, out + y * ld_out);
    }
}

#if FC_HAVE_X86 && defined(FC_IM2COL_SHUFFLE)
/* split_rows_portable with explicit vectors: a row's even and odd runs are picked from pairs of vectors
 * in two passes (reading past the row's end into the next, masked only where x_rows has `avail`
 * elements), the run at the lower address first. A pass writes whole vectors, up to a vector past its
 * run: the first run's excess is overwritten by the second, the second's by the next row, and the
 * zeros come last (the caller leaves room after the last row). */
#define FC_IM2COL_SPLIT_ROWS_BODY                                                                 \
{                                                                                                 \
    const int odds_first = plan->odds_at < plan->evens_at;                                        \
    for (fc_index y = 0; y < rows; y++) {                                                         \
        const real *row = x_rows + y * in_w;                                                      \
        real *to = out + y * ld_out;                                                              \
        for (int pass = 0; pass < 2; pass++) {                                                    \
            const int odds = pass ^ odds_first;                                                   \
            real *run = to + (odds ? plan->odds_at : plan->evens_at);                             \
            for (fc_index j = 0; j < in_w; j += 2 * FCV_LANES) {                                  \
                fcv_vec lo, hi;                                                                   \
                if (y * in_w + j + 2 * FCV_LANES <= avail) {                                      \
                    lo = fcv_loadu(row + j);                                                      \
                    hi = fcv_loadu(row + j + FCV_LANES);                                          \
                } else {                                                                          \
                    lo = fcv_load_mask(row + j, FCV_FN(lane_mask)(0, in_w - j));                  \
                    hi = fcv_load_mask(row + j + FCV_LANES,                                       \
                                       FCV_FN(lane_mask)(0, in_w - j - FCV_LANES));               \
                }                                                                                 \
                fcv_storeu(run + j / 2, odds ? FC_IM2COL_PICK(lo, hi, ODDS, FCV_LANES)            \
                                             : FC_IM2COL_PICK(lo, hi, EVENS, FCV_LANES));         \
            }                                                                                     \
        }                                                                                         \
        FC_FN(split_zeros)(plan, in_w, pad, width, to);                                           \
    }                                                                                             \
}

/* split_rows at the level simd_vec.h was last included for: the signature once, the body above. */
#define FC_IM2COL_SPLIT_ROWS_AT_LEVEL                                                                    \
    static FCV_TARGET FC_INLINE_LOOPS void FCV_FN(split_rows)(const FC_FN(split_plan) *plan,            \
        const real *restrict x_rows, fc_index avail, fc_index rows, fc_index in_w, fc_index pad,        \
        fc_index width, fc_index ld_out, real *restrict out)                                            \
    FC_IM2COL_SPLIT_ROWS_BODY
#define FC_VEC_LEVEL FC_VEC_AVX2
#include "simd_vec.h"
FC_IM2COL_SPLIT_ROWS_AT_LEVEL
#undef FC_VEC_LEVEL
#define FC_VEC_LEVEL FC_VEC_AVX512
#include "simd_vec.h"
FC_IM2COL_SPLIT_ROWS_AT_LEVEL

/* The lanes of a vector of dst from dst[2 ow0] on that run [lo, hi) adds to: the even ones (`odd` 0) or the
 * odd ones of the elements 2 ow, ow in [lo, hi). */
static inline FCV_TARGET fcv_mask FCV_FN(stride2_lanes)(fc_index lo, fc_index hi, fc_index ow0, int odd)
{
    const unsigned even_lanes = FCV_LANES == 16 ? 0x5555u : 0x55u;
    return (fcv_mask)(FCV_FN(lane_mask)(2 * (lo - ow0), 2 * (hi - ow0)) & (even_lanes << odd));
}

/* For `rows` rows (dst rows dst_step apart, a's and b's src_step apart): dst[2 ow] += a[ow] for ow in
 * [a_lo, a_hi) and dst[2 ow + 1] += b[ow] for ow in [b_lo, b_hi) (b's range may be empty). col2im's stride-2
 * runs of taps s and s + 1 of one kernel row add to the even and the odd columns of the same stretch of
 * x: half a vector of each, interleaved, then one masked add for both. The masks are the same for every
 * row, made once per column block. dst may point one element before a row (s - pad odd): that lane is
 * never touched, nor are lanes past the plane. */
static FCV_TARGET void FCV_FN(add_stride2_pair)(real *dst, fc_index dst_step, const real *a, const real *b,
                                               fc_index src_step, fc_index rows, fc_index a_lo, fc_index a_hi,
                                               fc_index b_lo, fc_index b_hi)
{
    enum { HALF = FCV_LANES / 2 };
    fc_index lo = a_lo < a_hi ? a_lo : b_lo, hi = a_lo < a_hi ? a_hi : b_hi;   /* the non-empty ranges' */
    if (a_lo < a_hi && b_lo < b_hi) {
        lo = a_lo < b_lo ? a_lo : b_lo;
        hi = a_hi > b_hi ? a_hi : b_hi;
    }
    for (fc_index ow0 = lo; ow0 < hi; ow0 += HALF) {
        const fcv_mask a_half = FCV_FN(lane_mask)(a_lo - ow0, a_hi - ow0);
        const fcv_mask b_half = FCV_FN(lane_mask)(b_lo - ow0, b_hi - ow0);
        const fcv_mask lanes = (fcv_mask)(FCV_FN(stride2_lanes)(a_lo, a_hi, ow0, 0)
                                          | FCV_FN(stride2_lanes)(b_lo, b_hi, ow0, 1));
        for (fc_index y = 0; y < rows; y++) {
            const fcv_vec pair = fcv_interleave_low(fcv_load_half_mask(a + y * src_step + ow0, a_half),
                                                    fcv_load_half_mask(b + y * src_step + ow0, b_half));
            real *to = dst + y * dst_step + 2 * ow0;
            fcv_store_mask(to, lanes, fcv_add(fcv_load_mask(to, lanes), pair));
        }
    }
}
#undef FC_VEC_LEVEL
#include "simd_vec.h"   /* (FC_VEC_LEVEL undefined: drops the vocabulary) */
#undef FC_IM2COL_SPLIT_ROWS_AT_LEVEL
#undef FC_IM2COL_SPLIT_ROWS_BODY
#endif

/* Rows [0, rows) of x_rows (in_w each; avail >= rows * in_w elements readable) into the split layout
 * of rows `width` wide, ld_out apart. */
static void FC_FN(split_rows)(fc_simd_level level, const FC_FN(split_plan) *plan, const real *x_rows,
                              fc_index avail, fc_index rows, fc_index in_w, fc_index pad, fc_index width,
                              fc_index ld_out, real *out)
{
#if FC_HAVE_X86 && defined(FC_IM2COL_SHUFFLE)
    if (level == FC_SIMD_AVX512) {
        FC_FN(split_rows_avx512)(plan, x_rows, avail, rows, in_w, pad, width, ld_out, out);
        return;
    }
    if (level == FC_SIMD_AVX2) {
        FC_FN(split_rows_avx2)(plan, x_rows, avail, rows, in_w, pad, width, ld_out, out);
        return;
    }
#endif
    (void)level;
    (void)avail;
    FC_FN(split_rows_portable)(plan, x_rows, rows, in_w, pad, width, ld_out, out);
}

/* Rows [0, rows) of x_rows (in_w each) into rows `width` wide, ld_out apart, `pad` zeros on either side. */
static void FC_FN(pad_rows)(const real *x_rows, fc_index rows, fc_index in_w, fc_index pad, fc_index width,
                            fc_index ld_out, real *out)
{
    for (fc_index y = 0; y < rows; y++) {
        real *to = out + y * ld_out;
        memset(to, 0, (size_t)pad * sizeof(real));
        memcpy(to + pad, x_rows + y * in_w, (size_t)in_w * sizeof(real));
        memset(to + pad + in_w, 0, (size_t)(width - pad - in_w) * sizeof(real));
    }
}

/* The image padded (zeros written out), with split_columns each row's even columns first, then its odd
 * ones: a tap's run (stride-2 included) becomes one contiguous copy with no padding to test, so the panel
 * builder copies whole runs, and an implicit GEMM reads them in place. Channel by channel: its top
 * padding rows, its rows, its bottom padding rows, in order (the vector passes of split_rows write past
 * a row's end into what comes next). */
void FC_FN(fc_im2col_copy_image)(fc_simd_level level, const fc_im2col_ranges *ranges,
                                 const real *x_image, real *out)
{
    const fc_conv_shape *sh = ranges->shape;
    const fc_index width = ranges->copy_w, height = ranges->copy_h, in_h = sh->in_h;
    const FC_FN(split_plan) plan = FC_FN(split_plan_of)(sh->in_w, sh->pad_w, width);
    for (fc_index c = 0; c < sh->in_channels; c++) {
        real *plane = out + c * height * width;
        const real *x_plane = x_image + c * in_h * sh->in_w;
        memset(plane, 0, (size_t)(sh->pad_h * width) * sizeof(real));
        if (ranges->split_columns)
            FC_FN(split_rows)(level, &plan, x_plane, (sh->in_channels - c) * in_h * sh->in_w, in_h, sh->in_w,
                              sh->pad_w, width, width, plane + sh->pad_h * width);
        else
            FC_FN(pad_rows)(x_plane, in_h, sh->in_w, sh->pad_w, width, width, plane + sh->pad_h * width);
        memset(plane + (sh->pad_h + in_h) * width, 0, (size_t)(sh->pad_h * width) * sizeof(real));
    }
}

static void FC_FN(tap_runs)(const fc_im2col_ranges *ranges, fc_index r, fc_index s,
                            const FC_FN(im2col_seg) *segs, int n_segs, FC_FN(im2col_run) *runs)
{
    const fc_conv_shape *sh = ranges->shape;
    if (ranges->copy_image) {   /* padding written out: every run is whole */
        for (int i = 0; i < n_segs; i++) {
            runs[i].lo = 0;
            runs[i].hi = segs[i].count;
            runs[i].src = (segs[i].oh * sh->stride_h + r) * ranges->copy_w
                          + fc_im2col_copy_column(ranges, segs[i].ow * sh->stride_w + s);
        }
        return;
    }
    for (int i = 0; i < n_segs; i++) {
        const fc_index ow = segs[i].ow, count = segs[i].count;
        fc_index lo = 0, hi = 0;
        if (segs[i].oh >= ranges->oh_lo[r] && segs[i].oh < ranges->oh_hi[r]) {
            lo = ranges->ow_lo[s] - ow;
            lo = lo < 0 ? 0 : lo > count ? count : lo;
            hi = ranges->ow_hi[s] - ow;
            hi = hi < lo ? lo : hi > count ? count : hi;
        }
        const fc_index iw = (ow + lo) * sh->stride_w - sh->pad_w + s;   /* used only when hi > lo */
        runs[i].lo = lo;
        runs[i].hi = hi;
        runs[i].src = (segs[i].oh * sh->stride_h - sh->pad_h + r) * sh->in_w + iw;
    }
}

/* to[c * ld_to, + one wide vector) = from[c * ld_from, + one wide vector) for c < rows. */
static inline FC_ALWAYS_INLINE void FC_FN(copy_vector_rows)(const real *from, fc_index ld_from, fc_index rows,
                                                           real *restrict to, fc_index ld_to)
{
    FC_FN(im2col_wide) v;
    for (fc_index c = 0; c < rows; c++) {
        memcpy(&v, from + c * ld_from, sizeof v);
        memcpy(to + c * ld_to, &v, sizeof v);
    }
}

/* One tap's panel rows in `channels` consecutive channels (rows ld_out apart, planes in_plane apart):
 * the same runs in every channel, so the loop goes segment by segment, each down all the channels,
 * with the run's length and bounds fixed in the inner loop. For a run of one vector (out_w 8 with f32
 * AVX2 copies) that loop is one load and one store per channel (runs are one micro-panel row at most,
 * too short for a memcpy/memset call: FC_INLINE_LOOPS). */
static inline FC_ALWAYS_INLINE FC_INLINE_LOOPS void
FC_FN(write_tap_rows)(const real *plane, fc_index in_plane, fc_index stride_w, fc_index channels,
                      const FC_FN(im2col_seg) *segs, const FC_FN(im2col_run) *runs, int n_segs,
                      real *restrict out, fc_index ld_out, const int wide)
{
    for (int i = 0; i < n_segs; i++) {
        const fc_index count = segs[i].count, lo = runs[i].lo, hi = runs[i].hi;
        const real *from = plane + runs[i].src;
        real *to = out + segs[i].dst_col;
        if (stride_w == 1 && lo == 0 && hi == count) {
            if (wide && count * sizeof(real) == sizeof(FC_FN(im2col_wide)))
                FC_FN(copy_vector_rows)(from, in_plane, channels, to, ld_out);
            else
                for (fc_index c = 0; c < channels; c++)
                    FC_FN(copy_stride1)(to + c * ld_out, from + c * in_plane, count, wide);
            continue;
        }
        for (fc_index c = 0; c < channels; c++) {
            real *row = to + c * ld_out;
            for (fc_index q = 0; q < lo; q++)
                row[q] = 0;
            if (hi > lo)
                FC_FN(copy_strided)(row + lo, from + c * in_plane, hi - lo, stride_w, wide);
            for (fc_index q = hi; q < count; q++)
                row[q] = 0;
        }
    }
}

/* Panel rows are column-matrix rows (c, r, s) in C order. They are filled tap by tap: a tap's runs
 * are worked out once per panel and serve every channel, so the per-row work is a few loads and the
 * copy (per-row range checks cost as much as the copy itself with 16-wide panels: strided forward,
 * 1 thread, 5.6 -> 5.0 ms). */
static inline FC_ALWAYS_INLINE FC_INLINE_LOOPS void
FC_FN(panel_body)(const fc_im2col_ranges *ranges, const real *x_image, fc_index row0, fc_index rows,
                  fc_index col0, fc_index cols, fc_index width, real *restrict panel, const int wide)
{
    const fc_conv_shape *sh = ranges->shape;
    const fc_index taps = sh->kernel_h * sh->kernel_w, row_end = row0 + rows;
    const fc_index in_plane = ranges->copy_image ? ranges->copy_h * ranges->copy_w : sh->in_h * sh->in_w;
    const fc_index stride_w = ranges->copy_image ? 1 : sh->stride_w;   /* of a run in x_image */
    FC_FN(im2col_seg) segs[FC_IM2COL_PANEL_COLS];
    FC_FN(im2col_run) runs[FC_IM2COL_PANEL_COLS];

    for (fc_index done = 0; done < cols; done += FC_IM2COL_PANEL_COLS) {  /* one pass for NR <= 64 */
        const fc_index piece = cols - done < FC_IM2COL_PANEL_COLS ? cols - done : FC_IM2COL_PANEL_COLS;
        const int n_segs = FC_FN(panel_segments)(sh, col0 + done, piece, segs);
        for (fc_index tap = 0; tap < taps && tap < row_end; tap++) {
            /* the channels c whose row c*taps + tap lies in [row0, row_end) */
            const fc_index c_lo = row0 > tap ? (row0 - tap + taps - 1) / taps : 0;
            const fc_index c_hi = (row_end - 1 - tap) / taps + 1;
            if (c_lo >= c_hi)
                continue;
            FC_FN(tap_runs)(ranges, tap / sh->kernel_w, tap % sh->kernel_w, segs, n_segs, runs);
            FC_FN(write_tap_rows)(x_image + c_lo * in_plane, in_plane, stride_w, c_hi - c_lo, segs,
                                  runs, n_segs, panel + (c_lo * taps + tap - row0) * width + done,
                                  taps * width, wide);
        }
    }
    for (fc_index p = 0; p < rows; p++)
        for (fc_index j = cols; j < width; j++)
            panel[p * width + j] = 0;
}

#if FC_HAVE_X86
/* The same code compiled for AVX2, for contiguous runs: its 32-byte copies in one instruction each
 * (panel building alone, vgg-ish, 1 thread: 3.3-5.6 -> 2.8-4.4 ms); with stride-2 shuffles it ran 10%
 * slower than the SSE2 build. */
static FC_TARGET_AVX2 FC_INLINE_LOOPS void
FC_FN(panel_avx2)(const fc_im2col_ranges *ranges, const real *x_image, fc_index row0, fc_index rows,
                  fc_index col0, fc_index cols, fc_index width, real *restrict panel)
{
    FC_FN(panel_body)(ranges, x_image, row0, rows, col0, cols, width, panel, 1);
}
#endif

FC_INLINE_LOOPS void FC_FN(fc_im2col_panel)(fc_simd_level level, const fc_im2col_ranges *ranges,
                                            const real *x_image, fc_index row0, fc_index rows,
                                            fc_index col0, fc_index cols, fc_index width,
                                            real *restrict panel)
{
#if FC_HAVE_X86
    const int contiguous_runs = ranges->shape->stride_w == 1 || ranges->split_columns;
    if ((level == FC_SIMD_AVX2 || level == FC_SIMD_AVX512) && contiguous_runs) {
        FC_FN(panel_avx2)(ranges, x_image, row0, rows, col0, cols, width, panel);
        return;
    }
#endif
    (void)level;
    FC_FN(panel_body)(ranges, x_image, row0, rows, col0, cols, width, panel, 0);
}

/* Tap (r, s)'s rows of col_rows added into x_plane: output rows [oh_lo, oh_hi), columns [ow_lo, ow_hi). */
static void FC_FN(col2im_tap)(const fc_conv_shape *shape, const real *row, fc_index r, fc_index s,
                              fc_index oh_lo, fc_index oh_hi, fc_index oh_begin, real *x_plane)
{
    const fc_index in_w = shape->in_w, out_w = shape->out_w, stride_w = shape->stride_w;
    fc_index ow_lo, ow_hi;
    fc_valid_output_range(out_w, in_w, stride_w, shape->pad_w, s, &ow_lo, &ow_hi);
    const fc_index count = ow_hi - ow_lo;
    if (count == 0)
        return;
    for (fc_index oh = oh_lo; oh < oh_hi; oh++) {
        fc_index ih = oh * shape->stride_h - shape->pad_h + r;
        fc_index iw_first = ow_lo * stride_w - shape->pad_w + s;
        real *dst = x_plane + ih * in_w + iw_first;
        const real *src = row + (oh - oh_begin) * out_w + ow_lo;
        if (stride_w == 1) {
            for (fc_index i = 0; i < count; i++)
                dst[i] += src[i];
        } else {
            for (fc_index i = 0; i < count; i++)
                dst[i * stride_w] += src[i];
        }
    }
}

#if FC_HAVE_X86 && defined(FC_IM2COL_SHUFFLE)
/* Taps (r, s) and (r, s + 1) (if s + 1 < kernel_w) of a stride_w 2 convolution at once, with AVX-512: they
 * add to the odd and the even columns of one stretch of x, so every x element still gets one addition
 * per tap, in the order of the taps. */
static void FC_FN(col2im_tap_pair)(const fc_conv_shape *shape, const real *row, fc_index ld_col, fc_index r,
                                   fc_index s, fc_index oh_lo, fc_index oh_hi, fc_index oh_begin, real *x_plane)
{
    const fc_index in_w = shape->in_w, out_w = shape->out_w;
    fc_index a_lo, a_hi, b_lo = 0, b_hi = 0;
    fc_valid_output_range(out_w, in_w, 2, shape->pad_w, s, &a_lo, &a_hi);
    if (s + 1 < shape->kernel_w)
        fc_valid_output_range(out_w, in_w, 2, shape->pad_w, s + 1, &b_lo, &b_hi);
    if (oh_hi <= oh_lo)
        return;
    const fc_index ih = oh_lo * shape->stride_h - shape->pad_h + r;
    const real *a = row + (oh_lo - oh_begin) * out_w;
    FC_FN(add_stride2_pair_avx512)(x_plane + ih * in_w + s - shape->pad_w, shape->stride_h * in_w, a,
                                   s + 1 < shape->kernel_w ? a + ld_col : a, out_w, oh_hi - oh_lo, a_lo, a_hi,
                                   b_lo, b_hi);
}
#endif

void FC_FN(fc_col2im_rows)(fc_simd_level level, const fc_conv_shape *shape, const real *col_rows,
                           fc_index ld_col, fc_index oh_begin, fc_index oh_end, real *x_plane)
{
    const fc_index kernel_w = shape->kernel_w;
#if FC_HAVE_X86 && defined(FC_IM2COL_SHUFFLE)
    const fc_index taps_at_once = shape->stride_w == 2 && level == FC_SIMD_AVX512 ? 2 : 1;
#else
    const fc_index taps_at_once = 1;
    (void)level;
#endif
    for (fc_index r = 0; r < shape->kernel_h; r++) {
        fc_index oh_lo, oh_hi;
        fc_valid_output_range(shape->out_h, shape->in_h, shape->stride_h, shape->pad_h, r, &oh_lo, &oh_hi);
        oh_lo = oh_lo > oh_begin ? oh_lo : oh_begin;
        oh_hi = oh_hi < oh_end ? oh_hi : oh_end;
        for (fc_index s = 0; s < kernel_w; s += taps_at_once) {
            const real *row = col_rows + (r * kernel_w + s) * ld_col;
#if FC_HAVE_X86 && defined(FC_IM2COL_SHUFFLE)
            if (taps_at_once == 2) {
                FC_FN(col2im_tap_pair)(shape, row, ld_col, r, s, oh_lo, oh_hi, oh_begin, x_plane);
                continue;
            }
#endif
            FC_FN(col2im_tap)(shape, row, r, s, oh_lo, oh_hi, oh_begin, x_plane);
        }
    }
}

void FC_FN(fc_col2im_plane)(fc_simd_level level, const fc_conv_shape *shape, const real *col_rows,
                            fc_index ld_col, real *x_plane)
{
    FC_FN(fc_col2im_rows)(level, shape, col_rows, ld_col, 0, shape->out_h, x_plane);
}

void FC_FN(fc_im2col)(const fc_conv_shape *shape, const real *x, real *col)
{
    const fc_index plane = shape->in_h * shape->in_w;
    const fc_index out_plane = shape->out_h * shape->out_w;
    const fc_index taps = shape->kernel_h * shape->kernel_w;
    for (fc_index c = 0; c < shape->in_channels; c++)
        FC_FN(fc_im2col_plane)(shape, x + c * plane, col + c * taps * out_plane, out_plane);
}

void FC_FN(fc_col2im)(const fc_conv_shape *shape, const real *col, real *x)
{
    const fc_index plane = shape->in_h * shape->in_w;
    const fc_index out_plane = shape->out_h * shape->out_w;
    const fc_index taps = shape->kernel_h * shape->kernel_w;
    for (fc_index c = 0; c < shape->in_channels; c++)
        FC_FN(fc_col2im_plane)(FC_SIMD_SCALAR, shape, col + c * taps * out_plane, out_plane, x + c * plane);
}

#endif /* FC_TEMPLATE_PASS */
