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
 * Every (image, channel) plane is independent: the kernels run one plane per OpenMP iteration
 * (schedule(static)), so results never depend on the thread count. The 2x2 stride-2 unpadded case,
 * by far the most common (LeNet, VGG), has its own loops with the window unrolled; its average
 * backward instead splits the N*C*out_h output rows into one contiguous range per thread (planes
 * of LeNet's second pool are 5x5: a call per plane cost more than the plane), and writes every
 * element of the range exactly once in the end, so the split does not change the result either.
 */
#ifndef FC_TEMPLATE_PASS

#include <math.h>
#include <string.h>
#include "fastconv.h"
#include "simd_targets.h"

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

/* True if out_h, out_w are floor(in / 2) and at least 1: what the 2x2 stride-2 backward expects. */
static inline int fc_pool_is_floor_2x2(const fc_pool_shape *shape)
{
    return shape->out_h >= 1 && shape->out_w >= 1 && shape->in_h / 2 == shape->out_h &&
           shape->in_w / 2 == shape->out_w;
}

/* Where output row r's stretch of grad_x starts (r may be the row count: the tensor's end). */
static inline fc_index fc_unpool_row_start_2x2(const fc_pool_shape *shape, fc_index r)
{
    return r / shape->out_h * (shape->in_h * shape->in_w) + 2 * (r % shape->out_h) * shape->in_w;
}

/* Outputs per block of the 2x2 stride-2 average backward: one AVX2 vector of floats, spread over
 * two vectors per input row. */
#define FC_AVG_2X2_BLOCK 8

/* May output row r, narrower than a block, be written as a whole block? Its block runs past the
 * row into what later rows (or the odd-column and odd-row zeros) overwrite, so it must end inside
 * this thread's stretch (x_stop: another thread owns what follows) and read inside grad_y. */
static inline int fc_unpool_block_fits_2x2(const fc_pool_shape *shape, fc_index r, fc_index x_at,
                                           fc_index x_stop, fc_index g_count)
{
    return shape->out_w < FC_AVG_2X2_BLOCK && x_at + shape->in_w + 2 * FC_AVG_2X2_BLOCK <= x_stop &&
           r * shape->out_w + FC_AVG_2X2_BLOCK <= g_count;
}

#if FC_HAVE_X86
#include <immintrin.h>

/* unpool_block_2x2 (below) for float on AVX2 and up, by hand: the 8 shares, each twice, to both
 * rows, with in-lane unpacks and 128-bit lane selects. GCC 12 vectorises the plain loop with two
 * vpermd (cross-lane, slow on this project's AVX2 machine, a Zen 2): (64,6,28,28), 1 thread,
 * 34.9 us with it, 30.8 us with this. */
static inline FC_TARGET_AVX2 __attribute__((always_inline)) void fc_unpool_block_2x2_avx2_f32(
    const float *restrict g, float *row0, float *row1)
{
    const __m256 shares = _mm256_mul_ps(_mm256_loadu_ps(g), _mm256_set1_ps(0.25f));
    const __m256 lo = _mm256_unpacklo_ps(shares, shares);   /* s0 s0 s1 s1 | s4 s4 s5 s5 */
    const __m256 hi = _mm256_unpackhi_ps(shares, shares);   /* s2 s2 s3 s3 | s6 s6 s7 s7 */
    const __m256 first = _mm256_permute2f128_ps(lo, hi, 0x20);
    const __m256 second = _mm256_permute2f128_ps(lo, hi, 0x31);
    _mm256_storeu_ps(row0, first);
    _mm256_storeu_ps(row0 + 8, second);
    _mm256_storeu_ps(row1, first);     /* after row0's: row0's block may run into row1 */
    _mm256_storeu_ps(row1 + 8, second);
}
#endif

#define FC_TEMPLATE_FILE "pool.c"
#include "fc_template.h"

#else /* FC_TEMPLATE_PASS: type-generic code, `real` is float or double */

/* ---- max pooling, forward: with indices (training) or the values alone (inference) ---------- */

/* The candidate as the max pool sees it: with `relu`, max(v, 0) as fc_relu_forward computes it (a NaN
 * stays NaN), so that pooling a ReLU's input gives the same bits as pooling its output. */
static inline __attribute__((always_inline)) real FC_FN(pool_candidate)(real v, int relu)
{
    return relu && v < 0 ? (real)0 : v;
}

/* Any window: the first maximum in row-major window order, a NaN beating everything. indices may be
 * NULL (values alone; only then may relu be 1). */
static inline __attribute__((always_inline)) void FC_FN(max_plane)(const fc_pool_shape *shape, const real *x,
                                                                   real *y, int64_t *indices, int relu)
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
                    const real v = FC_FN(pool_candidate)(x[h * in_w + w], relu);
                    const int take = (v > best) | isnan(v);
                    best = take ? v : best;
                    best_at = take ? h * in_w + w : best_at;
                }
            }
            y[oh * out_w + ow] = best;
            if (indices)
                indices[oh * out_w + ow] = best_at;
        }
    }
}

/* One window of 2x2 stride-2 max pooling: the four candidates in window order, the same update rule as
 * above. Written without branches (selects, `|` instead of `||`) so that the compiler vectorises it;
 * random data would otherwise mispredict about once per window. The first candidate always beats the
 * initial -inf (or ties with it, keeping its index), so it starts as the best. With relu (index_row
 * NULL) the window's max is taken first and then mapped, which vectorises where relu on every candidate
 * did not (11x slower, 256 x 6 x 28 x 28, 1 thread): a positive or NaN max is what the ReLU'd candidates
 * give too; otherwise every ReLU'd candidate is a zero and the first one wins, so the result is the
 * first candidate ReLU'd (-0.0 stays -0.0, a negative gives +0.0). */
static inline __attribute__((always_inline)) void FC_FN(max_window_2x2)(
    const real *restrict row0, const real *restrict row1, fc_index top, fc_index in_w,
    fc_index ow, real *restrict y_row, int64_t *restrict index_row, int relu)
{
    const fc_index w = 2 * ow;
    const real a = row0[w], b = row0[w + 1], c = row1[w], d = row1[w + 1];
    real best = a;
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
    const real first_relu = a < 0 ? (real)0 : a;
    y_row[ow] = relu & !((best > 0) | isnan(best)) ? first_relu : best;
    if (index_row)
        index_row[ow] = best_at;
}

/* Outputs per block of max_row_2x2: one AVX2 vector of floats. */
#define FC_MAX_2X2_BLOCK 8

/* One output row, in blocks of FC_MAX_2X2_BLOCK windows that the compiler turns into vector code.
 * The last block is moved back to end at out_w, overlapping the one before it (it rewrites the same
 * values), so no window goes through a scalar remainder loop: with LeNet's 14-wide rows that
 * remainder was 6 of every 14 outputs. (Blocks of 4 for narrower rows made lenet-s4 five times slower
 * with GCC 12, so rows under 8 stay a plain loop.) */
static inline __attribute__((always_inline)) void FC_FN(max_row_2x2)(
    const real *restrict row0, const real *restrict row1, fc_index top, fc_index in_w,
    fc_index out_w, real *restrict y_row, int64_t *restrict index_row, int relu)
{
    if (out_w < FC_MAX_2X2_BLOCK) {
        #pragma omp simd
        for (fc_index ow = 0; ow < out_w; ow++)
            FC_FN(max_window_2x2)(row0, row1, top, in_w, ow, y_row, index_row, relu);
        return;
    }
    for (fc_index ow0 = 0; ow0 < out_w; ow0 += FC_MAX_2X2_BLOCK) {
        const fc_index start = ow0 + FC_MAX_2X2_BLOCK <= out_w ? ow0 : out_w - FC_MAX_2X2_BLOCK;
        #pragma omp simd   /* GCC 12 turns the selects into branches without it */
        for (int j = 0; j < FC_MAX_2X2_BLOCK; j++)
            FC_FN(max_window_2x2)(row0, row1, top, in_w, start + j, y_row, index_row, relu);
    }
}

/* One plane of 2x2 stride-2 max pooling, row by row. */
static inline __attribute__((always_inline)) void FC_FN(max_plane_2x2)(
    const fc_pool_shape *shape, const real *x, real *y, int64_t *indices, int relu)
{
    const fc_index in_w = shape->in_w, out_h = shape->out_h, out_w = shape->out_w;
    for (fc_index oh = 0; oh < out_h; oh++) {
        const fc_index top = 2 * oh * in_w;   /* flat index of the window's first row */
        FC_FN(max_row_2x2)(x + top, x + top + in_w, top, in_w, out_w, y + oh * out_w,
                           indices ? indices + oh * out_w : NULL, relu);
    }
}

/* One plane, in one of three copies (indices; values; values of the ReLU) with everything else constant,
 * compiled per SIMD level (the results are identical: only selects and compares). Baseline x86-64 (SSE2)
 * does not vectorise the 2x2 loops; AVX2 and AVX-512 do. A whole plane per call: with LeNet's 14-wide
 * output rows, a call per row cost as much as the row (lenet-s2, 2 threads, AVX2: 0.12 ms per batch). */
#define FC_MAX_PLANE_BODY                                                   \
    if (!fc_pool_is_2x2_stride2(shape))                                     \
        FC_FN(max_plane)(shape, x, y, indices, relu);                       \
    else if (indices)                                                       \
        FC_FN(max_plane_2x2)(shape, x, y, indices, 0);                      \
    else if (relu)                                                          \
        FC_FN(max_plane_2x2)(shape, x, y, NULL, 1);                         \
    else                                                                    \
        FC_FN(max_plane_2x2)(shape, x, y, NULL, 0);

static void FC_FN(max_plane_scalar)(const fc_pool_shape *shape, const real *x, real *y, int64_t *indices,
                                    int relu)
{
    FC_MAX_PLANE_BODY
}

#if FC_HAVE_X86
FC_TARGET_AVX2
static void FC_FN(max_plane_avx2)(const fc_pool_shape *shape, const real *x, real *y, int64_t *indices,
                                  int relu)
{
    FC_MAX_PLANE_BODY
}

FC_TARGET_AVX512
static void FC_FN(max_plane_avx512)(const fc_pool_shape *shape, const real *x, real *y, int64_t *indices,
                                    int relu)
{
    FC_MAX_PLANE_BODY
}
#endif

/* Calls the copy of `name` compiled for SIMD level `simd`: name_scalar, name_avx2 or name_avx512. */
#if FC_HAVE_X86
#define FC_POOL_AT_LEVEL(simd, name, ...)                                      \
    ((simd) >= FC_SIMD_AVX512 ? FC_FN(FC_CAT(name, avx512))(__VA_ARGS__)      \
     : (simd) == FC_SIMD_AVX2 ? FC_FN(FC_CAT(name, avx2))(__VA_ARGS__)       \
                              : FC_FN(FC_CAT(name, scalar))(__VA_ARGS__))
#else
#define FC_POOL_AT_LEVEL(simd, name, ...) ((void)(simd), FC_FN(FC_CAT(name, scalar))(__VA_ARGS__))
#endif

/* Every plane; indices NULL for the values alone. */
static int FC_FN(max_pool_planes)(const fc_ctx *ctx, const fc_pool_shape *shape, const real *x, real *y,
                                  int64_t *indices, int relu)
{
    const fc_index planes = shape->batch * shape->channels;
    const fc_index in_plane = shape->in_h * shape->in_w;
    const fc_index out_plane = shape->out_h * shape->out_w;
    #pragma omp parallel for num_threads(ctx->num_threads) schedule(static) if (ctx->num_threads > 1)
    for (fc_index p = 0; p < planes; p++)
        FC_POOL_AT_LEVEL(ctx->simd, max_plane, shape, x + p * in_plane, y + p * out_plane,
                         indices ? indices + p * out_plane : NULL, relu);
    return FC_OK;
}

int FC_FN(fc_max_pool2d_forward)(const fc_ctx *ctx, const fc_pool_shape *shape, const real *x,
                                 real *y, int64_t *indices)
{
    return FC_FN(max_pool_planes)(ctx, shape, x, y, indices, 0);
}

int FC_FN(fc_max_pool2d_values)(const fc_ctx *ctx, const fc_pool_shape *shape, const real *x, real *y,
                                int relu)
{
    return FC_FN(max_pool_planes)(ctx, shape, x, y, NULL, relu);
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

/* 2x2 stride 2: windows do not overlap, so each input element receives exactly one share, g / 4,
 * or none in a last odd row or column (zero). The tensor is taken as N*C*out_h output rows, each
 * owning the input rows 2*oh and 2*oh+1 of its plane (plus the plane's odd last row after its last
 * output row): consecutive output rows own adjacent stretches of grad_x, so a thread's range of
 * output rows owns one contiguous stretch, written in ascending order without a memset. */

/* A block writer: row0[2j] = row0[2j+1] = row1[2j] = row1[2j+1] = g[j] / 4 for
 * j < FC_AVG_2X2_BLOCK, row0's block first (it may run into row1). A constant argument of the
 * always-inline loops below, so the calls are inlined. */
typedef void (*FC_FN(unpool_block))(const real *restrict g, real *row0, real *row1);

/* The portable block writer; the shares go through a local array so that the copies keep the
 * order "row0, then row1". */
static inline __attribute__((always_inline)) void FC_FN(unpool_block_2x2)(
    const real *restrict g, real *row0, real *row1)
{
    real pair[2 * FC_AVG_2X2_BLOCK];
    for (int j = 0; j < 2 * FC_AVG_2X2_BLOCK; j++)
        pair[j] = g[j / 2] * (real)0.25;   /* == g / 4 exactly: a power of two */
    for (int j = 0; j < 2 * FC_AVG_2X2_BLOCK; j++)
        row0[j] = pair[j];
    for (int j = 0; j < 2 * FC_AVG_2X2_BLOCK; j++)
        row1[j] = pair[j];
}

/* One output row into its two input rows, writing nothing outside them. Rows of at least a block
 * go by blocks, the last moved back to end at out_w (it rewrites the same values): no scalar
 * remainder. Narrower rows are a plain loop. */
static inline __attribute__((always_inline)) void FC_FN(unpool_row_2x2_exact)(
    const real *restrict g_row, real *row0, real *row1, fc_index out_w, FC_FN(unpool_block) block)
{
    if (out_w < FC_AVG_2X2_BLOCK) {
        for (fc_index ow = 0; ow < out_w; ow++) {
            const real share = g_row[ow] * (real)0.25;
            row0[2 * ow] = row0[2 * ow + 1] = share;
            row1[2 * ow] = row1[2 * ow + 1] = share;
        }
        return;
    }
    for (fc_index ow0 = 0; ow0 < out_w; ow0 += FC_AVG_2X2_BLOCK) {
        const fc_index start = ow0 + FC_AVG_2X2_BLOCK <= out_w ? ow0 : out_w - FC_AVG_2X2_BLOCK;
        block(g_row + start, row0 + 2 * start, row1 + 2 * start);
    }
}

/* Narrow rows of an even-sized tensor from first_row on, one block each, in a loop with nothing
 * else in it (row r's input rows are then grad_x[2r*in_w, +2*in_w)); returns the first row left
 * to avg_unpool_rows_2x2. (64,16,10,10), float, AVX2, 1 thread: 13.0 us, 19.1 in the general loop. */
static inline __attribute__((always_inline)) fc_index FC_FN(avg_unpool_narrow_rows_2x2)(
    const fc_pool_shape *shape, fc_index first_row, fc_index end_row, const real *grad_y,
    fc_index g_count, real *grad_x, fc_index x_stop, FC_FN(unpool_block) block)
{
    const fc_index in_w = shape->in_w, out_w = shape->out_w;
    if (shape->in_h % 2 != 0 || in_w % 2 != 0)
        return first_row;
    fc_index stop = end_row;   /* <= 8 steps: a block reaches 16 values, 8 grads ahead */
    while (stop > first_row &&
           !fc_unpool_block_fits_2x2(shape, stop - 1, 2 * (stop - 1) * in_w, x_stop, g_count))
        stop--;
    for (fc_index r = first_row; r < stop; r++)
        block(grad_y + r * out_w, grad_x + 2 * r * in_w, grad_x + (2 * r + 1) * in_w);
    return stop;
}

/* The output rows [first_row, end_row) of the whole tensor (row r: plane r / out_h, row r % out_h),
 * whose stretch of grad_x ends at x_stop; grad_y holds g_count values. Narrow rows are written
 * as whole blocks where fc_unpool_block_fits_2x2 (for 5-wide rows, 19.1 us instead of 24.4 with
 * the exact path's scalar loop), the others by the exact path. */
static inline __attribute__((always_inline)) void FC_FN(avg_unpool_rows_2x2)(
    const fc_pool_shape *shape, fc_index first_row, fc_index end_row, const real *grad_y,
    fc_index g_count, real *grad_x, fc_index x_stop, FC_FN(unpool_block) block)
{
    const fc_index in_w = shape->in_w, out_h = shape->out_h, out_w = shape->out_w;
    const int odd_h = shape->in_h != 2 * out_h, odd_w = in_w != 2 * out_w;
    first_row = FC_FN(avg_unpool_narrow_rows_2x2)(shape, first_row, end_row, grad_y, g_count,
                                                  grad_x, x_stop, block);
    fc_index oh = first_row % out_h;
    fc_index x_at = fc_unpool_row_start_2x2(shape, first_row);
    for (fc_index r = first_row; r < end_row; r++) {
        const real *g_row = grad_y + r * out_w;
        real *row0 = grad_x + x_at, *row1 = row0 + in_w;
        if (fc_unpool_block_fits_2x2(shape, r, x_at, x_stop, g_count))
            block(g_row, row0, row1);
        else
            FC_FN(unpool_row_2x2_exact)(g_row, row0, row1, out_w, block);
        if (odd_w)
            row0[in_w - 1] = row1[in_w - 1] = 0;
        x_at += 2 * in_w;
        if (++oh == out_h) {
            if (odd_h) {
                memset(grad_x + x_at, 0, (size_t)in_w * sizeof(real));
                x_at += in_w;
            }
            oh = 0;
        }
    }
}

/* Portable, and AVX2 (also taken at AVX-512: the work is copies, which the AVX2 block writer
 * already does a vector at a time); identical results, one exact multiply per value. Float on x86
 * uses the hand-written block writer. */
#if FC_IS_F32 && FC_HAVE_X86
#define FC_UNPOOL_BLOCK_X86 fc_unpool_block_2x2_avx2_f32
#else
#define FC_UNPOOL_BLOCK_X86 FC_FN(unpool_block_2x2)
#endif

static void FC_FN(avg_unpool_rows_2x2_scalar)(
    const fc_pool_shape *shape, fc_index first_row, fc_index end_row, const real *grad_y,
    fc_index g_count, real *grad_x, fc_index x_stop)
{
    FC_FN(avg_unpool_rows_2x2)(shape, first_row, end_row, grad_y, g_count, grad_x, x_stop,
                               FC_FN(unpool_block_2x2));
}

#if FC_HAVE_X86
FC_TARGET_AVX2
static void FC_FN(avg_unpool_rows_2x2_avx2)(
    const fc_pool_shape *shape, fc_index first_row, fc_index end_row, const real *grad_y,
    fc_index g_count, real *grad_x, fc_index x_stop)
{
    FC_FN(avg_unpool_rows_2x2)(shape, first_row, end_row, grad_y, g_count, grad_x, x_stop,
                               FC_UNPOOL_BLOCK_X86);
}
#endif
#undef FC_UNPOOL_BLOCK_X86

/* One thread's share, part `part` of `parts`, of the 2x2 stride-2 tensor's output rows. */
static void FC_FN(avg_unpool_part_2x2)(const fc_pool_shape *shape, fc_simd_level simd,
                                       fc_index part, fc_index parts, const real *grad_y,
                                       real *grad_x)
{
    const fc_index rows = shape->batch * shape->channels * shape->out_h;
    const fc_index base = rows / parts, extra = rows % parts;
    const fc_index first = part * base + (part < extra ? part : extra);
    const fc_index end = first + base + (part < extra ? 1 : 0);
    const fc_index g_count = rows * shape->out_w;
    const fc_index x_stop = fc_unpool_row_start_2x2(shape, end);
#if FC_HAVE_X86
    if (simd >= FC_SIMD_AVX2) {
        FC_FN(avg_unpool_rows_2x2_avx2)(shape, first, end, grad_y, g_count, grad_x, x_stop);
        return;
    }
#endif
    (void)simd;
    FC_FN(avg_unpool_rows_2x2_scalar)(shape, first, end, grad_y, g_count, grad_x, x_stop);
}

int FC_FN(fc_avg_pool2d_backward)(const fc_ctx *ctx, const fc_pool_shape *shape,
                                  const real *grad_y, real *grad_x)
{
    const fc_index planes = shape->batch * shape->channels;
    const fc_index in_plane = shape->in_h * shape->in_w;
    const fc_index out_plane = shape->out_h * shape->out_w;
    const fc_index rows = planes * shape->out_h;
    if (fc_pool_is_2x2_stride2(shape) && fc_pool_is_floor_2x2(shape) && rows > 0) {
        /* One contiguous range of output rows per thread: no call per (tiny) plane. */
        const fc_index parts = ctx->num_threads < rows ? ctx->num_threads : rows;
        #pragma omp parallel for num_threads(ctx->num_threads) schedule(static)
        for (fc_index part = 0; part < parts; part++)
            FC_FN(avg_unpool_part_2x2)(shape, ctx->simd, part, parts, grad_y, grad_x);
        return FC_OK;
    }
    #pragma omp parallel for num_threads(ctx->num_threads) schedule(static)
    for (fc_index p = 0; p < planes; p++)
        FC_FN(avg_unpool_plane)(shape, grad_y + p * out_plane, grad_x + p * in_plane);
    return FC_OK;
}

#endif /* FC_TEMPLATE_PASS */
