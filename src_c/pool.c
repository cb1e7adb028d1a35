/*
 * pool.c -- max and average pooling, forward and backward.
 *
 * Output position (oh, ow) looks at the window of input rows [oh*stride_h - pad_h, + kernel_h) and
 * columns [ow*stride_w - pad_w, + kernel_w), clipped to the image (fc_pool_window). Padding never
 * holds the max (it acts as -inf) and adds zero to an average, whose divisor stays
 * kernel_h*kernel_w (count_include_pad=True, PyTorch's default).
 *
 * Max pooling follows PyTorch's CPU kernel to the letter: scanning the window in row-major order,
 * a value replaces the running max when `v > best || isnan(v)`. So the first of equal maxima wins,
 * and a NaN always becomes the max (if a window holds several NaNs, the last one's index is kept,
 * as in PyTorch). indices hold h*in_w + w inside the (in_h, in_w) plane.
 *
 * Every (image, channel) plane is independent: all four kernels run one plane per OpenMP iteration
 * (schedule(static)), so results never depend on the thread count. The 2x2 stride-2 unpadded case,
 * by far the most common (LeNet, VGG), has its own loops with the window unrolled.
 */
#ifndef FC_TEMPLATE_PASS

#include <math.h>
#include <string.h>
#include "fastconv.h"

/* The window of output coordinate o along one axis, clipped to the input: [*lo, *hi). */
static inline void fc_pool_window(fc_index o, fc_index stride, fc_index pad, fc_index kernel,
                                  fc_index in_len, fc_index *lo, fc_index *hi)
{
    fc_index start = o * stride - pad;
    fc_index end = start + kernel;
    *lo = start < 0 ? 0 : start;
    *hi = end > in_len ? in_len : end;
}

/* True for the 2x2, stride-2, unpadded pooling that gets the specialised loops. */
static inline int fc_pool_is_2x2_stride2(const fc_pool_shape *shape)
{
    return shape->kernel_h == 2 && shape->kernel_w == 2 && shape->stride_h == 2 &&
           shape->stride_w == 2 && shape->pad_h == 0 && shape->pad_w == 0;
}

#define FC_TEMPLATE_FILE "pool.c"
#include "fc_template.h"

#else /* FC_TEMPLATE_PASS: type-generic code, `real` is float or double */

/* ---- max pooling, forward ------------------------------------------------------------------ */

static void FC_FN(max_pool_plane)(const fc_pool_shape *shape, const real *x, real *y,
                                  int64_t *indices)
{
    const fc_index in_h = shape->in_h, in_w = shape->in_w;
    const fc_index out_h = shape->out_h, out_w = shape->out_w;
    for (fc_index oh = 0; oh < out_h; oh++) {
        fc_index h_lo, h_hi;
        fc_pool_window(oh, shape->stride_h, shape->pad_h, shape->kernel_h, in_h, &h_lo, &h_hi);
        for (fc_index ow = 0; ow < out_w; ow++) {
            fc_index w_lo, w_hi;
            fc_pool_window(ow, shape->stride_w, shape->pad_w, shape->kernel_w, in_w, &w_lo, &w_hi);
            real best = (real)-INFINITY;
            fc_index best_at = h_lo * in_w + w_lo;   /* kept if the whole window is -inf */
            for (fc_index h = h_lo; h < h_hi; h++) {
                for (fc_index w = w_lo; w < w_hi; w++) {
                    /* branch-free form of: if (v > best || isnan(v)) take v */
                    const real v = x[h * in_w + w];
                    const int take = (v > best) | isnan(v);
                    best = take ? v : best;
                    best_at = take ? h * in_w + w : best_at;
                }
            }
            y[oh * out_w + ow] = best;
            indices[oh * out_w + ow] = best_at;
        }
    }
}

/* One output row of 2x2 stride-2 max pooling: the four candidates in window order, the same update
 * rule as above. Written without branches (selects, `|` instead of `||`) so that the compiler
 * vectorises it; random data would otherwise mispredict about once per window. The first candidate
 * always beats the initial -inf (or ties with it, keeping its index), so it starts as the best. */
static inline __attribute__((always_inline)) void FC_FN(max_window_2x2)(
    const real *restrict row0, const real *restrict row1, fc_index top, fc_index in_w,
    fc_index ow, real *restrict y_row, int64_t *restrict index_row)
{
    const fc_index w = 2 * ow;
    const real b = row0[w + 1], c = row1[w], d = row1[w + 1];
    real best = row0[w];
    int64_t best_at = top + w;
    int take;
    take = (b > best) | isnan(b);
    best = take ? b : best;
    best_at = take ? top + w + 1 : best_at;
    take = (c > best) | isnan(c);
    best = take ? c : best;
    best_at = take ? top + in_w + w : best_at;
    take = (d > best) | isnan(d);
    best = take ? d : best;
    best_at = take ? top + in_w + w + 1 : best_at;
    y_row[ow] = best;
    index_row[ow] = best_at;
}

/* Outputs per block of max_row_2x2: one AVX2 vector of floats. */
#define FC_MAX_2X2_BLOCK 8

/* One output row, in blocks of FC_MAX_2X2_BLOCK windows that the compiler turns into vector code.
 * The last block is moved back to end at out_w, overlapping the one before it (it rewrites the same
 * values), so no window goes through a scalar remainder loop: with LeNet's 14-wide rows that
 * remainder was 6 of every 14 outputs. Measured (lenet-s2, 2 threads, AVX2, ms per batch): 0.12 with a
 * call per row and a remainder loop, 0.07 now. (Blocks of 4 for narrower rows made lenet-s4 five
 * times slower with GCC 12, so rows under 8 stay a plain loop.) */
static inline __attribute__((always_inline)) void FC_FN(max_row_2x2)(
    const real *restrict row0, const real *restrict row1, fc_index top, fc_index in_w,
    fc_index out_w, real *restrict y_row, int64_t *restrict index_row)
{
    if (out_w < FC_MAX_2X2_BLOCK) {
        for (fc_index ow = 0; ow < out_w; ow++)
            FC_FN(max_window_2x2)(row0, row1, top, in_w, ow, y_row, index_row);
        return;
    }
    for (fc_index ow0 = 0; ow0 < out_w; ow0 += FC_MAX_2X2_BLOCK) {
        const fc_index start = ow0 + FC_MAX_2X2_BLOCK <= out_w ? ow0 : out_w - FC_MAX_2X2_BLOCK;
        for (int j = 0; j < FC_MAX_2X2_BLOCK; j++)
            FC_FN(max_window_2x2)(row0, row1, top, in_w, start + j, y_row, index_row);
    }
}

/* One plane of 2x2 stride-2 max pooling, row by row. */
static inline __attribute__((always_inline)) void FC_FN(max_plane_2x2)(
    const fc_pool_shape *shape, const real *x, real *y, int64_t *indices)
{
    const fc_index in_w = shape->in_w, out_h = shape->out_h, out_w = shape->out_w;
    for (fc_index oh = 0; oh < out_h; oh++) {
        const fc_index top = 2 * oh * in_w;   /* flat index of the window's first row */
        FC_FN(max_row_2x2)(x + top, x + top + in_w, top, in_w, out_w, y + oh * out_w,
                           indices + oh * out_w);
    }
}

/* The same source compiled per SIMD level (the results are identical: only selects and compares).
 * Baseline x86-64 (SSE2) does not vectorise it; AVX2 and AVX-512 do. A whole plane per call: with
 * LeNet's 14-wide output rows, a call per row cost as much as the row (lenet-s2, 2 threads, AVX2:
 * 0.12 ms per batch with a call per row). */
static void FC_FN(max_plane_2x2_scalar)(const fc_pool_shape *shape, const real *x, real *y,
                                        int64_t *indices)
{
    FC_FN(max_plane_2x2)(shape, x, y, indices);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma")))
static void FC_FN(max_plane_2x2_avx2)(const fc_pool_shape *shape, const real *x, real *y,
                                      int64_t *indices)
{
    FC_FN(max_plane_2x2)(shape, x, y, indices);
}

__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))
static void FC_FN(max_plane_2x2_avx512)(const fc_pool_shape *shape, const real *x, real *y,
                                        int64_t *indices)
{
    FC_FN(max_plane_2x2)(shape, x, y, indices);
}
#endif

static void FC_FN(max_pool_plane_2x2)(const fc_pool_shape *shape, fc_simd_level simd,
                                      const real *x, real *y, int64_t *indices)
{
#if defined(__x86_64__) || defined(__i386__)
    if (simd >= FC_SIMD_AVX512) {
        FC_FN(max_plane_2x2_avx512)(shape, x, y, indices);
        return;
    }
    if (simd == FC_SIMD_AVX2) {
        FC_FN(max_plane_2x2_avx2)(shape, x, y, indices);
        return;
    }
#endif
    (void)simd;
    FC_FN(max_plane_2x2_scalar)(shape, x, y, indices);
}

int FC_FN(fc_max_pool2d_forward)(const fc_ctx *ctx, const fc_pool_shape *shape, const real *x,
                                 real *y, int64_t *indices)
{
    const fc_index planes = shape->batch * shape->channels;
    const fc_index in_plane = shape->in_h * shape->in_w;
    const fc_index out_plane = shape->out_h * shape->out_w;
    const int fast = fc_pool_is_2x2_stride2(shape);
    #pragma omp parallel for num_threads(ctx->num_threads) schedule(static)
    for (fc_index p = 0; p < planes; p++) {
        if (fast)
            FC_FN(max_pool_plane_2x2)(shape, ctx->simd, x + p * in_plane, y + p * out_plane,
                                      indices + p * out_plane);
        else
            FC_FN(max_pool_plane)(shape, x + p * in_plane, y + p * out_plane,
                                  indices + p * out_plane);
    }
    return FC_OK;
}

/* ---- max pooling, backward ----------------------------------------------------------------- */

/* grad_x plane = 0, then grad_y scattered (added) to the recorded argmax positions. */
static int FC_FN(max_unpool_plane)(fc_index in_plane, fc_index out_plane, const real *grad_y,
                                   const int64_t *indices, real *grad_x)
{
    memset(grad_x, 0, (size_t)in_plane * sizeof(real));
    for (fc_index q = 0; q < out_plane; q++) {
        int64_t at = indices[q];
        if (at < 0 || at >= in_plane)
            return FC_EINDEX;
        grad_x[at] += grad_y[q];
    }
    return FC_OK;
}

int FC_FN(fc_max_pool2d_backward)(const fc_ctx *ctx, const fc_pool_shape *shape,
                                  const real *grad_y, const int64_t *indices, real *grad_x)
{
    const fc_index planes = shape->batch * shape->channels;
    const fc_index in_plane = shape->in_h * shape->in_w;
    const fc_index out_plane = shape->out_h * shape->out_w;
    int bad_index = 0;
    #pragma omp parallel for num_threads(ctx->num_threads) schedule(static) reduction(|:bad_index)
    for (fc_index p = 0; p < planes; p++) {
        if (FC_FN(max_unpool_plane)(in_plane, out_plane, grad_y + p * out_plane,
                                    indices + p * out_plane, grad_x + p * in_plane) != FC_OK)
            bad_index = 1;
    }
    return bad_index ? FC_EINDEX : FC_OK;
}

/* ---- average pooling, forward -------------------------------------------------------------- */

static void FC_FN(avg_pool_plane)(const fc_pool_shape *shape, const real *x, real *y)
{
    const fc_index in_h = shape->in_h, in_w = shape->in_w;
    const fc_index out_h = shape->out_h, out_w = shape->out_w;
    const real divisor = (real)(shape->kernel_h * shape->kernel_w);
    for (fc_index oh = 0; oh < out_h; oh++) {
        fc_index h_lo, h_hi;
        fc_pool_window(oh, shape->stride_h, shape->pad_h, shape->kernel_h, in_h, &h_lo, &h_hi);
        for (fc_index ow = 0; ow < out_w; ow++) {
            fc_index w_lo, w_hi;
            fc_pool_window(ow, shape->stride_w, shape->pad_w, shape->kernel_w, in_w, &w_lo, &w_hi);
            real sum = 0;
            for (fc_index h = h_lo; h < h_hi; h++)
                for (fc_index w = w_lo; w < w_hi; w++)
                    sum += x[h * in_w + w];
            y[oh * out_w + ow] = sum / divisor;
        }
    }
}

/* 2x2 stride 2: the same sum, in the same order, unrolled. */
static void FC_FN(avg_pool_plane_2x2)(const fc_pool_shape *shape, const real *x, real *y)
{
    const fc_index in_w = shape->in_w, out_h = shape->out_h, out_w = shape->out_w;
    for (fc_index oh = 0; oh < out_h; oh++) {
        const real *row0 = x + 2 * oh * in_w, *row1 = row0 + in_w;
        real *y_row = y + oh * out_w;
        for (fc_index ow = 0; ow < out_w; ow++) {
            const fc_index w = 2 * ow;
            y_row[ow] = (row0[w] + row0[w + 1] + row1[w] + row1[w + 1]) / (real)4;
        }
    }
}

int FC_FN(fc_avg_pool2d_forward)(const fc_ctx *ctx, const fc_pool_shape *shape, const real *x,
                                 real *y)
{
    const fc_index planes = shape->batch * shape->channels;
    const fc_index in_plane = shape->in_h * shape->in_w;
    const fc_index out_plane = shape->out_h * shape->out_w;
    const int fast = fc_pool_is_2x2_stride2(shape);
    #pragma omp parallel for num_threads(ctx->num_threads) schedule(static)
    for (fc_index p = 0; p < planes; p++) {
        if (fast)
            FC_FN(avg_pool_plane_2x2)(shape, x + p * in_plane, y + p * out_plane);
        else
            FC_FN(avg_pool_plane)(shape, x + p * in_plane, y + p * out_plane);
    }
    return FC_OK;
}

/* ---- average pooling, backward ------------------------------------------------------------- */

/* grad_x plane = 0, then each grad_y / (kernel_h*kernel_w) added over its window (real part). */
static void FC_FN(avg_unpool_plane)(const fc_pool_shape *shape, const real *grad_y, real *grad_x)
{
    const fc_index in_h = shape->in_h, in_w = shape->in_w;
    const fc_index out_h = shape->out_h, out_w = shape->out_w;
    const real divisor = (real)(shape->kernel_h * shape->kernel_w);
    memset(grad_x, 0, (size_t)(in_h * in_w) * sizeof(real));
    for (fc_index oh = 0; oh < out_h; oh++) {
        fc_index h_lo, h_hi;
        fc_pool_window(oh, shape->stride_h, shape->pad_h, shape->kernel_h, in_h, &h_lo, &h_hi);
        for (fc_index ow = 0; ow < out_w; ow++) {
            fc_index w_lo, w_hi;
            fc_pool_window(ow, shape->stride_w, shape->pad_w, shape->kernel_w, in_w, &w_lo, &w_hi);
            const real share = grad_y[oh * out_w + ow] / divisor;
            for (fc_index h = h_lo; h < h_hi; h++)
                for (fc_index w = w_lo; w < w_hi; w++)
                    grad_x[h * in_w + w] += share;
        }
    }
}

/* 2x2 stride 2: windows do not overlap, so each input element receives exactly one share (or none,
 * in a last odd row or column, which the memset leaves at zero). */
static void FC_FN(avg_unpool_plane_2x2)(const fc_pool_shape *shape, const real *grad_y,
                                        real *grad_x)
{
    const fc_index in_w = shape->in_w, out_h = shape->out_h, out_w = shape->out_w;
    memset(grad_x, 0, (size_t)(shape->in_h * in_w) * sizeof(real));
    for (fc_index oh = 0; oh < out_h; oh++) {
        real *row0 = grad_x + 2 * oh * in_w, *row1 = row0 + in_w;
        const real *g_row = grad_y + oh * out_w;
        for (fc_index ow = 0; ow < out_w; ow++) {
            const real share = g_row[ow] / (real)4;
            const fc_index w = 2 * ow;
            row0[w] = share;
            row0[w + 1] = share;
            row1[w] = share;
            row1[w + 1] = share;
        }
    }
}

int FC_FN(fc_avg_pool2d_backward)(const fc_ctx *ctx, const fc_pool_shape *shape,
                                  const real *grad_y, real *grad_x)
{
    const fc_index planes = shape->batch * shape->channels;
    const fc_index in_plane = shape->in_h * shape->in_w;
    const fc_index out_plane = shape->out_h * shape->out_w;
    const int fast = fc_pool_is_2x2_stride2(shape);
    #pragma omp parallel for num_threads(ctx->num_threads) schedule(static)
    for (fc_index p = 0; p < planes; p++) {
        if (fast)
            FC_FN(avg_unpool_plane_2x2)(shape, grad_y + p * out_plane, grad_x + p * in_plane);
        else
            FC_FN(avg_unpool_plane)(shape, grad_y + p * out_plane, grad_x + p * in_plane);
    }
    return FC_OK;
}

#endif /* FC_TEMPLATE_PASS */
