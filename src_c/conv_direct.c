/*
 * conv_direct.c -- 2-D convolution computed straight from the input, without an im2col buffer: the
 * drivers (argument checks, scratch, weight packing, threading loops). The kernels they run live one
 * family per file, declared with their contracts in conv_direct.h; the plan (conv_plan.c) says which
 * kernel and which SIMD level, and FC_DIRECT_SIMD is the one place a driver meets a level.
 *
 * The path of choice when the im2col matrix would be thin (few input channels, small kernels, as in
 * LeNet): nothing of size (C*R*S) x (out_h*out_w) is built, every output plane is accumulated directly
 * from the input rows.
 *
 * Everything reduces to four loops:
 *  - gather_plane: out[oh][ow] = bias + sum_{ch,r,s} w(ch,r,s) * in[ch][oh*stride_h - pad_h + r]
 *                                                                    [ow*stride_w - pad_w + s]
 *    One call per output plane. It serves the forward pass (one (n, k) plane, summing over c) and
 *    grad_x when both strides are 1: grad_x is then the correlation of grad_y with the kernel flipped
 *    in r and s, channels k and c swapped, padding kernel - 1 - pad (negative padding = a crop).
 *  - scatter_plane: grad_x for stride > 1, the transposed kernel written literally: each grad_y
 *    element is spread back over the input positions it was computed from.
 *  - grad_w task (k, c, r): the kernel_w entries grad_w[k][c][r][:] as dot products over (n, oh, ow).
 *  - grad_b: plane sums.
 * The vectorised kernels (kvec, wvec, wrows, kvgw, wvgw) compute the same sums with other loop orders
 * and blockings; their drivers below copy and pack what they read.
 * Padding is never materialised: for each kernel column s the range of output columns whose input
 * column lies inside the image is computed once per call (col_range), and for each kernel row the
 * range of output rows (row_range), so inner loops run branch-free over contiguous memory.
 */
#if !defined(FC_TEMPLATE_PASS)
#include <stdlib.h>
#include <string.h>
#include "conv_direct.h"
#include "fc_compiler.h"
#include "gemm_kernels.h"   /* fc_gemm_alloc: 64-byte aligned scratch */

/* floor(a / b) for b > 0 and any sign of a. */
static fc_index fc_direct_floor_div(fc_index a, fc_index b)
{
    fc_index q = a / b;
    if (a % b != 0 && a < 0)
        q -= 1;
    return q;
}

/* The output positions o in [0, out_len) whose input position o*stride - pad + tap lies in
 * [0, in_len). pad may be negative. */
static fc_range fc_direct_valid_range(fc_index out_len, fc_index in_len, fc_index stride,
                                      fc_index pad, fc_index tap)
{
    fc_range range;
    range.lo = -fc_direct_floor_div(tap - pad, stride);                  /* ceil((pad-tap)/stride) */
    range.hi = fc_direct_floor_div(in_len - 1 + pad - tap, stride) + 1;
    if (range.lo < 0)
        range.lo = 0;
    if (range.hi > out_len)
        range.hi = out_len;
    if (range.hi < range.lo)
        range.hi = range.lo;
    return range;
}

static void fc_direct_fill_col_range(const fc_gather_geometry *gather, fc_range *col_range)
{
    for (fc_index s = 0; s < gather->kernel_w; s++)
        col_range[s] = fc_direct_valid_range(gather->out_w, gather->in_w, gather->stride_w, gather->pad_w, s);
}

/* Forward: plane (n, k) of y = sum over c of x[n] planes with weight[k]. */
static fc_gather_geometry fc_direct_forward_gather(const fc_conv_shape *sh)
{
    return (fc_gather_geometry){
        .channels = sh->in_channels, .in_h = sh->in_h, .in_w = sh->in_w, .out_h = sh->out_h, .out_w = sh->out_w,
        .kernel_h = sh->kernel_h, .kernel_w = sh->kernel_w, .stride_h = sh->stride_h, .stride_w = sh->stride_w,
        .pad_h = sh->pad_h, .pad_w = sh->pad_w,
        .in_channel_step = sh->in_h * sh->in_w,
        .w_channel_step = sh->kernel_h * sh->kernel_w, .w_row_step = sh->kernel_w, .w_col_step = 1,
    };
}

/* grad_x for stride 1: plane (n, c) of grad_x = sum over k of grad_y[n] planes correlated with
 * weight[:, c] flipped in r and s (the caller points w at weight[0][c][R-1][S-1]). */
static fc_gather_geometry fc_direct_grad_x_gather(const fc_conv_shape *sh)
{
    return (fc_gather_geometry){
        .channels = sh->out_channels, .in_h = sh->out_h, .in_w = sh->out_w, .out_h = sh->in_h, .out_w = sh->in_w,
        .kernel_h = sh->kernel_h, .kernel_w = sh->kernel_w, .stride_h = 1, .stride_w = 1,
        .pad_h = sh->kernel_h - 1 - sh->pad_h, .pad_w = sh->kernel_w - 1 - sh->pad_w,
        .in_channel_step = sh->out_h * sh->out_w,
        .w_channel_step = sh->in_channels * sh->kernel_h * sh->kernel_w, .w_row_step = -sh->kernel_w,
        .w_col_step = -1,
    };
}

static int fc_direct_threads(const fc_ctx *ctx)
{
    return ctx->num_threads >= 1 ? ctx->num_threads : 1;
}

/* kvgw's sizes, the same for every thread (geo.x_image: of x itself; a thread's padded copy has its own). */
typedef struct {
    fc_kvgw_geometry geo;
    fc_index lanes, group_vectors;   /* a group: group_vectors vectors of output channels, one task's */
    fc_index row_blocks;             /* blocks of kernel rows per (group, input channel) */
    fc_index channel_step;           /* between two channels of the (padded) x image */
    int padded;
} fc_kvgw_layout;

/* One thread's tasks [task_lo, task_hi), the vectors of output channels [vec_lo, vec_hi) and the
 * input channels [c_lo, c_hi) they read, and the vectors [bias_lo, bias_hi) whose grad_b it sums: those
 * of the groups whose first task is its (each group has one). */
typedef struct {
    fc_index task_lo, task_hi, vec_lo, vec_hi, c_lo, c_hi, bias_lo, bias_hi;
} fc_kvgw_share;

/* Thread `me` of `team`'s even run of the tasks (group-major, then input channel, then row block). A
 * run within one group reads the channels between its first and last task's; a longer one all. */
static fc_kvgw_share fc_kvgw_share_of(const fc_kvgw_layout *lay, fc_index tasks, fc_index channels, int me,
                                      int team)
{
    fc_kvgw_share share = { tasks * me / team, tasks * (me + 1) / team, 0, 0, 0, 0, 0, 0 };
    if (share.task_lo == share.task_hi)
        return share;
    const fc_index per_group = channels * lay->row_blocks;
    const fc_index group_lo = share.task_lo / per_group, group_last = (share.task_hi - 1) / per_group;
    share.vec_lo = group_lo * lay->group_vectors;
    share.vec_hi = (group_last + 1) * lay->group_vectors;
    share.c_lo = group_lo == group_last ? share.task_lo / lay->row_blocks % channels : 0;
    share.c_hi = group_lo == group_last ? (share.task_hi - 1) / lay->row_blocks % channels + 1 : channels;
    share.bias_lo = (share.task_lo + per_group - 1) / per_group * lay->group_vectors;
    share.bias_hi = (share.task_hi + per_group - 1) / per_group * lay->group_vectors;
    return share;
}

static int fc_direct_shape_ok(const fc_ctx *ctx, const fc_conv_shape *sh)
{
    if (ctx == NULL || sh == NULL)
        return 0;
    if (sh->batch < 1 || sh->in_channels < 1 || sh->in_h < 1 || sh->in_w < 1)
        return 0;
    if (sh->out_channels < 1 || sh->kernel_h < 1 || sh->kernel_w < 1)
        return 0;
    if (sh->stride_h < 1 || sh->stride_w < 1 || sh->pad_h < 0 || sh->pad_w < 0)
        return 0;
    return sh->out_h == (sh->in_h + 2 * sh->pad_h - sh->kernel_h) / sh->stride_h + 1 && sh->out_h >= 1
        && sh->out_w == (sh->in_w + 2 * sh->pad_w - sh->kernel_w) / sh->stride_w + 1 && sh->out_w >= 1;
}

#define FC_TEMPLATE_FILE "conv_direct.c"
#include "fc_template.h"

#else
#include "conv_direct.h"   /* this type's kernels */

/* ---- the SIMD or portable form, as the plan says ------------------------------------------- */

static void FC_FN(gather_plane)(const fc_conv_plan *plan, const fc_gather_geometry *gather, const real *in,
                                const real *w, real bias, const real *zero_row, real *out)
{
    if (plan->kernel == FC_KERNEL_DIRECT_GATHER_SIMD)
        FC_DIRECT_SIMD(plan, fc_gather_plane)(gather, in, w, bias, zero_row, out);
    else
        FC_FN(fc_gather_plane_portable)(gather, in, w, bias, out);
}

static void FC_FN(grad_w_task)(const fc_conv_plan *plan, const fc_conv_shape *sh, const fc_range *col_range,
                               fc_range rows, const real *grad_y, const real *x, fc_index k,
                               fc_index c, fc_index r, real *grad_w_row)
{
    if (plan->kernel == FC_KERNEL_DIRECT_DOT_SIMD)
        FC_DIRECT_SIMD(plan, fc_dot_task)(sh, col_range, rows, grad_y, x, k, c, r, grad_w_row);
    else
        FC_FN(fc_dot_task_portable)(sh, col_range, rows, grad_y, x, k, c, r, grad_w_row);
}

/* ---- public drivers ------------------------------------------------------------------------ */

/* Scratch shared read-only by all threads: the gather's col_range and a zero row of gather->in_w
 * elements that the SIMD kernels read in place of input rows lying in the padding. */
typedef struct {
    fc_range *col_range;
    real *zero_row;
} FC_FN(fc_direct_scratch);

static int FC_FN(scratch_init)(FC_FN(fc_direct_scratch) *scratch, fc_gather_geometry *gather)
{
    scratch->col_range = malloc((size_t)gather->kernel_w * sizeof(fc_range));
    scratch->zero_row = calloc((size_t)gather->in_w, sizeof(real));
    if (scratch->col_range == NULL || scratch->zero_row == NULL) {
        free(scratch->col_range);
        free(scratch->zero_row);
        return FC_ENOMEM;
    }
    fc_direct_fill_col_range(gather, scratch->col_range);
    gather->col_range = scratch->col_range;
    return FC_OK;
}

static void FC_FN(scratch_free)(FC_FN(fc_direct_scratch) *scratch)
{
    free(scratch->col_range);
    free(scratch->zero_row);
}

/* Copy `rows` image rows of `width` elements, from rows from_row_step apart to rows to_row_step apart, as
 * loops (FC_INLINE_LOOPS): a memcpy call per row of 10-28 elements cost more than the copy. */
static FC_INLINE_LOOPS void FC_FN(copy_rows)(real *to, fc_index to_row_step, const real *from,
                                             fc_index from_row_step, fc_index rows, fc_index width)
{
    for (fc_index h = 0; h < rows; h++)
        for (fc_index i = 0; i < width; i++)
            to[h * to_row_step + i] = from[h * from_row_step + i];
}

/* One row of `total` elements: `before` zeros, the `width` elements of from, zeros to the end (as loops). */
static FC_INLINE_LOOPS void FC_FN(copy_padded_row)(real *to, const real *from, fc_index before, fc_index width,
                                                   fc_index total)
{
    for (fc_index i = 0; i < before; i++)
        to[i] = 0;
    for (fc_index i = 0; i < width; i++)
        to[before + i] = from[i];
    for (fc_index i = before + width; i < total; i++)
        to[i] = 0;
}

/* ---- forward vectorised over output channels (kvec) -------------------------------------------- */

/* Weights packed for the vectorised kernels: [block][c'][r][s][block_width] (zero past out_ch), then
 * block_width biases per block (zero without a bias). kvec uses one block of k_pad channels
 * (wt[(c*R + r)*S + s][k]); wvec blocks of FC_WVEC_CHANNELS. The convolution run has out_ch output and in_ch
 * input channels: for a forward the layer's (weight[k'][c'][r][s]); `transposed` packs the grad_x form,
 * whose output channels are the layer's input channels: weight[c'][k'][R-1-r][S-1-s]. */
static real *FC_FN(pack_weights)(const fc_conv_shape *sh, const real *weight, const real *bias,
                                 int transposed, fc_index out_ch, fc_index in_ch, fc_index block_width)
{
    const fc_index kernel_h = sh->kernel_h, kernel_w = sh->kernel_w;
    const fc_index taps = in_ch * kernel_h * kernel_w;
    const fc_index blocks = (out_ch + block_width - 1) / block_width;
    real *packed = calloc((size_t)(blocks * (taps + 1) * block_width), sizeof(real));
    if (packed == NULL)
        return NULL;
    for (fc_index k = 0; k < out_ch; k++) {
        real *block = packed + k / block_width * taps * block_width + k % block_width;
        for (fc_index c = 0; c < in_ch; c++)
            for (fc_index r = 0; r < kernel_h; r++)
                for (fc_index s = 0; s < kernel_w; s++) {
                    const fc_index at = transposed
                        ? ((c * sh->in_channels + k) * kernel_h + kernel_h - 1 - r) * kernel_w + kernel_w - 1 - s
                        : ((k * in_ch + c) * kernel_h + r) * kernel_w + s;
                    block[((c * kernel_h + r) * kernel_w + s) * block_width] = weight[at];
                }
        packed[blocks * taps * block_width + k] = bias != NULL ? bias[k] : (real)0;
    }
    return packed;
}

/* Copy image `in` (C x H x W) into the interior of `padded` (laid out as geo describes), whose
 * border the caller zeroed once. */
static void FC_FN(kvec_copy_padded)(const fc_conv_shape *sh, const fc_kvec_geometry *geo, const real *in,
                                    real *padded)
{
    for (fc_index c = 0; c < sh->in_channels; c++)
        FC_FN(copy_rows)(padded + c * geo->in_channel_step + sh->pad_h * geo->in_row_step + sh->pad_w,
                         geo->in_row_step, in + c * sh->in_h * sh->in_w, sh->in_w, sh->in_h, sh->in_w);
}

static int FC_FN(forward_kvec)(const fc_ctx *ctx, const fc_conv_plan *plan, const fc_conv_shape *sh,
                               const real *x, const real *weight, const real *bias, real *y)
{
    /* whole K steps of a block (plan->channel_vectors vectors), so every weight load is in bounds */
    const fc_index k_pad = fc_plan_round_up(sh->out_channels, plan->lanes * plan->channel_vectors);
    const fc_index taps = sh->in_channels * sh->kernel_h * sh->kernel_w;
    const fc_index padded_h = sh->in_h + 2 * sh->pad_h, padded_w = sh->in_w + 2 * sh->pad_w;
    const int needs_copy = sh->pad_h > 0 || sh->pad_w > 0;
    real *packed = FC_FN(pack_weights)(sh, weight, bias, 0, sh->out_channels, sh->in_channels, k_pad);
    if (packed == NULL)
        return FC_ENOMEM;
    const fc_kvec_geometry geo = {
        sh->in_channels, sh->kernel_h, sh->kernel_w, sh->out_channels, sh->out_h, sh->out_w,
        padded_h * padded_w, padded_w, sh->stride_h * padded_w, k_pad, sh->stride_w,
    };
    const fc_index x_image = sh->in_channels * sh->in_h * sh->in_w;
    const fc_index y_image = sh->out_channels * sh->out_h * sh->out_w;
    int status = FC_OK;
    #pragma omp parallel num_threads(fc_direct_threads(ctx))
    {
        /* per-thread zero-bordered image: at most FC_DIRECT_IMAGE_COPY_MAX_BYTES (the plan's rule) */
        real *padded = needs_copy ? calloc((size_t)(sh->in_channels * geo.in_channel_step), sizeof(real)) : NULL;
        if (needs_copy && padded == NULL) {
            #pragma omp atomic write
            status = FC_ENOMEM;
        }
        #pragma omp for schedule(static)
        for (fc_index n = 0; n < sh->batch; n++) {
            if (needs_copy && padded == NULL)
                continue;
            const real *in = x + n * x_image;
            if (needs_copy) {
                FC_FN(kvec_copy_padded)(sh, &geo, in, padded);
                in = padded;
            }
            FC_DIRECT_SIMD(plan, fc_kvec_image)(&geo, in, packed, packed + taps * k_pad, y + n * y_image);
        }
        free(padded);
    }
    free(packed);
    return status;
}

/* ---- forward vectorised over output columns (wvec, wrows) --------------------------------------- */

/* Run wvec over a batch: `in` holds batch images of geo->channels x geo->in_h x in_w, `out` receives
 * batch images of geo->out_channels x out_h x out_w. Each thread copies its image into a zeroed
 * row-padded buffer (the borders and slack stay zero), then runs the kernel on it: wvec's (rows_kernel
 * 0: packed from pack_weights with blocks of FC_WVEC_CHANNELS, no padding rows in the copy) or the rows kernel
 * (rows_kernel 1: blocks of 1, and geo->pad_h zero rows above and below each channel, as
 * geo->in_channel_step counts them, so that it reads every row it needs without a test). */
static int FC_FN(run_wvec)(const fc_ctx *ctx, const fc_conv_plan *plan, const fc_wvec_geometry *geo,
                           fc_index batch, const real *in, fc_index in_w, fc_index pad_w, const real *packed,
                           real *out)
{
    const int rows_kernel = plan->kernel == FC_KERNEL_DIRECT_WROWS;
    const fc_index in_image = geo->channels * geo->in_h * in_w;
    const fc_index out_image = geo->out_channels * geo->out_h * geo->out_w;
    const fc_index taps = geo->channels * geo->kernel_h * geo->kernel_w;
    const fc_index block_width = rows_kernel ? 1 : FC_WVEC_CHANNELS;
    const real *bias = packed + (geo->out_channels + block_width - 1) / block_width * taps * block_width;
    const fc_index pad_rows = rows_kernel ? geo->pad_h : 0;
    const size_t buffer = (size_t)fc_wvec_image_elements(geo->channels, geo->in_h + 2 * pad_rows, in_w, pad_w,
                                                         (fc_index)sizeof(real));
    int status = FC_OK;
    #pragma omp parallel num_threads(fc_direct_threads(ctx))
    {
        real *padded = calloc(buffer, sizeof(real));
        if (padded == NULL) {
            #pragma omp atomic write
            status = FC_ENOMEM;
        }
        #pragma omp for schedule(static)
        for (fc_index n = 0; n < batch; n++) {
            if (padded == NULL)
                continue;
            const real *src = in + n * in_image;
            for (fc_index c = 0; c < geo->channels; c++)
                FC_FN(copy_rows)(padded + c * geo->in_channel_step + pad_rows * geo->in_row_step + pad_w,
                                 geo->in_row_step, src + c * geo->in_h * in_w, in_w, geo->in_h, in_w);
            if (rows_kernel)
                FC_DIRECT_SIMD(plan, fc_wrows_image)(geo, padded, packed, bias, out + n * out_image);
            else
                FC_DIRECT_SIMD(plan, fc_wvec_image)(geo, padded, packed, bias, out + n * out_image);
        }
        free(padded);
    }
    return status;
}

static int FC_FN(forward_wvec)(const fc_ctx *ctx, const fc_conv_plan *plan, const fc_conv_shape *sh,
                               const real *x, const real *weight, const real *bias, real *y)
{
    const fc_index row_step = sh->in_w + 2 * sh->pad_w;
    const fc_wvec_geometry geo = {
        sh->in_channels, sh->kernel_h, sh->kernel_w, sh->out_channels, sh->out_h, sh->out_w,
        sh->in_h, sh->pad_h, sh->stride_h, sh->in_h * row_step, row_step,
    };
    /* (the rows kernel, tried here for LeNet's C1, took 0.140 ms against wvec's 0.136: 2 threads, AVX2,
     * built with Python's flags) */
    real *packed = FC_FN(pack_weights)(sh, weight, bias, 0, sh->out_channels, sh->in_channels, FC_WVEC_CHANNELS);
    if (packed == NULL)
        return FC_ENOMEM;
    const int status = FC_FN(run_wvec)(ctx, plan, &geo, sh->batch, x, sh->in_w, sh->pad_w, packed, y);
    free(packed);
    return status;
}

/* grad_x as a forward convolution of grad_y (wvec or wrows, as the plan says). */
static int FC_FN(grad_x_wvec)(const fc_ctx *ctx, const fc_conv_plan *plan, const fc_conv_shape *sh,
                              const real *grad_y, const real *weight, real *grad_x)
{
    const fc_index pad_h = sh->kernel_h - 1 - sh->pad_h, pad_w = sh->kernel_w - 1 - sh->pad_w;
    const fc_index row_step = sh->out_w + 2 * pad_w;
    const int rows_kernel = plan->kernel == FC_KERNEL_DIRECT_WROWS;
    const fc_index padded_h = sh->out_h + (rows_kernel ? 2 * pad_h : 0);
    const fc_wvec_geometry geo = {
        sh->out_channels, sh->kernel_h, sh->kernel_w, sh->in_channels, sh->in_h, sh->in_w,
        sh->out_h, pad_h, 1, padded_h * row_step, row_step,
    };
    real *packed = FC_FN(pack_weights)(sh, weight, NULL, 1, sh->in_channels, sh->out_channels,
                                       rows_kernel ? 1 : FC_WVEC_CHANNELS);
    if (packed == NULL)
        return FC_ENOMEM;
    const int status = FC_FN(run_wvec)(ctx, plan, &geo, sh->batch, grad_y, sh->out_w, pad_w, packed, grad_x);
    free(packed);
    return status;
}

/* ---- grad_w vectorised over output channels (kvgw) ----------------------------------------------- */

/* One thread's copy of its chunk: dyt[k / lanes - vec_lo][n][p][k % lanes] = grad_y[n][k][p] for the
 * vectors of output channels its tasks read (lanes k >= K zero), so that each task reads one contiguous
 * slice of count * out_h*out_w vectors, with gb_acc (NULL: no grad_b) of the vectors [bias_lo, bias_hi)
 * summed on the way, while dy is in registers (a pass of its own over grad_y took 8% of vgg-ish's grad_w +
 * grad_b, 1 thread; one over dyt, 1.3% of the strided backward); and, if padded, the input channels its
 * tasks read, copied into the interior of xpad (border zeroed once). Each channel's grad_b sums over n,
 * then p, in increasing order: chunks and threads do not change it. */
static void FC_FN(kvgw_copy_chunk)(const fc_conv_plan *plan, const fc_conv_shape *sh, const fc_kvgw_layout *lay,
                                   const fc_kvgw_share *share, const real *grad_y_chunk, const real *x_chunk,
                                   fc_index count, real *dyt, real *xpad, real *gb_acc)
{
    const fc_index out_plane = sh->out_h * sh->out_w, lanes = lay->lanes;
    for (fc_index n = 0; n < count; n++)
        for (fc_index v = share->vec_lo; v < share->vec_hi && v * lanes < sh->out_channels; v++) {
            const fc_index left = sh->out_channels - v * lanes;
            const real *src = grad_y_chunk + (n * sh->out_channels + v * lanes) * out_plane;
            real *dst = dyt + ((v - share->vec_lo) * count + n) * lay->geo.dyt_image;
            const int sums_v = gb_acc != NULL && v >= share->bias_lo && v < share->bias_hi;
            FC_DIRECT_SIMD(plan, fc_kvgw_transpose)(src, out_plane, (int)(left < lanes ? left : lanes), out_plane,
                                                    dst, sums_v ? gb_acc + v * lanes : NULL);
        }
    if (xpad == NULL)
        return;
    const fc_index row_step = lay->geo.in_row_step, copied = share->c_hi - share->c_lo;
    for (fc_index n = 0; n < count; n++)
        for (fc_index c = share->c_lo; c < share->c_hi; c++) {
            const real *src = x_chunk + (n * sh->in_channels + c) * sh->in_h * sh->in_w;
            real *dst = xpad + (n * copied + c - share->c_lo) * lay->channel_step + sh->pad_h * row_step + sh->pad_w;
            FC_FN(copy_rows)(dst, row_step, src, sh->in_w, sh->in_h, sh->in_w);
        }
}

/* One thread's share of kvgw's tasks over the whole batch, in chunks of images sized to its own
 * scratch (FC_KVGW_THREAD_SCRATCH_BYTES): it copies what its tasks read and nothing else, so no
 * other core writes the data it reads and it meets no barrier until the end. The chunk size does not
 * change a result: each task carries its sums from chunk to chunk in gw_acc (fc_kvgw_task_fn). */
static int FC_FN(kvgw_thread)(const fc_conv_plan *plan, const fc_conv_shape *sh, const fc_kvgw_layout *lay,
                              const fc_kvgw_share *share, const real *grad_y, const real *x, real *gw_acc,
                              real *gb_acc)
{
    const fc_index channels = sh->in_channels, kernel_h = sh->kernel_h, kernel_w = sh->kernel_w;
    const fc_index lanes = lay->lanes, group_lanes = lay->group_vectors * lanes, row_blocks = lay->row_blocks;
    const fc_index vectors = share->vec_hi - share->vec_lo, copied = share->c_hi - share->c_lo;
    const fc_index x_image = channels * sh->in_h * sh->in_w, grad_y_image = sh->out_channels * sh->out_h * sh->out_w;
    fc_kvgw_geometry geo = lay->geo;
    const int copy_x = lay->padded && gw_acc != NULL;   /* grad_b alone reads dy only */
    if (lay->padded)
        geo.x_image = copied * lay->channel_step;   /* this thread's copy holds its channels only */
    const fc_index per_image = vectors * geo.dyt_image + (copy_x ? geo.x_image : 0);
    fc_index chunk = FC_KVGW_THREAD_SCRATCH_BYTES / (fc_index)sizeof(real) / per_image;
    chunk = chunk < 1 ? 1 : (chunk > sh->batch ? sh->batch : chunk);
    real *dyt = calloc((size_t)(chunk * vectors * geo.dyt_image), sizeof(real));
    real *xpad = copy_x ? calloc((size_t)(chunk * geo.x_image), sizeof(real)) : NULL;
    if (dyt == NULL || (copy_x && xpad == NULL)) {
        free(dyt);
        free(xpad);
        return FC_ENOMEM;
    }
    for (fc_index first = 0; first < sh->batch; first += chunk) {
        const fc_index count = sh->batch - first < chunk ? sh->batch - first : chunk;
        const fc_index vector_step = count * geo.dyt_image;
        FC_FN(kvgw_copy_chunk)(plan, sh, lay, share, grad_y + first * grad_y_image, x + first * x_image, count, dyt,
                               xpad, gb_acc);
        const real *x_chunk = copy_x ? xpad : x + first * x_image;
        const fc_index c_first = copy_x ? share->c_lo : 0;   /* the first channel x_chunk holds */
        for (fc_index task = share->task_lo; task < share->task_hi && gw_acc != NULL; task++) {
            const fc_index group = task / (channels * row_blocks);
            const fc_index c = task / row_blocks % channels, block = task % row_blocks;
            const fc_index r0 = block * kernel_h / row_blocks, r1 = (block + 1) * kernel_h / row_blocks;
            const fc_index k0 = group * group_lanes;
            /* vectors of this group holding real channels: the last group may have fewer */
            const fc_index left = (sh->out_channels - k0 + lanes - 1) / lanes;
            const int kv = (int)(left < lay->group_vectors ? left : lay->group_vectors);
            const real *x_task = x_chunk + (c - c_first) * lay->channel_step + r0 * geo.in_row_step;
            const real *dyt_task = dyt + (k0 / lanes - share->vec_lo) * vector_step;
            real *acc_task = gw_acc + (c * kernel_h + r0) * kernel_w * geo.k_pad + k0;
            FC_DIRECT_SIMD(plan, fc_kvgw_task)(&geo, x_task, dyt_task, vector_step, count, first == 0,
                                               acc_task, kv, (int)(r1 - r0));
        }
    }
    free(dyt);
    free(xpad);
    return FC_OK;
}

/* The tasks (group of output channel vectors, input channel c, block of kernel rows), group-major, cut
 * into one contiguous run per thread. Each task owns its gw_acc entries (whole cache lines: a group is
 * 64 bytes of lanes at every level), so threads write nothing in common, and each entry is the sum of
 * one task in a fixed order: the thread count does not change a result. (The previous form, one
 * parallel region per chunk with the copies shared out, moved each chunk's copies between the cores
 * and met two barriers per chunk: see docs/performance.md.) */
static int FC_FN(grad_w_kvec)(const fc_ctx *ctx, const fc_conv_plan *plan, const fc_conv_shape *sh,
                              const real *grad_y, const real *x, real *grad_w, real *grad_b)
{
    const fc_index lanes = plan->lanes, group_vectors = plan->channel_vectors;
    const fc_index k_pad = fc_plan_round_up(sh->out_channels, group_vectors * lanes);
    const fc_index channels = sh->in_channels, kernel_h = sh->kernel_h, kernel_w = sh->kernel_w;
    const int padded = sh->pad_h > 0 || sh->pad_w > 0;
    const fc_index padded_w = sh->in_w + 2 * sh->pad_w;
    const fc_index row_step = padded ? padded_w : sh->in_w;
    const fc_index channel_step = padded ? (sh->in_h + 2 * sh->pad_h) * padded_w : sh->in_h * sh->in_w;
    const fc_index max_taps = plan->kvgw_accumulators / group_vectors;
    fc_index max_rows = max_taps / kernel_w;
    max_rows = max_rows > FC_KVGW_MAX_ROWS ? FC_KVGW_MAX_ROWS : max_rows;
    const fc_index row_blocks = (kernel_h + max_rows - 1) / max_rows;
    const fc_index tasks = (k_pad / (group_vectors * lanes)) * channels * row_blocks;
    const fc_index taps = channels * kernel_h * kernel_w;
    const fc_kvgw_layout lay = {
        { kernel_w, sh->out_h, sh->out_w, sh->stride_h, sh->stride_w, row_step, channels * channel_step,
          sh->out_h * sh->out_w * lanes, k_pad },
        lanes, group_vectors, row_blocks, channel_step, padded,
    };
    /* [c][r][s][k_pad] and [k_pad], 64-byte aligned */
    real *gw_acc = grad_w != NULL ? fc_gemm_alloc((size_t)(taps * k_pad) * sizeof(real)) : NULL;
    real *gb_acc = grad_b != NULL ? fc_gemm_alloc((size_t)k_pad * sizeof(real)) : NULL;
    if ((grad_w != NULL && gw_acc == NULL) || (grad_b != NULL && gb_acc == NULL)) {
        free(gw_acc);
        free(gb_acc);
        return FC_ENOMEM;
    }
    if (gb_acc != NULL)
        memset(gb_acc, 0, (size_t)k_pad * sizeof(real));
    int status = FC_OK;
    #pragma omp parallel num_threads(fc_direct_threads(ctx))
    {
        const fc_kvgw_share share = fc_kvgw_share_of(&lay, tasks, channels, fc_thread_id(),
                                                     fc_team_size());
        if (share.task_lo < share.task_hi
            && FC_FN(kvgw_thread)(plan, sh, &lay, &share, grad_y, x, gw_acc, gb_acc) != FC_OK) {
            #pragma omp atomic write
            status = FC_ENOMEM;
        }
        #pragma omp barrier
        #pragma omp for schedule(static)
        for (fc_index k = 0; k < sh->out_channels; k++) {
            for (fc_index t = 0; t < taps && grad_w != NULL; t++)
                grad_w[k * taps + t] = gw_acc[t * k_pad + k];
            if (grad_b != NULL)
                grad_b[k] = gb_acc[k];
        }
    }
    free(gw_acc);
    free(gb_acc);
    return status;
}

/* ---- grad_w vectorised over output columns (wvgw) ------------------------------------------------ */

/* grad_w and/or grad_b (either may be NULL). grad_b comes from units of its own per chunk of images,
 * run right after the chunk's grad_w units (same thread, dy still in its cache, not read once more from
 * memory), and alone the same way: the same sums whether grad_w is computed or not. */
static int FC_FN(grad_w_wvgw)(const fc_ctx *ctx, const fc_conv_plan *plan, const fc_conv_shape *sh,
                              const real *grad_y, const real *x, real *grad_w, real *grad_b)
{
    const fc_index channels = sh->in_channels, kernel_h = sh->kernel_h, kernel_w = sh->kernel_w;
    const fc_index row_step = fc_wvgw_row_step(sh, plan->lanes), x_image = channels * sh->in_h * row_step;
    const fc_index kb_max = plan->wvgw_channels;
    const fc_index k_blocks = (sh->out_channels + kb_max - 1) / kb_max;
    const fc_index taps = sh->out_channels * channels * kernel_h * kernel_w;
    const fc_index tasks = grad_w != NULL ? channels * k_blocks * kernel_h : 0;
    const fc_index units = tasks + (grad_b != NULL ? k_blocks : 0);   /* per chunk */
    const fc_index sums_step = taps + sh->out_channels;                 /* partial sums per chunk */
    fc_index pass_images = FC_WVGW_SCRATCH_BYTES / (fc_index)sizeof(real) / x_image;
    const fc_index chunk = pass_images < FC_WVGW_CHUNK ? pass_images : FC_WVGW_CHUNK;
    pass_images = pass_images / chunk * chunk;
    if (pass_images > (sh->batch + chunk - 1) / chunk * chunk)
        pass_images = (sh->batch + chunk - 1) / chunk * chunk;
    const fc_index pass_chunks = pass_images / chunk;
    const fc_wvgw_geometry geo = {
        sh->out_w, sh->stride_h * row_step, x_image, sh->out_h * sh->out_w,
        sh->out_channels * sh->out_h * sh->out_w, channels * kernel_h * kernel_w,
    };
    fc_range *row_range = malloc((size_t)kernel_h * sizeof(fc_range));
    real *xr = grad_w != NULL ? malloc((size_t)(pass_images * x_image) * sizeof(real)) : NULL;
    real *partial = malloc((size_t)(pass_chunks * sums_step) * sizeof(real));
    if (row_range == NULL || (grad_w != NULL && xr == NULL) || partial == NULL) {
        free(row_range);
        free(xr);
        free(partial);
        return FC_ENOMEM;
    }
    for (fc_index r = 0; r < kernel_h; r++)
        row_range[r] = fc_direct_valid_range(sh->out_h, sh->in_h, sh->stride_h, sh->pad_h, r);
    if (grad_w != NULL)
        memset(grad_w, 0, (size_t)taps * sizeof(real));
    if (grad_b != NULL)
        memset(grad_b, 0, (size_t)sh->out_channels * sizeof(real));
    for (fc_index first = 0; first < sh->batch; first += pass_images) {
        const fc_index count = sh->batch - first < pass_images ? sh->batch - first : pass_images;
        const fc_index chunks = (count + chunk - 1) / chunk;
        #pragma omp parallel num_threads(fc_direct_threads(ctx))
        {
            #pragma omp for schedule(static)
            for (fc_index row = 0; row < (grad_w != NULL ? count * channels * sh->in_h : 0); row++) {
                real *xr_row = xr + row * row_step;   /* pad_w zeros, the row, zeros up to row_step */
                FC_FN(copy_padded_row)(xr_row, x + (first * channels * sh->in_h + row) * sh->in_w, sh->pad_w,
                                       sh->in_w, row_step);
            }
            #pragma omp for schedule(static)
            for (fc_index unit = 0; unit < chunks * units; unit++) {
                const fc_index at = unit / units, task = unit % units;
                const fc_index n0 = at * chunk, images = count - n0 < chunk ? count - n0 : chunk;
                if (task >= tasks) {   /* grad_b of a block of channels */
                    const fc_index k0 = (task - tasks) * kb_max;
                    const int kb = (int)(sh->out_channels - k0 < kb_max ? sh->out_channels - k0 : kb_max);
                    const real *dy_block = grad_y + (first + n0) * geo.dy_image + k0 * geo.dy_plane;
                    real *sums = partial + at * sums_step + taps + k0;
                    FC_DIRECT_SIMD(plan, fc_wvgw_bias)(&geo, dy_block, images, sh->out_h, sums, kb);
                    continue;
                }
                const fc_index c = task / (k_blocks * kernel_h), k0 = task / kernel_h % k_blocks * kb_max;
                const fc_index r = task % kernel_h;
                const fc_range rows = row_range[r];
                const fc_index ih = rows.lo * sh->stride_h - sh->pad_h + r;   /* x row of the first oh */
                const int kb = (int)(sh->out_channels - k0 < kb_max ? sh->out_channels - k0 : kb_max);
                const real *x_task = xr + (n0 * channels + c) * sh->in_h * row_step + ih * row_step;
                const real *dy_task = grad_y + (first + n0) * geo.dy_image + k0 * geo.dy_plane + rows.lo * sh->out_w;
                real *sums = partial + at * sums_step + ((k0 * channels + c) * kernel_h + r) * kernel_w;
                FC_DIRECT_SIMD(plan, fc_wvgw_task)(&geo, x_task, dy_task, images, rows.hi - rows.lo, sums, kb,
                                                   (int)kernel_w);
            }
            #pragma omp for schedule(static)
            for (fc_index t = 0; t < sums_step; t++) {
                real *total = t < taps ? (grad_w != NULL ? grad_w + t : NULL) : (grad_b != NULL ? grad_b + t - taps : NULL);
                for (fc_index at = 0; at < chunks && total != NULL; at++)
                    *total += partial[at * sums_step + t];
            }
        }
    }
    free(row_range);
    free(xr);
    free(partial);
    return FC_OK;
}

int FC_FN(fc_conv2d_forward_direct)(const fc_ctx *ctx, const fc_conv_shape *shape, const real *x,
                                    const real *weight, const real *bias, real *y)
{
    if (!fc_direct_shape_ok(ctx, shape) || x == NULL || weight == NULL || y == NULL)
        return FC_EINVAL;
    const fc_conv_plan plan = fc_conv_plan_forward(ctx, shape, FC_ALGO_DIRECT, FC_DTYPE);
    if (plan.kernel == FC_KERNEL_DIRECT_WVEC)
        return FC_FN(forward_wvec)(ctx, &plan, shape, x, weight, bias, y);
    if (plan.kernel == FC_KERNEL_DIRECT_KVEC)
        return FC_FN(forward_kvec)(ctx, &plan, shape, x, weight, bias, y);
    fc_gather_geometry gather = fc_direct_forward_gather(shape);
    FC_FN(fc_direct_scratch) scratch;
    if (FC_FN(scratch_init)(&scratch, &gather) != FC_OK)
        return FC_ENOMEM;
    const fc_index planes = shape->batch * shape->out_channels;
    const fc_index x_image = shape->in_channels * shape->in_h * shape->in_w;
    const fc_index w_filter = shape->in_channels * shape->kernel_h * shape->kernel_w;
    const fc_index y_plane = shape->out_h * shape->out_w;
    #pragma omp parallel for num_threads(fc_direct_threads(ctx)) schedule(static)
    for (fc_index p = 0; p < planes; p++) {
        const fc_index n = p / shape->out_channels, k = p % shape->out_channels;
        FC_FN(gather_plane)(&plan, &gather, x + n * x_image, weight + k * w_filter,
                            bias != NULL ? bias[k] : (real)0, scratch.zero_row, y + p * y_plane);
    }
    FC_FN(scratch_free)(&scratch);
    return FC_OK;
}

static int FC_FN(grad_x_direct)(const fc_ctx *ctx, const fc_conv_shape *sh, const real *grad_y,
                                const real *weight, real *grad_x)
{
    const fc_conv_plan plan = fc_conv_plan_grad_x(ctx, sh, FC_ALGO_DIRECT, FC_DTYPE);
    if (plan.kernel == FC_KERNEL_DIRECT_WVEC || plan.kernel == FC_KERNEL_DIRECT_WROWS)
        return FC_FN(grad_x_wvec)(ctx, &plan, sh, grad_y, weight, grad_x);
    const int unit_stride = plan.kernel != FC_KERNEL_DIRECT_SCATTER;   /* the gather, stride 1 */
    fc_gather_geometry gather = unit_stride ? fc_direct_grad_x_gather(sh) : fc_direct_forward_gather(sh);
    FC_FN(fc_direct_scratch) scratch;
    if (FC_FN(scratch_init)(&scratch, &gather) != FC_OK)
        return FC_ENOMEM;
    const fc_index planes = sh->batch * sh->in_channels;
    const fc_index kernel_size = sh->kernel_h * sh->kernel_w;
    const fc_index grad_y_image = sh->out_channels * sh->out_h * sh->out_w;
    const fc_index x_plane = sh->in_h * sh->in_w;
    /* weight[0][c][R-1][S-1]: the flipped kernel's tap (0, 0) for channel c */
    const fc_index flip_origin = (sh->kernel_h - 1) * sh->kernel_w + sh->kernel_w - 1;
    #pragma omp parallel for num_threads(fc_direct_threads(ctx)) schedule(static)
    for (fc_index p = 0; p < planes; p++) {
        const fc_index n = p / sh->in_channels, c = p % sh->in_channels;
        if (unit_stride)
            FC_FN(gather_plane)(&plan, &gather, grad_y + n * grad_y_image,
                                weight + c * kernel_size + flip_origin, (real)0, scratch.zero_row,
                                grad_x + p * x_plane);
        else
            FC_FN(fc_scatter_plane)(sh, gather.col_range, grad_y + n * grad_y_image,
                                    weight + c * kernel_size, grad_x + p * x_plane);
    }
    FC_FN(scratch_free)(&scratch);
    return FC_OK;
}

/* grad_w with the dot tasks: one task per (k, c, r), each owning grad_w[k][c][r][:] (enough tasks to
 * keep every thread busy even with one input channel), summing over n in a fixed order. */
static int FC_FN(grad_w_dot)(const fc_ctx *ctx, const fc_conv_plan *plan, const fc_conv_shape *sh,
                             const real *grad_y, const real *x, real *grad_w)
{
    fc_range *col_range = malloc((size_t)sh->kernel_w * sizeof(fc_range));
    fc_range *row_range = malloc((size_t)sh->kernel_h * sizeof(fc_range));
    if (col_range == NULL || row_range == NULL) {
        free(col_range);
        free(row_range);
        return FC_ENOMEM;
    }
    for (fc_index s = 0; s < sh->kernel_w; s++)
        col_range[s] = fc_direct_valid_range(sh->out_w, sh->in_w, sh->stride_w, sh->pad_w, s);
    for (fc_index r = 0; r < sh->kernel_h; r++)
        row_range[r] = fc_direct_valid_range(sh->out_h, sh->in_h, sh->stride_h, sh->pad_h, r);
    const fc_index tasks = sh->out_channels * sh->in_channels * sh->kernel_h;
    #pragma omp parallel for num_threads(fc_direct_threads(ctx)) schedule(static)
    for (fc_index t = 0; t < tasks; t++) {
        const fc_index r = t % sh->kernel_h;
        const fc_index c = (t / sh->kernel_h) % sh->in_channels;
        const fc_index k = t / (sh->kernel_h * sh->in_channels);
        FC_FN(grad_w_task)(plan, sh, col_range, row_range[r], grad_y, x, k, c, r,
                           grad_w + t * sh->kernel_w);
    }
    free(col_range);
    free(row_range);
    return FC_OK;
}

int FC_FN(fc_conv2d_backward_direct)(const fc_ctx *ctx, const fc_conv_shape *shape,
                                     const real *grad_y, const real *x, const real *weight,
                                     real *grad_x, real *grad_w, real *grad_b)
{
    if (!fc_direct_shape_ok(ctx, shape) || grad_y == NULL)
        return FC_EINVAL;
    if ((grad_x != NULL && weight == NULL) || (grad_w != NULL && x == NULL))
        return FC_EINVAL;
    int status = FC_OK;
    if (grad_x != NULL)
        status = FC_FN(grad_x_direct)(ctx, shape, grad_y, weight, grad_x);
    if (status != FC_OK || (grad_w == NULL && grad_b == NULL))
        return status;
    const fc_conv_plan plan = fc_conv_plan_grad_w(ctx, shape, FC_ALGO_DIRECT, FC_DTYPE);
    switch (plan.kernel) {
    case FC_KERNEL_DIRECT_WVGW:   /* grad_w and grad_b together */
        return FC_FN(grad_w_wvgw)(ctx, &plan, shape, grad_y, x, grad_w, grad_b);
    case FC_KERNEL_DIRECT_KVGW:   /* grad_w and grad_b together, either may be NULL */
        return FC_FN(grad_w_kvec)(ctx, &plan, shape, grad_y, x, grad_w, grad_b);
    default:
        if (grad_w != NULL)
            status = FC_FN(grad_w_dot)(ctx, &plan, shape, grad_y, x, grad_w);
    }
    if (status == FC_OK && grad_b != NULL) {
        #pragma omp parallel for num_threads(fc_direct_threads(ctx)) schedule(static)
        for (fc_index k = 0; k < shape->out_channels; k++)
            grad_b[k] = FC_FN(fc_grad_b_one)(shape, grad_y, k);
    }
    return status;
}
#endif
