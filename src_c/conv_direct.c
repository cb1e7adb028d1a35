/*
 * conv_direct.c -- 2-D convolution computed straight from the input, without an im2col buffer.
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
 * Padding is never materialised: for each kernel column s the range of output columns whose input
 * column lies inside the image is computed once per call (col_range), and for each kernel row the
 * range of output rows (row_range), so inner loops run branch-free over contiguous memory.
 *
 * Determinism: every output element is owned by one loop iteration and summed in a fixed order
 * (bias, then ch, r, s for the gathers; n, oh, ow lanes for grad_w), so results depend on the SIMD
 * level (the AVX levels use FMA, the portable level cannot) but never on ctx->num_threads.
 *
 * File layout: this file is read in three nested passes.
 *   1. (no FC_TEMPLATE_PASS) type-independent geometry, then fc_template.h includes the file as
 *   2. (FC_TEMPLATE_PASS, once for float, once for double) portable kernels and the public drivers;
 *      on x86 this pass includes the file again as
 *   3. (FC_VEC_LEVEL = FC_VEC_AVX512, then FC_VEC_AVX2) explicit vector kernels, written once
 *      against simd_vec.h's fcv_* vocabulary.
 */
#if !defined(FC_TEMPLATE_PASS)
/* ============================== pass 1: type-independent ====================================== */
#include <stdlib.h>
#include <string.h>
#include "conv_plan.h"
#include "simd_vec.h"

/* Blocking parameters of the SIMD gather kernel (registers: rows x vectors accumulators). */
#define FC_DIRECT_ROWS_NARROW 8   /* output rows per block when one vector covers the row */
#define FC_DIRECT_ROWS_WIDE 4     /* output rows per block when two vectors cover (part of) a row */
#define FC_DIRECT_MAX_VECS 2
/* Independent partial sums of the portable reductions (lets the compiler vectorise them). */
#define FC_DIRECT_LANES 8

/* Half-open range [lo, hi) of indices. */
typedef struct {
    fc_index lo, hi;
} fc_range;

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

/* One output plane as a sum over input channels of shifted, strided input planes. */
typedef struct {
    fc_index channels;                      /* input channels summed over */
    fc_index in_h, in_w, out_h, out_w;
    fc_index kernel_h, kernel_w, stride_h, stride_w;
    fc_index pad_h, pad_w;                  /* may be negative (a crop) */
    fc_index in_channel_step;               /* elements between two input channels */
    fc_index w_channel_step, w_row_step, w_col_step;   /* tap (ch, r, s) at w[ch*. + r*. + s*.] */
    const fc_range *col_range;              /* [kernel_w]: output columns valid for tap s */
} fc_gather_geometry;

static void fc_direct_fill_col_range(const fc_gather_geometry *gather, fc_range *col_range)
{
    for (fc_index s = 0; s < gather->kernel_w; s++)
        col_range[s] = fc_direct_valid_range(gather->out_w, gather->in_w, gather->stride_w, gather->pad_w, s);
}

/* Forward: plane (n, k) of y = sum over c of x[n] planes with weight[k]. */
static fc_gather_geometry fc_direct_forward_gather(const fc_conv_shape *sh)
{
    fc_gather_geometry gather;
    gather.channels = sh->in_channels;
    gather.in_h = sh->in_h;
    gather.in_w = sh->in_w;
    gather.out_h = sh->out_h;
    gather.out_w = sh->out_w;
    gather.kernel_h = sh->kernel_h;
    gather.kernel_w = sh->kernel_w;
    gather.stride_h = sh->stride_h;
    gather.stride_w = sh->stride_w;
    gather.pad_h = sh->pad_h;
    gather.pad_w = sh->pad_w;
    gather.in_channel_step = sh->in_h * sh->in_w;
    gather.w_channel_step = sh->kernel_h * sh->kernel_w;
    gather.w_row_step = sh->kernel_w;
    gather.w_col_step = 1;
    gather.col_range = NULL;
    return gather;
}

/* grad_x for stride 1: plane (n, c) of grad_x = sum over k of grad_y[n] planes correlated with
 * weight[:, c] flipped in r and s (the caller points w at weight[0][c][R-1][S-1]). */
static fc_gather_geometry fc_direct_grad_x_gather(const fc_conv_shape *sh)
{
    fc_gather_geometry gather;
    gather.channels = sh->out_channels;
    gather.in_h = sh->out_h;
    gather.in_w = sh->out_w;
    gather.out_h = sh->in_h;
    gather.out_w = sh->in_w;
    gather.kernel_h = sh->kernel_h;
    gather.kernel_w = sh->kernel_w;
    gather.stride_h = 1;
    gather.stride_w = 1;
    gather.pad_h = sh->kernel_h - 1 - sh->pad_h;
    gather.pad_w = sh->kernel_w - 1 - sh->pad_w;
    gather.in_channel_step = sh->out_h * sh->out_w;
    gather.w_channel_step = sh->in_channels * sh->kernel_h * sh->kernel_w;
    gather.w_row_step = -sh->kernel_w;
    gather.w_col_step = -1;
    gather.col_range = NULL;
    return gather;
}

/* Geometry of the kvec forward kernel (pass 3): the padded input image and the packed weights. */
#define FC_KVEC_MAX_COLS 12       /* output columns per register block */
typedef struct {
    fc_index channels, kernel_h, kernel_w, out_channels, out_h, out_w;
    fc_index in_channel_step, in_row_step;  /* of the (padded) input image */
    fc_index block_row_step;                /* stride_h * in_row_step: next output row's input */
    fc_index k_pad;                         /* out_channels rounded up to whole K steps of a block */
    fc_index stride_w;                      /* next output column's input */
} fc_kvec_geometry;

/* Geometry of the wvec and wrows kernels (pass 3): a stride_w 1 convolution vectorised over output
 * columns. The input image has rows padded horizontally (pad_w zeros each side, then slack so that the
 * lanes past out_w read inside the buffer); wvec skips input rows above or below the image, wrows' copy
 * holds them as zero rows. Weights packed [channel block][c][r][s][block width]. */
typedef struct {
    fc_index channels, kernel_h, kernel_w, out_channels, out_h, out_w;
    fc_index in_h, pad_h, stride_h;         /* input rows [0, in_h) are real; oh*stride_h - pad_h + r */
    fc_index in_channel_step, in_row_step;  /* of the row-padded image (the rows kernel: padded rows too) */
} fc_wvec_geometry;

/* Geometry of the kvgw kernel (pass 3): dy transposed per channel vector, x with its border. */
typedef struct {
    fc_index kernel_w, out_h, out_w, stride_h, stride_w;
    fc_index in_row_step;       /* of the (padded) x image */
    fc_index x_image;           /* elements between two images of the (padded) x chunk */
    fc_index dyt_image;         /* out_h * out_w * lanes: one image's pixels for one vector of channels */
    fc_index k_pad;             /* out_channels rounded up to a multiple of the lanes */
} fc_kvgw_geometry;

/* Geometry of the wvgw kernel (pass 3): x copied with pad_w zero columns on the left and zeros on the
 * right up to row_step (fc_wvgw_row_step); rows in the vertical padding are skipped, not copied. */
typedef struct {
    fc_index out_w;
    fc_index x_oh_step;         /* stride_h * row_step: the next output row's x row */
    fc_index x_image;           /* elements between two images of the copied x */
    fc_index dy_plane, dy_image;
    fc_index sum_k_step;        /* elements of grad_w between two output channels (C*R*S) */
} fc_wvgw_geometry;

static int fc_direct_threads(const fc_ctx *ctx)
{
    return ctx->num_threads >= 1 ? ctx->num_threads : 1;
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

#elif !defined(FC_VEC_LEVEL)
/* ============================== pass 2: one element type ====================================== */

/* ---- portable kernels (any CPU; the compiler vectorises the contiguous inner loops) ---------- */

/* Add tap row (ch, r) of the gather into one output row: out_row[ow] += w(ch,r,s) * in_row[...]. */
static void FC_FN(gather_tap_row_portable)(const fc_gather_geometry *gather, const real *restrict in_row,
                                           const real *w_row, real *restrict out_row)
{
    for (fc_index s = 0; s < gather->kernel_w; s++) {
        const fc_range cols = gather->col_range[s];
        const real weight = w_row[s * gather->w_col_step];
        const fc_index shift = s - gather->pad_w;
        if (gather->stride_w == 1) {
            for (fc_index ow = cols.lo; ow < cols.hi; ow++)
                out_row[ow] += weight * in_row[ow + shift];
        } else {
            const fc_index stride = gather->stride_w;
            for (fc_index ow = cols.lo; ow < cols.hi; ow++)
                out_row[ow] += weight * in_row[ow * stride + shift];
        }
    }
}

static void FC_FN(gather_plane_portable)(const fc_gather_geometry *gather, const real *in, const real *w,
                                         real bias, real *out)
{
    for (fc_index oh = 0; oh < gather->out_h; oh++) {
        real *out_row = out + oh * gather->out_w;
        for (fc_index ow = 0; ow < gather->out_w; ow++)
            out_row[ow] = bias;
        for (fc_index ch = 0; ch < gather->channels; ch++) {
            for (fc_index r = 0; r < gather->kernel_h; r++) {
                const fc_index ih = oh * gather->stride_h - gather->pad_h + r;
                if (ih < 0 || ih >= gather->in_h)
                    continue;
                FC_FN(gather_tap_row_portable)(gather, in + ch * gather->in_channel_step + ih * gather->in_w,
                                               w + ch * gather->w_channel_step + r * gather->w_row_step,
                                               out_row);
            }
        }
    }
}

/* grad_x plane (n, c) for any stride: zero it, then scatter every grad_y[n][k] element back over
 * the input positions it was computed from. col_range is the forward one (valid ow per s). */
static void FC_FN(scatter_plane)(const fc_conv_shape *sh, const fc_range *col_range,
                                 const real *grad_y_n, const real *weight_c, real *restrict grad_x_plane)
{
    const fc_index kernel_size = sh->kernel_h * sh->kernel_w;
    const fc_index weight_k_step = sh->in_channels * kernel_size;
    memset(grad_x_plane, 0, (size_t)(sh->in_h * sh->in_w) * sizeof(real));
    for (fc_index k = 0; k < sh->out_channels; k++) {
        const real *grad_y_k = grad_y_n + k * sh->out_h * sh->out_w;
        const real *weight_kc = weight_c + k * weight_k_step;
        for (fc_index oh = 0; oh < sh->out_h; oh++) {
            const real *restrict grad_y_row = grad_y_k + oh * sh->out_w;
            for (fc_index r = 0; r < sh->kernel_h; r++) {
                const fc_index ih = oh * sh->stride_h - sh->pad_h + r;
                if (ih < 0 || ih >= sh->in_h)
                    continue;
                real *restrict grad_x_row = grad_x_plane + ih * sh->in_w;
                for (fc_index s = 0; s < sh->kernel_w; s++) {
                    const real weight = weight_kc[r * sh->kernel_w + s];
                    const fc_index shift = s - sh->pad_w;
                    for (fc_index ow = col_range[s].lo; ow < col_range[s].hi; ow++)
                        grad_x_row[ow * sh->stride_w + shift] += weight * grad_y_row[ow];
                }
            }
        }
    }
}

/* grad_w[k][c][r][:]: for each s, sum over n and the valid (oh, ow) of grad_y * x, accumulated in
 * FC_DIRECT_LANES independent partial sums (fixed lane per ow) added up at the end in lane order. */
static void FC_FN(grad_w_task_portable)(const fc_conv_shape *sh, const fc_range *col_range,
                                        fc_range rows, const real *grad_y, const real *x,
                                        fc_index k, fc_index c, fc_index r, real *grad_w_row)
{
    const fc_index out_plane = sh->out_h * sh->out_w, in_plane = sh->in_h * sh->in_w;
    for (fc_index s = 0; s < sh->kernel_w; s++) {
        real lane[FC_DIRECT_LANES] = {0};
        const fc_range cols = col_range[s];
        const fc_index shift = s - sh->pad_w, stride = sh->stride_w;
        for (fc_index n = 0; n < sh->batch; n++) {
            const real *grad_y_plane = grad_y + (n * sh->out_channels + k) * out_plane;
            const real *x_plane = x + (n * sh->in_channels + c) * in_plane;
            for (fc_index oh = rows.lo; oh < rows.hi; oh++) {
                const real *grad_y_row = grad_y_plane + oh * sh->out_w;
                const real *x_row = x_plane + (oh * sh->stride_h - sh->pad_h + r) * sh->in_w;
                fc_index ow = cols.lo;
                for (; ow + FC_DIRECT_LANES <= cols.hi; ow += FC_DIRECT_LANES)
                    for (int j = 0; j < FC_DIRECT_LANES; j++)
                        lane[j] += grad_y_row[ow + j] * x_row[(ow + j) * stride + shift];
                for (int j = 0; ow < cols.hi; ow++, j++)
                    lane[j] += grad_y_row[ow] * x_row[ow * stride + shift];
            }
        }
        real sum = 0;
        for (int j = 0; j < FC_DIRECT_LANES; j++)
            sum += lane[j];
        grad_w_row[s] = sum;
    }
}

/* grad_b[k] = sum of the grad_y[:, k] planes, in lanes as above. */
static real FC_FN(grad_b_one)(const fc_conv_shape *sh, const real *grad_y, fc_index k)
{
    const fc_index plane = sh->out_h * sh->out_w;
    real lane[FC_DIRECT_LANES] = {0};
    for (fc_index n = 0; n < sh->batch; n++) {
        const real *p = grad_y + (n * sh->out_channels + k) * plane;
        fc_index i = 0;
        for (; i + FC_DIRECT_LANES <= plane; i += FC_DIRECT_LANES)
            for (int j = 0; j < FC_DIRECT_LANES; j++)
                lane[j] += p[i + j];
        for (int j = 0; i < plane; i++, j++)
            lane[j] += p[i];
    }
    real sum = 0;
    for (int j = 0; j < FC_DIRECT_LANES; j++)
        sum += lane[j];
    return sum;
}

/* ---- explicit SIMD kernels (pass 3), one copy per instruction set -------------------------- */
#if FC_HAVE_X86
#define FC_VEC_LEVEL FC_VEC_AVX512
#include "conv_direct.c"
#undef FC_VEC_LEVEL
#define FC_VEC_LEVEL FC_VEC_AVX2
#include "conv_direct.c"
#undef FC_VEC_LEVEL
#include "simd_vec.h"   /* (FC_VEC_LEVEL undefined: drops the vocabulary) */
#endif

/* ---- the SIMD or portable form, as the plan says ------------------------------------------- */

static void FC_FN(gather_plane)(const fc_conv_plan *plan, const fc_gather_geometry *gather, const real *in,
                                const real *w, real bias, const real *zero_row, real *out)
{
#if FC_HAVE_X86
    if (plan->kernel == FC_KERNEL_DIRECT_GATHER_SIMD) {
        if (plan->simd >= FC_SIMD_AVX512)
            FC_FN(gather_plane_avx512)(gather, in, w, bias, zero_row, out);
        else
            FC_FN(gather_plane_avx2)(gather, in, w, bias, zero_row, out);
        return;
    }
#else
    (void)plan;
    (void)zero_row;
#endif
    FC_FN(gather_plane_portable)(gather, in, w, bias, out);
}

static void FC_FN(grad_w_task)(const fc_conv_plan *plan, const fc_conv_shape *sh, const fc_range *col_range,
                               fc_range rows, const real *grad_y, const real *x, fc_index k,
                               fc_index c, fc_index r, real *grad_w_row)
{
#if FC_HAVE_X86
    if (plan->kernel == FC_KERNEL_DIRECT_DOT_SIMD) {
        if (plan->simd >= FC_SIMD_AVX512)
            FC_FN(grad_w_task_avx512)(sh, col_range, rows, grad_y, x, k, c, r, grad_w_row);
        else
            FC_FN(grad_w_task_avx2)(sh, col_range, rows, grad_y, x, k, c, r, grad_w_row);
        return;
    }
#else
    (void)plan;
#endif
    FC_FN(grad_w_task_portable)(sh, col_range, rows, grad_y, x, k, c, r, grad_w_row);
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

#if FC_HAVE_X86
/* ---- forward vectorised over output channels (kvec, pass 3) ------------------------------------ */

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
        for (fc_index h = 0; h < sh->in_h; h++)
            memcpy(padded + c * geo->in_channel_step + (h + sh->pad_h) * geo->in_row_step + sh->pad_w,
                   in + (c * sh->in_h + h) * sh->in_w, (size_t)sh->in_w * sizeof(real));
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
            if (plan->simd >= FC_SIMD_AVX512)
                FC_FN(kvec_image_avx512)(&geo, in, packed, packed + taps * k_pad, y + n * y_image);
            else
                FC_FN(kvec_image_avx2)(&geo, in, packed, packed + taps * k_pad, y + n * y_image);
        }
        free(padded);
    }
    free(packed);
    return status;
}

/* ---- forward vectorised over output columns (wvec, pass 3) ------------------------------------- */

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
                for (fc_index h = 0; h < geo->in_h; h++)
                    memcpy(padded + c * geo->in_channel_step + (pad_rows + h) * geo->in_row_step + pad_w,
                           src + (c * geo->in_h + h) * in_w, (size_t)in_w * sizeof(real));
            if (rows_kernel && plan->simd >= FC_SIMD_AVX512)
                FC_FN(wrows_image_avx512)(geo, padded, packed, bias, out + n * out_image);
            else if (rows_kernel)
                FC_FN(wrows_image_avx2)(geo, padded, packed, bias, out + n * out_image);
            else if (plan->simd >= FC_SIMD_AVX512)
                FC_FN(wvec_image_avx512)(geo, padded, packed, bias, out + n * out_image);
            else
                FC_FN(wvec_image_avx2)(geo, padded, packed, bias, out + n * out_image);
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

/* ---- grad_w vectorised over output channels (kvec grad_w, pass 3) ------------------------------ */

/* dyt[k / lanes][n][p][k % lanes] = grad_y[n][k][p] for the chunk's images (lanes k >= K stay as calloc
 * left them: 0), so each task of kvgw_task reads one contiguous slice of chunk * out_h*out_w vectors;
 * and, if padded, the chunk's images copied into the interior of xpad (border zeroed once). */
static void FC_FN(kvgw_prepare_chunk)(const fc_conv_shape *sh, const fc_kvgw_geometry *geo, fc_index lanes,
                                      const real *grad_y_chunk, const real *x_chunk, fc_index count,
                                      real *dyt, real *xpad)
{
    const fc_index out_plane = sh->out_h * sh->out_w, out_channels = sh->out_channels;
    #pragma omp for schedule(static) nowait
    for (fc_index job = 0; job < count * out_channels; job++) {
        const fc_index n = job / out_channels, k = job % out_channels;
        const real *src = grad_y_chunk + job * out_plane;
        real *dst = dyt + (k / lanes * count + n) * geo->dyt_image + k % lanes;
        for (fc_index p = 0; p < out_plane; p++)
            dst[p * lanes] = src[p];
    }
    if (xpad == NULL)
        return;
    const fc_index padded_plane = (sh->in_h + 2 * sh->pad_h) * geo->in_row_step;
    #pragma omp for schedule(static) nowait
    for (fc_index job = 0; job < count * sh->in_channels; job++) {
        const real *src = x_chunk + job * sh->in_h * sh->in_w;
        real *dst = xpad + job * padded_plane + sh->pad_h * geo->in_row_step + sh->pad_w;
        for (fc_index h = 0; h < sh->in_h; h++)
            memcpy(dst + h * geo->in_row_step, src + h * sh->in_w, (size_t)sh->in_w * sizeof(real));
    }
}

static int FC_FN(grad_w_kvec)(const fc_ctx *ctx, const fc_conv_plan *plan, const fc_conv_shape *sh,
                              const real *grad_y, const real *x, real *grad_w)
{
    const fc_index lanes = plan->lanes;
    const fc_index group_vectors = plan->channel_vectors, group_lanes = group_vectors * lanes;
    const fc_index k_pad = fc_plan_round_up(sh->out_channels, group_lanes);
    const fc_index channels = sh->in_channels, kernel_h = sh->kernel_h, kernel_w = sh->kernel_w;
    const int padded = sh->pad_h > 0 || sh->pad_w > 0;
    const fc_index padded_w = sh->in_w + 2 * sh->pad_w;
    const fc_index row_step = padded ? padded_w : sh->in_w;
    const fc_index channel_step = padded ? (sh->in_h + 2 * sh->pad_h) * padded_w : sh->in_h * sh->in_w;
    const fc_index per_image = fc_kvgw_image_elements(sh, k_pad);
    fc_index chunk = FC_KVGW_SCRATCH_BYTES / (fc_index)sizeof(real) / per_image;
    chunk = chunk < 1 ? 1 : (chunk > sh->batch ? sh->batch : chunk);
    const fc_index max_taps = plan->kvgw_accumulators / group_vectors;
    fc_index max_rows = max_taps / kernel_w;
    max_rows = max_rows > FC_KVGW_MAX_ROWS ? FC_KVGW_MAX_ROWS : max_rows;
    const fc_index row_blocks = (kernel_h + max_rows - 1) / max_rows;
    const fc_index tasks = (k_pad / group_lanes) * channels * row_blocks;
    const fc_kvgw_geometry geo = {
        kernel_w, sh->out_h, sh->out_w, sh->stride_h, sh->stride_w,
        row_step, channels * channel_step, sh->out_h * sh->out_w * lanes, k_pad,
    };
    const fc_index x_image = channels * sh->in_h * sh->in_w;
    const fc_index grad_y_image = sh->out_channels * sh->out_h * sh->out_w;
    const fc_index taps = channels * kernel_h * kernel_w;
    real *dyt = calloc((size_t)(chunk * sh->out_h * sh->out_w * k_pad), sizeof(real));
    real *xpad = padded ? calloc((size_t)(chunk * geo.x_image), sizeof(real)) : NULL;
    real *gw_acc = malloc((size_t)(taps * k_pad) * sizeof(real));  /* [c][r][s][k_pad] */
    if (dyt == NULL || (padded && xpad == NULL) || gw_acc == NULL) {
        free(dyt);
        free(xpad);
        free(gw_acc);
        return FC_ENOMEM;
    }
    for (fc_index first = 0; first < sh->batch; first += chunk) {
        const fc_index count = sh->batch - first < chunk ? sh->batch - first : chunk;
        const real *x_chunk = padded ? xpad : x + first * x_image;
        #pragma omp parallel num_threads(fc_direct_threads(ctx))
        {
            FC_FN(kvgw_prepare_chunk)(sh, &geo, lanes, grad_y + first * grad_y_image, x + first * x_image,
                                      count, dyt, xpad);
            #pragma omp barrier
            #pragma omp for schedule(static)
            for (fc_index task = 0; task < tasks; task++) {
                const fc_index group = task / (channels * row_blocks);
                const fc_index c = task / row_blocks % channels, block = task % row_blocks;
                const fc_index r0 = block * kernel_h / row_blocks, r1 = (block + 1) * kernel_h / row_blocks;
                const fc_index k0 = group * group_lanes, vector_step = count * geo.dyt_image;
                /* vectors of this group holding real channels: the last group may have fewer */
                const fc_index left = (sh->out_channels - k0 + lanes - 1) / lanes;
                const int kv = (int)(left < group_vectors ? left : group_vectors);
                const real *x_task = x_chunk + c * channel_step + r0 * row_step;
                const real *dyt_task = dyt + k0 / lanes * vector_step;
                real *acc_task = gw_acc + (c * kernel_h + r0) * kernel_w * k_pad + k0;
                if (plan->simd >= FC_SIMD_AVX512)
                    FC_FN(kvgw_task_avx512)(&geo, x_task, dyt_task, vector_step, count, first == 0,
                                            acc_task, kv, (int)(r1 - r0));
                else
                    FC_FN(kvgw_task_avx2)(&geo, x_task, dyt_task, vector_step, count, first == 0,
                                          acc_task, kv, (int)(r1 - r0));
            }
        }
    }
    #pragma omp parallel for num_threads(fc_direct_threads(ctx)) schedule(static)
    for (fc_index k = 0; k < sh->out_channels; k++)
        for (fc_index t = 0; t < taps; t++)
            grad_w[k * taps + t] = gw_acc[t * k_pad + k];
    free(dyt);
    free(xpad);
    free(gw_acc);
    return FC_OK;
}

/* ---- grad_w vectorised over output columns (wvec grad_w, pass 3) ------------------------------- */

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
                memset(xr_row, 0, (size_t)sh->pad_w * sizeof(real));
                memcpy(xr_row + sh->pad_w, x + (first * channels * sh->in_h + row) * sh->in_w,
                       (size_t)sh->in_w * sizeof(real));
                memset(xr_row + sh->pad_w + sh->in_w, 0, (size_t)(row_step - sh->pad_w - sh->in_w) * sizeof(real));
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
                    if (plan->simd >= FC_SIMD_AVX512)
                        FC_FN(wvgw_bias_avx512)(&geo, dy_block, images, sh->out_h, sums, kb);
                    else
                        FC_FN(wvgw_bias_avx2)(&geo, dy_block, images, sh->out_h, sums, kb);
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
                if (plan->simd >= FC_SIMD_AVX512)
                    FC_FN(wvgw_task_avx512)(&geo, x_task, dy_task, images, rows.hi - rows.lo, sums, kb,
                                            (int)kernel_w);
                else
                    FC_FN(wvgw_task_avx2)(&geo, x_task, dy_task, images, rows.hi - rows.lo, sums, kb,
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
#endif

int FC_FN(fc_conv2d_forward_direct)(const fc_ctx *ctx, const fc_conv_shape *shape, const real *x,
                                    const real *weight, const real *bias, real *y)
{
    if (!fc_direct_shape_ok(ctx, shape) || x == NULL || weight == NULL || y == NULL)
        return FC_EINVAL;
    const fc_conv_plan plan = fc_conv_plan_forward(ctx, shape, FC_ALGO_DIRECT, FC_DTYPE);
#if FC_HAVE_X86
    if (plan.kernel == FC_KERNEL_DIRECT_WVEC)
        return FC_FN(forward_wvec)(ctx, &plan, shape, x, weight, bias, y);
    if (plan.kernel == FC_KERNEL_DIRECT_KVEC)
        return FC_FN(forward_kvec)(ctx, &plan, shape, x, weight, bias, y);
#endif
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
#if FC_HAVE_X86
    if (plan.kernel == FC_KERNEL_DIRECT_WVEC || plan.kernel == FC_KERNEL_DIRECT_WROWS)
        return FC_FN(grad_x_wvec)(ctx, &plan, sh, grad_y, weight, grad_x);
#endif
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
            FC_FN(scatter_plane)(sh, gather.col_range, grad_y + n * grad_y_image,
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
#if FC_HAVE_X86
    case FC_KERNEL_DIRECT_WVGW:   /* grad_w and grad_b together */
        return FC_FN(grad_w_wvgw)(ctx, &plan, shape, grad_y, x, grad_w, grad_b);
    case FC_KERNEL_DIRECT_KVGW:
        if (grad_w != NULL)
            status = FC_FN(grad_w_kvec)(ctx, &plan, shape, grad_y, x, grad_w);
        break;
#endif
    default:
        if (grad_w != NULL)
            status = FC_FN(grad_w_dot)(ctx, &plan, shape, grad_y, x, grad_w);
    }
    if (status == FC_OK && grad_b != NULL) {
        #pragma omp parallel for num_threads(fc_direct_threads(ctx)) schedule(static)
        for (fc_index k = 0; k < shape->out_channels; k++)
            grad_b[k] = FC_FN(grad_b_one)(shape, grad_y, k);
    }
    return status;
}

#else
/* ============================== pass 3: one SIMD instruction set ============================== */
#include "simd_vec.h"
/* -- gather: a block of `rows` output rows x `vecs` vectors, accumulated in registers -------- */

/* `rows` and `vecs` are compile-time constants at every call site (see gather_block_dispatch), so
 * the loops over them unroll and acc[][] lives in registers. Per output element the sum runs in
 * the portable order: bias, then ch, r, s. Input rows in the vertical padding are read from
 * zero_row; columns outside the image are masked off (col_mask). */
static inline __attribute__((always_inline)) FCV_TARGET void
FCV_FN(gather_block)(const fc_gather_geometry *gather, const real *in, const real *w, real bias,
                     const real *zero_row, fcv_mask col_mask[][FC_DIRECT_MAX_VECS],
                     fc_index oh0, fc_index ow0, real *out, const int rows, const int vecs)
{
    /* gather fields in locals: loads through `gather` would otherwise be repeated in the hot loop */
    const fc_index channels = gather->channels, kernel_h = gather->kernel_h, kernel_w = gather->kernel_w;
    const fc_index in_h = gather->in_h, in_w = gather->in_w, stride_h = gather->stride_h;
    const fc_index pad_h = gather->pad_h, pad_w = gather->pad_w, in_channel_step = gather->in_channel_step;
    const fc_index w_channel_step = gather->w_channel_step, w_row_step = gather->w_row_step;
    const fc_index w_col_step = gather->w_col_step;
    fcv_vec acc[FC_DIRECT_ROWS_NARROW][FC_DIRECT_MAX_VECS];
    /* (the unroll pragmas make gcc unroll early enough to keep acc[][] in registers) */
    #pragma GCC unroll 8
    for (int i = 0; i < rows; i++)
        #pragma GCC unroll 2
        for (int v = 0; v < vecs; v++)
            acc[i][v] = fcv_set1(bias);
    for (fc_index ch = 0; ch < channels; ch++) {
        const real *in_ch = in + ch * in_channel_step;
        for (fc_index r = 0; r < kernel_h; r++) {
            const real *in_row[FC_DIRECT_ROWS_NARROW];
            #pragma GCC unroll 8
            for (int i = 0; i < rows; i++) {
                const fc_index ih = (oh0 + i) * stride_h - pad_h + r;
                in_row[i] = (ih >= 0 && ih < in_h) ? in_ch + ih * in_w : zero_row;
            }
            const real *w_row = w + ch * w_channel_step + r * w_row_step;
            for (fc_index s = 0; s < kernel_w; s++) {
                const fcv_vec weight = fcv_set1(w_row[s * w_col_step]);
                const fc_index shift = ow0 + s - pad_w;
                #pragma GCC unroll 2
                for (int v = 0; v < vecs; v++)
                    #pragma GCC unroll 8
                    for (int i = 0; i < rows; i++)
                        acc[i][v] = fcv_fmadd(weight,
                                              fcv_load_mask(in_row[i] + shift + v * FCV_LANES,
                                                            col_mask[s][v]),
                                              acc[i][v]);
            }
        }
    }
    #pragma GCC unroll 2
    for (int v = 0; v < vecs; v++) {
        const fcv_mask store_mask = FCV_FN(lane_mask)(0, gather->out_w - ow0 - v * FCV_LANES);
        #pragma GCC unroll 8
        for (int i = 0; i < rows; i++)
            fcv_store_mask(out + (oh0 + i) * gather->out_w + ow0 + v * FCV_LANES, store_mask, acc[i][v]);
    }
}

static FCV_TARGET void
FCV_FN(gather_block_dispatch)(const fc_gather_geometry *gather, const real *in, const real *w, real bias,
                              const real *zero_row, fcv_mask col_mask[][FC_DIRECT_MAX_VECS],
                              fc_index oh0, fc_index ow0, real *out, int rows, int vecs)
{
#define FC_DIRECT_BLOCK(r, v) FCV_FN(gather_block)(gather, in, w, bias, zero_row, col_mask, oh0, ow0, out, r, v)
    if (vecs == 1) {
        switch (rows) {
        case 1: FC_DIRECT_BLOCK(1, 1); break;
        case 2: FC_DIRECT_BLOCK(2, 1); break;
        case 3: FC_DIRECT_BLOCK(3, 1); break;
        case 4: FC_DIRECT_BLOCK(4, 1); break;
        case 5: FC_DIRECT_BLOCK(5, 1); break;
        case 6: FC_DIRECT_BLOCK(6, 1); break;
        case 7: FC_DIRECT_BLOCK(7, 1); break;
        default: FC_DIRECT_BLOCK(8, 1); break;
        }
    } else {
        switch (rows) {
        case 1: FC_DIRECT_BLOCK(1, 2); break;
        case 2: FC_DIRECT_BLOCK(2, 2); break;
        case 3: FC_DIRECT_BLOCK(3, 2); break;
        default: FC_DIRECT_BLOCK(4, 2); break;
        }
    }
#undef FC_DIRECT_BLOCK
}

/* One output plane, stride_w == 1 and kernel_w <= FC_DIRECT_GATHER_SIMD_MAX_KW. Columns in chunks of
 * vecs vectors; rows in near-equal blocks of at most max_rows (10 rows -> 5 + 5, not 8 + 2, so no
 * block runs with too few independent accumulators). */
static FCV_TARGET void FCV_FN(gather_plane)(const fc_gather_geometry *gather, const real *in, const real *w,
                                            real bias, const real *zero_row, real *out)
{
    const int vecs = gather->out_w > FCV_LANES ? 2 : 1;
    const int max_rows = vecs == 2 ? FC_DIRECT_ROWS_WIDE : FC_DIRECT_ROWS_NARROW;
    const fc_index chunk_w = (fc_index)vecs * FCV_LANES;
    const fc_index row_blocks = (gather->out_h + max_rows - 1) / max_rows;
    fcv_mask col_mask[FC_DIRECT_GATHER_SIMD_MAX_KW][FC_DIRECT_MAX_VECS];
    for (fc_index ow0 = 0; ow0 < gather->out_w; ow0 += chunk_w) {
        for (fc_index s = 0; s < gather->kernel_w; s++)
            for (int v = 0; v < vecs; v++) {
                const fc_index lane0 = ow0 + v * FCV_LANES;
                col_mask[s][v] = FCV_FN(lane_mask)(gather->col_range[s].lo - lane0,
                                                   gather->col_range[s].hi - lane0);
            }
        for (fc_index b = 0; b < row_blocks; b++) {
            const fc_index oh0 = b * gather->out_h / row_blocks;
            const fc_index oh1 = (b + 1) * gather->out_h / row_blocks;
            FCV_FN(gather_block_dispatch)(gather, in, w, bias, zero_row, col_mask, oh0, ow0, out,
                                          (int)(oh1 - oh0), vecs);
        }
    }
}

/* -- grad_w: task (k, c, r) with stride_w == 1, taps = kernel_w <= FC_DIRECT_DOT_SIMD_MAX_KW ---- */

/* One accumulator per tap s for even rows and one for odd rows (two independent FMA chains per
 * tap); lane j always holds the columns ow = ow0 + j, so the sum order is fixed by the shape. */
static inline __attribute__((always_inline)) FCV_TARGET void
FCV_FN(grad_w_task_taps)(const fc_conv_shape *sh, const fc_range *col_range, fc_range rows,
                         const real *grad_y, const real *x, fc_index k, fc_index c, fc_index r,
                         real *grad_w_row, const int taps)
{
    const fc_index out_plane = sh->out_h * sh->out_w, in_plane = sh->in_h * sh->in_w;
    const fc_index out_w = sh->out_w, in_w = sh->in_w, batch = sh->batch;
    const fc_index x_row_step = sh->stride_h * in_w;
    /* x at row ih = oh*stride_h - pad_h + r, column ow0 + s - pad_w: offset of (oh, ow0) = (0, 0) */
    const fc_index x_origin = (r - sh->pad_h) * in_w - sh->pad_w;
    const real *grad_y_k = grad_y + k * out_plane;
    const real *x_c = x + c * in_plane + x_origin;
    const fc_index grad_y_image = sh->out_channels * out_plane, x_image = sh->in_channels * in_plane;
    fcv_vec acc_even[FC_DIRECT_DOT_SIMD_MAX_KW], acc_odd[FC_DIRECT_DOT_SIMD_MAX_KW];
    fcv_mask col_mask[FC_DIRECT_DOT_SIMD_MAX_KW];
    /* (the unroll pragmas make gcc unroll early enough to keep the accumulators in registers) */
    #pragma GCC unroll 8
    for (int s = 0; s < taps; s++)
        acc_even[s] = acc_odd[s] = fcv_set1((real)0);
    for (fc_index ow0 = 0; ow0 < out_w; ow0 += FCV_LANES) {
        const fcv_mask out_mask = FCV_FN(lane_mask)(0, out_w - ow0);
        #pragma GCC unroll 8
        for (int s = 0; s < taps; s++)
            col_mask[s] = FCV_FN(lane_mask)(col_range[s].lo - ow0, col_range[s].hi - ow0);
        for (fc_index n = 0; n < batch; n++) {
            const real *grad_y_row = grad_y_k + n * grad_y_image + rows.lo * out_w + ow0;
            const real *x_row = x_c + n * x_image + rows.lo * x_row_step + ow0;
            fc_index oh = rows.lo;
            for (; oh + 1 < rows.hi; oh += 2) {
                const fcv_vec g0 = fcv_load_mask(grad_y_row, out_mask);
                const fcv_vec g1 = fcv_load_mask(grad_y_row + out_w, out_mask);
                #pragma GCC unroll 8
                for (int s = 0; s < taps; s++) {
                    acc_even[s] = fcv_fmadd(g0, fcv_load_mask(x_row + s, col_mask[s]), acc_even[s]);
                    acc_odd[s] = fcv_fmadd(g1, fcv_load_mask(x_row + x_row_step + s, col_mask[s]),
                                           acc_odd[s]);
                }
                grad_y_row += 2 * out_w;
                x_row += 2 * x_row_step;
            }
            if (oh < rows.hi) {
                const fcv_vec g0 = fcv_load_mask(grad_y_row, out_mask);
                #pragma GCC unroll 8
                for (int s = 0; s < taps; s++)
                    acc_even[s] = fcv_fmadd(g0, fcv_load_mask(x_row + s, col_mask[s]), acc_even[s]);
            }
        }
    }
    #pragma GCC unroll 8
    for (int s = 0; s < taps; s++)
        grad_w_row[s] = fcv_reduce(fcv_add(acc_even[s], acc_odd[s]));
}

static FCV_TARGET void FCV_FN(grad_w_task)(const fc_conv_shape *sh, const fc_range *col_range,
                                           fc_range rows, const real *grad_y, const real *x,
                                           fc_index k, fc_index c, fc_index r, real *grad_w_row)
{
#define FC_DIRECT_TASK(t) FCV_FN(grad_w_task_taps)(sh, col_range, rows, grad_y, x, k, c, r, grad_w_row, t)
    switch (sh->kernel_w) {
    case 1: FC_DIRECT_TASK(1); break;
    case 2: FC_DIRECT_TASK(2); break;
    case 3: FC_DIRECT_TASK(3); break;
    case 4: FC_DIRECT_TASK(4); break;
    case 5: FC_DIRECT_TASK(5); break;
    case 6: FC_DIRECT_TASK(6); break;
    case 7: FC_DIRECT_TASK(7); break;
    default: FC_DIRECT_TASK(8); break;
    }
#undef FC_DIRECT_TASK
}


/* -- forward vectorised over output channels (the "kvec" kernel) -------------------------------
 * When out_w is small (LeNet's 10x10 planes) the row-vectorised gather above leaves most lanes
 * idle, and it reloads each input row once per output channel; with at least one vector of output
 * channels, vectorising over k fills every lane and reads each input element once per block.
 * The weights are repacked once per call as wt[c][r][s][k_pad] (k_pad: out_channels rounded up to
 * the vector width, zero-filled), so one tap of FCV_LANES output channels is one vector load, and
 * each output pixel owns one accumulator vector: acc(pixel) += x(pixel's tap) * wt(tap).
 * A block is `rows` x `cols` output pixels (compile-time constants, so acc[][] stays in registers);
 * the input must be padded already (the driver copies the image into a zero-bordered buffer when
 * pad > 0); the taps of a block row are consecutive input elements, its columns stride_w apart.
 * Per output element the sum runs bias, then c, r, s: the order of the gather kernels. */
/* Register blocks: rows x cols output pixels times kv vectors of output channels, one accumulator
 * each, as conv_plan.h sizes them per level (FC_PLAN_KVEC_*: AVX-512 1 vector x 2 rows x 12 columns,
 * AVX2 2 vectors x 1 row x 6 columns, and why). A last group of at most one vector of channels takes
 * the 1-vector block (1 x 12 on AVX2). */
#define FC_KVEC_ROWS (FC_VEC_LEVEL == FC_VEC_AVX512 ? FC_PLAN_KVEC_ROWS_AVX512 : FC_PLAN_KVEC_ROWS_AVX2)
#define FC_KVEC_K_VECTORS \
    (FC_VEC_LEVEL == FC_VEC_AVX512 ? FC_PLAN_KVEC_CHANNEL_VECTORS_AVX512 : FC_PLAN_KVEC_CHANNEL_VECTORS_AVX2)
#define FC_KVGW_CHANNEL_VECTORS \
    (FC_VEC_LEVEL == FC_VEC_AVX512 ? FC_PLAN_KVGW_CHANNEL_VECTORS_AVX512 : FC_PLAN_KVGW_CHANNEL_VECTORS_AVX2)
#define FC_KVGW_ACCUMULATORS \
    (FC_VEC_LEVEL == FC_VEC_AVX512 ? FC_PLAN_KVGW_ACCUMULATORS_AVX512 : FC_PLAN_KVGW_ACCUMULATORS_AVX2)

static inline __attribute__((always_inline)) FCV_TARGET void
FCV_FN(kvec_block)(const fc_kvec_geometry *geo, const real *in, const real *wt, const real *bias,
                   real *tile, const int kv, const int rows, const int cols)
{
    const fc_index channels = geo->channels, kernel_h = geo->kernel_h, kernel_w = geo->kernel_w;
    const fc_index in_channel_step = geo->in_channel_step, in_row_step = geo->in_row_step;
    const fc_index block_row_step = geo->block_row_step, wt_tap_step = geo->k_pad, col_step = geo->stride_w;
    fcv_vec acc[FC_KVEC_K_VECTORS][FC_KVEC_ROWS][FC_KVEC_MAX_COLS];
    #pragma GCC unroll 2
    for (int v = 0; v < kv; v++) {
        const fcv_vec bias_vec = fcv_loadu(bias + v * FCV_LANES);
        #pragma GCC unroll 2
        for (int i = 0; i < rows; i++)
            #pragma GCC unroll 12
            for (int j = 0; j < cols; j++)
                acc[v][i][j] = bias_vec;
    }
    for (fc_index c = 0; c < channels; c++) {
        for (fc_index r = 0; r < kernel_h; r++) {
            const real *in_row = in + c * in_channel_step + r * in_row_step;
            for (fc_index s = 0; s < kernel_w; s++) {
                fcv_vec w_vec[FC_KVEC_K_VECTORS];
                #pragma GCC unroll 2
                for (int v = 0; v < kv; v++)
                    w_vec[v] = fcv_loadu(wt + v * FCV_LANES);
                wt += wt_tap_step;
                #pragma GCC unroll 2
                for (int i = 0; i < rows; i++)
                    #pragma GCC unroll 12
                    for (int j = 0; j < cols; j++) {
                        const fcv_vec x_vec = fcv_set1(in_row[i * block_row_step + j * col_step + s]);
                        #pragma GCC unroll 2
                        for (int v = 0; v < kv; v++)
                            acc[v][i][j] = fcv_fmadd(x_vec, w_vec[v], acc[v][i][j]);
                    }
            }
        }
    }
    /* tile[pixel (i, j)][kv * FCV_LANES channels] */
    #pragma GCC unroll 2
    for (int i = 0; i < rows; i++)
        #pragma GCC unroll 12
        for (int j = 0; j < cols; j++)
            #pragma GCC unroll 2
            for (int v = 0; v < kv; v++)
                fcv_storeu(tile + ((i * cols + j) * kv + v) * FCV_LANES, acc[v][i][j]);
}

/* One block of kv (1 or FC_KVEC_K_VECTORS) channel vectors x `rows` (FC_KVEC_ROWS or 1) x `cols`
 * pixels, each a compile-time constant per case. Two-vector blocks have at most 6 columns (kvec_image
 * asks for FC_KVEC_MAX_COLS / kv), so their cases above 6 are never reached; the clamp keeps the
 * accumulators within the register budget in the code the compiler generates for them. */
static FCV_TARGET void FCV_FN(kvec_block_dispatch)(const fc_kvec_geometry *geo, const real *in, const real *wt,
                                                   const real *bias, real *tile, int kv, int rows, int cols)
{
#define FC_KVEC_CASE(n)                                                                          \
    case n:                                                                                      \
        if (kv == 2 && FC_KVEC_K_VECTORS == 2)                                                   \
            FCV_FN(kvec_block)(geo, in, wt, bias, tile, FC_KVEC_K_VECTORS, 1, n <= 6 ? n : 6);   \
        else if (rows == FC_KVEC_ROWS)                                                           \
            FCV_FN(kvec_block)(geo, in, wt, bias, tile, 1, FC_KVEC_ROWS, n);                     \
        else                                                                                     \
            FCV_FN(kvec_block)(geo, in, wt, bias, tile, 1, 1, n);                                \
        break;
    switch (cols) {
    FC_KVEC_CASE(1) FC_KVEC_CASE(2) FC_KVEC_CASE(3) FC_KVEC_CASE(4) FC_KVEC_CASE(5) FC_KVEC_CASE(6)
    FC_KVEC_CASE(7) FC_KVEC_CASE(8) FC_KVEC_CASE(9) FC_KVEC_CASE(10) FC_KVEC_CASE(11)
    default: FC_KVEC_CASE(12)
    }
#undef FC_KVEC_CASE
}

/* Scatter a block's tile (pixel-major: `rows` x `cols` pixels of kv vectors) into the `lanes` output
 * planes at y (the block's first pixel of its first plane). A full group of channels goes pixel by pixel
 * with the lane loop unrolled, because the short row and column loops run lane by lane cost a quarter of
 * LeNet C3's forward. */
static inline __attribute__((always_inline)) FCV_TARGET void
FCV_FN(kvec_store_tile)(const real *tile, int lanes, int kv, int rows, int cols, fc_index out_plane,
                        fc_index out_w, real *y)
{
    const int pixel_step = kv * FCV_LANES;
    if (lanes == FC_KVEC_K_VECTORS * FCV_LANES) {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) {
                const real *pixel = tile + (i * cols + j) * pixel_step;
                real *y_pixel = y + i * out_w + j;
                #pragma GCC unroll 32
                for (int lane = 0; lane < FC_KVEC_K_VECTORS * FCV_LANES; lane++)
                    y_pixel[lane * out_plane] = pixel[lane];
            }
        return;
    }
    for (int lane = 0; lane < lanes; lane++)
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                y[lane * out_plane + i * out_w + j] = tile[(i * cols + j) * pixel_step + lane];
}

/* All output planes of one image. `in` is the (padded) image, wt/bias the packed weights and bias;
 * y_image is the image's K x out_h x out_w output. Each block's tile is transposed into the planes. */
static FCV_TARGET void FCV_FN(kvec_image)(const fc_kvec_geometry *geo, const real *in, const real *wt,
                                          const real *bias, real *y_image)
{
    real tile[FC_KVEC_ROWS * FC_KVEC_MAX_COLS * FCV_LANES];   /* = the pixels x lanes of any block */
    const fc_index out_h = geo->out_h, out_w = geo->out_w, out_plane = out_h * out_w;
    const fc_index k_step = FC_KVEC_K_VECTORS * FCV_LANES;
    for (fc_index k0 = 0; k0 < geo->out_channels; k0 += k_step) {
        const int lanes = (int)(geo->out_channels - k0 < k_step ? geo->out_channels - k0 : k_step);
        const int kv = lanes > FCV_LANES ? FC_KVEC_K_VECTORS : 1;
        const int rows_max = kv == 1 ? FC_KVEC_ROWS : 1, cols_max = FC_KVEC_MAX_COLS / kv;
        for (fc_index oh0 = 0; oh0 < out_h; oh0 += rows_max) {
            const int rows = (int)(out_h - oh0 < rows_max ? out_h - oh0 : rows_max);
            for (fc_index ow0 = 0; ow0 < out_w; ow0 += cols_max) {
                const int cols = (int)(out_w - ow0 < cols_max ? out_w - ow0 : cols_max);
                FCV_FN(kvec_block_dispatch)(geo, in + oh0 * geo->block_row_step + ow0 * geo->stride_w, wt + k0,
                                            bias + k0, tile, kv, rows, cols);
                FCV_FN(kvec_store_tile)(tile, lanes, kv, rows, cols, out_plane, out_w,
                                        y_image + k0 * out_plane + oh0 * out_w + ow0);
            }
        }
    }
}

/* -- forward vectorised over output columns, blocked over output channels (the "wvec" kernel) ----
 * For few output channels (LeNet's first layer: 6, under one AVX2 vector for kvec) and for the input
 * gradient of a stride-1 convolution run as one (grad_x = conv(dY, W flipped and transposed), whose
 * K' is the layer's C: 6 in LeNet's C3). A block is FC_WVEC_CHANNELS channels x nv vectors of consecutive
 * output columns of one output row: per tap, nv input loads are shared by FC_WVEC_CHANNELS weight
 * broadcasts (2 + 6 loads per 12 FMAs). Taps whose input row lies in the vertical padding are skipped;
 * horizontal padding is in the copied image. Per output element the sum runs bias, then c, r, s. */
static inline __attribute__((always_inline)) FCV_TARGET void
FCV_FN(wvec_block)(const fc_wvec_geometry *geo, const real *in, const real *wp, const real *bias,
                   fc_index oh, fc_index ow0, real *tile, const int nv)
{
    const fc_index kernel_h = geo->kernel_h, kernel_w = geo->kernel_w;
    const fc_index ih0 = oh * geo->stride_h - geo->pad_h;
    const fc_index r_lo = ih0 < 0 ? -ih0 : 0;
    const fc_index r_hi = geo->in_h - ih0 < kernel_h ? geo->in_h - ih0 : kernel_h;
    fcv_vec acc[FC_WVEC_CHANNELS][FC_WVEC_VECTORS];
    #pragma GCC unroll 6
    for (int kb = 0; kb < FC_WVEC_CHANNELS; kb++)
        #pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            acc[kb][v] = fcv_set1(bias[kb]);
    for (fc_index c = 0; c < geo->channels; c++) {
        for (fc_index r = r_lo; r < r_hi; r++) {
            const real *row = in + c * geo->in_channel_step + (ih0 + r) * geo->in_row_step + ow0;
            const real *w = wp + (c * kernel_h + r) * kernel_w * FC_WVEC_CHANNELS;
            for (fc_index s = 0; s < kernel_w; s++) {
                fcv_vec x_vec[FC_WVEC_VECTORS];
                #pragma GCC unroll 2
                for (int v = 0; v < nv; v++)
                    x_vec[v] = fcv_loadu(row + s + v * FCV_LANES);
                #pragma GCC unroll 6
                for (int kb = 0; kb < FC_WVEC_CHANNELS; kb++) {
                    const fcv_vec w_vec = fcv_set1(w[s * FC_WVEC_CHANNELS + kb]);
                    #pragma GCC unroll 2
                    for (int v = 0; v < nv; v++)
                        acc[kb][v] = fcv_fmadd(w_vec, x_vec[v], acc[kb][v]);
                }
            }
        }
    }
    #pragma GCC unroll 6
    for (int kb = 0; kb < FC_WVEC_CHANNELS; kb++)
        #pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            fcv_storeu(tile + (kb * FC_WVEC_VECTORS + v) * FCV_LANES, acc[kb][v]);
}

/* All output planes of one image: blocks of FC_WVEC_CHANNELS channels x (1 or FC_WVEC_VECTORS vectors) of each
 * output row, copied from the tile into y_image's valid channels and columns. wp: the packed weights,
 * then FC_WVEC_CHANNELS biases per block (zero past out_channels), as pack_weights lays them out. */
static FCV_TARGET void FCV_FN(wvec_image)(const fc_wvec_geometry *geo, const real *in, const real *wp,
                                          const real *bias, real *y_image)
{
    real tile[FC_WVEC_CHANNELS * FC_WVEC_VECTORS * FCV_LANES];
    const fc_index out_h = geo->out_h, out_w = geo->out_w, out_plane = out_h * out_w;
    const fc_index taps = geo->channels * geo->kernel_h * geo->kernel_w;
    for (fc_index k0 = 0; k0 < geo->out_channels; k0 += FC_WVEC_CHANNELS) {
        const fc_index kb_count = geo->out_channels - k0 < FC_WVEC_CHANNELS ? geo->out_channels - k0 : FC_WVEC_CHANNELS;
        const real *wp_block = wp + k0 / FC_WVEC_CHANNELS * taps * FC_WVEC_CHANNELS;
        const real *bias_block = bias + k0;
        for (fc_index oh = 0; oh < out_h; oh++) {
            for (fc_index ow0 = 0; ow0 < out_w; ow0 += FC_WVEC_VECTORS * FCV_LANES) {
                const fc_index cols = out_w - ow0 < FC_WVEC_VECTORS * FCV_LANES ? out_w - ow0 : FC_WVEC_VECTORS * FCV_LANES;
                if (cols > FCV_LANES)
                    FCV_FN(wvec_block)(geo, in, wp_block, bias_block, oh, ow0, tile, FC_WVEC_VECTORS);
                else
                    FCV_FN(wvec_block)(geo, in, wp_block, bias_block, oh, ow0, tile, 1);
                for (fc_index kb = 0; kb < kb_count; kb++) {
                    real *y_row = y_image + (k0 + kb) * out_plane + oh * out_w + ow0;
                    const real *t = tile + kb * FC_WVEC_VECTORS * FCV_LANES;   /* vectors v are consecutive */
                    for (fc_index j = 0; j < cols; j++)
                        y_row[j] = t[j];
                }
            }
        }
    }
}

/* -- wvec blocked over output rows (the "wvec rows" kernel) -------------------------------------
 * wvec's convolution for one or two output channels (grad_x of LeNet's first layer: one), where wvec's
 * blocks of FC_WVEC_CHANNELS channels would run mostly empty. A block is rb output rows x nv vectors of
 * consecutive output columns of one channel (stride 1). Per input channel c and tap column s it walks
 * the rb + R - 1 input rows the block touches: each input vector is loaded once and feeds every output
 * row it reaches (up to rb), with that row's weight w[c][t - i][s] broadcast: 7 loads per 12 FMAs in the
 * middle rows (rb 3, nv 4), against one load per FMA in the gather. The input image holds its vertical
 * padding rows (zeros) too. Per output element the sum runs bias, then c, s, r. */
static inline __attribute__((always_inline)) FCV_TARGET void
FCV_FN(wrows_step)(const real *row, const real *w_col, fc_index kernel_w, fc_index t, fcv_vec acc[][FC_WROWS_VECTORS],
                   const int i_lo, const int i_hi, const int nv)
{
    fcv_vec weight[FC_WROWS_ROWS];
    #pragma GCC unroll 3
    for (int i = i_lo; i < i_hi; i++)
        weight[i] = fcv_set1(w_col[(t - i) * kernel_w]);
    #pragma GCC unroll 4
    for (int v = 0; v < nv; v++) {
        const fcv_vec x_vec = fcv_loadu(row + v * FCV_LANES);
        #pragma GCC unroll 3
        for (int i = i_lo; i < i_hi; i++)
            acc[i][v] = fcv_fmadd(weight[i], x_vec, acc[i][v]);
    }
}

/* rb <= kernel_h (the driver's choice), so the first rb - 1 and last rb - 1 input rows are the ramps
 * where fewer output rows are reached, and every row between reaches all rb. */
static inline __attribute__((always_inline)) FCV_TARGET void
FCV_FN(wrows_block)(const fc_wvec_geometry *geo, const real *in, const real *w, real bias,
                    fc_index oh0, fc_index ow0, int last_lanes, real *out_plane, const int rb, const int nv)
{
    const fc_index kernel_h = geo->kernel_h, kernel_w = geo->kernel_w, row_step = geo->in_row_step;
    fcv_vec acc[FC_WROWS_ROWS][FC_WROWS_VECTORS];
    #pragma GCC unroll 3
    for (int i = 0; i < rb; i++)
        #pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            acc[i][v] = fcv_set1(bias);
    for (fc_index c = 0; c < geo->channels; c++) {
        /* padded row oh0 + t: the input row of output row oh0 + i at kernel row t - i */
        const real *in_c = in + c * geo->in_channel_step + oh0 * row_step + ow0;
        const real *w_c = w + c * kernel_h * kernel_w;
        for (fc_index s = 0; s < kernel_w; s++) {
            #pragma GCC unroll 2
            for (int t = 0; t < rb - 1; t++)
                FCV_FN(wrows_step)(in_c + t * row_step + s, w_c + s, kernel_w, t, acc, 0, t + 1, nv);
            for (fc_index t = rb - 1; t < kernel_h; t++)
                FCV_FN(wrows_step)(in_c + t * row_step + s, w_c + s, kernel_w, t, acc, 0, rb, nv);
            #pragma GCC unroll 2
            for (int i = 1; i < rb; i++)
                FCV_FN(wrows_step)(in_c + (kernel_h - 1 + i) * row_step + s, w_c + s, kernel_w, kernel_h - 1 + i,
                                   acc, i, rb, nv);
        }
    }
    #pragma GCC unroll 3
    for (int i = 0; i < rb; i++) {
        real *out_row = out_plane + (oh0 + i) * geo->out_w + ow0;
        #pragma GCC unroll 4
        for (int v = 0; v < nv - 1; v++)
            fcv_storeu(out_row + v * FCV_LANES, acc[i][v]);
        FCV_FN(store_first)(out_row + (nv - 1) * FCV_LANES, acc[i][nv - 1], last_lanes);
    }
}

static FCV_TARGET void FCV_FN(wrows_block_dispatch)(const fc_wvec_geometry *geo, const real *in, const real *w, real bias, fc_index oh0, fc_index ow0,
                                                    int last_lanes, real *out_plane, int rb, int nv)
{
#define FC_WROWS_CASE(RB, NV)                                                                    \
    case NV:                                                                                     \
        FCV_FN(wrows_block)(geo, in, w, bias, oh0, ow0, last_lanes, out_plane, RB, NV);           \
        break;
#define FC_WROWS_RB_CASE(RB)                                                                     \
    case RB:                                                                                     \
        switch (nv) {                                                                            \
        FC_WROWS_CASE(RB, 1) FC_WROWS_CASE(RB, 2) FC_WROWS_CASE(RB, 3) FC_WROWS_CASE(RB, 4)      \
        }                                                                                        \
        break;
    switch (rb) {
    FC_WROWS_RB_CASE(1) FC_WROWS_RB_CASE(2) FC_WROWS_RB_CASE(3)
    }
#undef FC_WROWS_RB_CASE
#undef FC_WROWS_CASE
}

/* All output planes of one image: per channel, near-equal blocks of at most min(FC_WROWS_ROWS, kernel_h)
 * rows (28 -> 3 x 8 + 2 x 2), columns in blocks of FC_WROWS_VECTORS vectors (the last one shorter, its last
 * vector stored in part). wp: pack_weights with blocks of 1, [k][c][r][s], then the biases. */
static FCV_TARGET void FCV_FN(wrows_image)(const fc_wvec_geometry *geo, const real *in, const real *wp,
                                           const real *bias, real *y_image)
{
    const fc_index out_h = geo->out_h, out_w = geo->out_w;
    const fc_index taps = geo->channels * geo->kernel_h * geo->kernel_w;
    const fc_index max_rows = geo->kernel_h < FC_WROWS_ROWS ? geo->kernel_h : FC_WROWS_ROWS;
    const fc_index row_blocks = (out_h + max_rows - 1) / max_rows;
    const fc_index block_w = FC_WROWS_VECTORS * FCV_LANES;
    for (fc_index k = 0; k < geo->out_channels; k++) {
        real *out_plane = y_image + k * out_h * out_w;
        for (fc_index ow0 = 0; ow0 < out_w; ow0 += block_w) {
            const fc_index cols = out_w - ow0 < block_w ? out_w - ow0 : block_w;
            const int nv = (int)((cols + FCV_LANES - 1) / FCV_LANES);
            const int last_lanes = (int)(cols - (nv - 1) * FCV_LANES);
            for (fc_index b = 0; b < row_blocks; b++) {
                const fc_index oh0 = b * out_h / row_blocks, oh1 = (b + 1) * out_h / row_blocks;
                FCV_FN(wrows_block_dispatch)(geo, in, wp + k * taps, bias[k], oh0, ow0, last_lanes,
                                             out_plane, (int)(oh1 - oh0), nv);
            }
        }
    }
}

/* -- grad_w vectorised over output channels (the "kvec grad_w" kernel) ------------------------
 *     grad_w[k][c][r][s] = sum over n, oh, ow of dy[n][k][oh][ow] * xp[n][c][oh*stride_h + r][ow*stride_w + s]
 * (xp: x with its zero border, copied by the driver when pad > 0). One task owns one vector of
 * FCV_LANES output channels, one input channel c and a block of `rows` kernel rows: its rows x S taps
 * each hold one accumulator vector in registers. Per output pixel the task loads one vector of dy
 * (from dyt: dy transposed to [channel vector][n][pixel][lane], so a task streams one contiguous
 * slice) and does one FMA per tap
 * with the tap's input element broadcast: rows*S FMAs per rows*S + 1 loads, whatever out_w is.
 * Every element sums over n, oh, ow in increasing order, also across the driver's chunks of images
 * (acc starts from the partial sums in gw_acc), so the result does not depend on the thread count. */
static inline __attribute__((always_inline)) FCV_TARGET void
FCV_FN(kvgw_task_rows)(const fc_kvgw_geometry *geo, const real *x_chunk, const real *dyt_chunk,
                       fc_index dyt_vector_step, fc_index count, int first_chunk, real *gw_acc,
                       const int kv, const int rows, const int taps_w)
{
    const fc_index out_h = geo->out_h, out_w = geo->out_w, k_pad = geo->k_pad;
    const fc_index x_row_step = geo->in_row_step, x_pix_step = geo->stride_w;
    const fc_index x_oh_step = geo->stride_h * geo->in_row_step;
    fcv_vec acc[FC_KVGW_CHANNEL_VECTORS][FC_KVGW_MAX_ROWS][FC_KVGW_MAX_KW];
    #pragma GCC unroll 2
    for (int v = 0; v < kv; v++)
        #pragma GCC unroll 7
        for (int i = 0; i < rows; i++)
            #pragma GCC unroll 7
            for (int s = 0; s < taps_w; s++)
                acc[v][i][s] = first_chunk ? fcv_set1((real)0)
                                           : fcv_loadu(gw_acc + (i * taps_w + s) * k_pad + v * FCV_LANES);
    for (fc_index n = 0; n < count; n++) {
        const real *x_n = x_chunk + n * geo->x_image;
        const real *dy_pix = dyt_chunk + n * geo->dyt_image;
        for (fc_index oh = 0; oh < out_h; oh++) {
            const real *x_pix = x_n + oh * x_oh_step;
            for (fc_index ow = 0; ow < out_w; ow++) {
                fcv_vec dy[FC_KVGW_CHANNEL_VECTORS];
                #pragma GCC unroll 2
                for (int v = 0; v < kv; v++)
                    dy[v] = fcv_loadu(dy_pix + v * dyt_vector_step);
                #pragma GCC unroll 7
                for (int i = 0; i < rows; i++)
                    #pragma GCC unroll 7
                    for (int s = 0; s < taps_w; s++) {
                        const fcv_vec x_vec = fcv_set1(x_pix[i * x_row_step + s]);
                        #pragma GCC unroll 2
                        for (int v = 0; v < kv; v++)
                            acc[v][i][s] = fcv_fmadd(x_vec, dy[v], acc[v][i][s]);
                    }
                dy_pix += FCV_LANES;
                x_pix += x_pix_step;
            }
        }
    }
    #pragma GCC unroll 2
    for (int v = 0; v < kv; v++)
        #pragma GCC unroll 7
        for (int i = 0; i < rows; i++)
            #pragma GCC unroll 7
            for (int s = 0; s < taps_w; s++)
                fcv_storeu(gw_acc + (i * taps_w + s) * k_pad + v * FCV_LANES, acc[v][i][s]);
}

/* The task's kv (1 or FC_KVGW_CHANNEL_VECTORS channel vectors), rows (1..FC_KVGW_MAX_ROWS) and S
 * (1..FC_KVGW_MAX_KW) as compile-time constants; only the triples within this level's accumulator
 * budget (FC_KVGW_ACCUMULATORS vectors) are instantiated. */
static FCV_TARGET void FCV_FN(kvgw_task)(const fc_kvgw_geometry *geo, const real *x_chunk, const real *dyt_chunk,
                                         fc_index dyt_vector_step, fc_index count, int first_chunk,
                                         real *gw_acc, int kv, int rows)
{
#define FC_KVGW_CASE(R, S)                                                                       \
    case R:                                                                                      \
        if (kv == 2 && FC_KVGW_CHANNEL_VECTORS == 2 && 2 * (R) * (S) <= FC_KVGW_ACCUMULATORS)              \
            FCV_FN(kvgw_task_rows)(geo, x_chunk, dyt_chunk, dyt_vector_step, count, first_chunk, \
                                   gw_acc, FC_KVGW_CHANNEL_VECTORS, R, S);                             \
        else if (kv == 1 && (R) * (S) <= FC_KVGW_ACCUMULATORS)                                       \
            FCV_FN(kvgw_task_rows)(geo, x_chunk, dyt_chunk, dyt_vector_step, count, first_chunk, \
                                   gw_acc, 1, R, S);                                             \
        break;
#define FC_KVGW_ROWS(S)                                                                          \
    case S:                                                                                      \
        switch (rows) {                                                                          \
        FC_KVGW_CASE(1, S) FC_KVGW_CASE(2, S) FC_KVGW_CASE(3, S) FC_KVGW_CASE(4, S)              \
        FC_KVGW_CASE(5, S) FC_KVGW_CASE(6, S) FC_KVGW_CASE(7, S)                                 \
        }                                                                                        \
        break;
    switch (geo->kernel_w) {
    FC_KVGW_ROWS(1) FC_KVGW_ROWS(2) FC_KVGW_ROWS(3) FC_KVGW_ROWS(4) FC_KVGW_ROWS(5) FC_KVGW_ROWS(6)
    FC_KVGW_ROWS(7)
    }
#undef FC_KVGW_ROWS
#undef FC_KVGW_CASE
}

/* -- grad_w vectorised over output columns (the "wvec grad_w" kernel) ---------------------------
 *     grad_w[k][c][r][s] = sum over n, oh, ow of dy[n][k][oh][ow] * xr[n][c][oh*stride_h - pad_h + r][ow + s]
 * (xr: x with its horizontal zero border, copied by the driver; the driver passes the valid output
 * rows of kernel row r, so rows in the vertical padding are never read). For fewer output channels
 * than lanes (LeNet's first layer: 6), where kvec grad_w would leave lanes idle. One task owns kb output
 * channels x kernel row r of one input channel, each of its kb x S taps one accumulator vector; per
 * vector of output columns it loads kb vectors of dy and two of x, and shuffles the S shifted x vectors
 * out of those (LeNet C1: 4 loads, 4 shuffles per 10 FMAs; S unaligned loads instead, half of them
 * split over two cache lines, made the kernel load-bound: 0.18 -> 0.14 ms, 2 threads, AVX2). In a row's
 * last vector, the lanes past out_w have dy and x both zeroed (masks), so they add exactly 0 even
 * where x holds an inf or NaN that the exact sum never multiplies. Lane j of an accumulator sums its columns over
 * n, oh, column vectors in increasing order; the lanes are then added in fcv_reduce's fixed order. */
#define FC_WVGW_REGISTERS (FC_VEC_LEVEL == FC_VEC_AVX512 ? FC_PLAN_WVGW_REGISTERS_AVX512 : FC_PLAN_WVGW_REGISTERS_AVX2)

/* One vector of output columns: acc[kk][s] += dy[kk] * (x from column s of x_at on), for the kb
 * output channels and taps_w taps of a task; `keep` (NULL: all) zeroes x in the lanes past the row. */
static inline __attribute__((always_inline)) FCV_TARGET void
FCV_FN(wvgw_vector)(const fcv_vec *dy, const int kb, const real *x_at, const int taps_w,
                    const fcv_mask *keep, fcv_vec acc[FC_WVGW_MAX_CHANNELS][FC_WVGW_MAX_KW])
{
    fcv_vec x_part[FCV_SHIFT_LOADS(FC_WVGW_MAX_KW)];
    #pragma GCC unroll 3
    for (int i = 0; i < FCV_SHIFT_LOADS(taps_w); i++)
        x_part[i] = fcv_loadu(x_at + i * FCV_LANES);
    #pragma GCC unroll 7
    for (int s = 0; s < taps_w; s++) {
        fcv_vec x_vec = FCV_FN(shifted)(x_part[s / FCV_LANES], x_part[s / FCV_LANES + 1],
                                        s % FCV_LANES);
        if (keep != NULL)
            x_vec = fcv_keep_mask(x_vec, *keep);
        #pragma GCC unroll 4
        for (int kk = 0; kk < kb; kk++)
            acc[kk][s] = fcv_fmadd(dy[kk], x_vec, acc[kk][s]);
    }
}


static inline __attribute__((always_inline)) FCV_TARGET void
FCV_FN(wvgw_task_taps)(const fc_wvgw_geometry *geo, const real *x_task, const real *dy_task, fc_index images,
                       fc_index rows, real *sums, const int kb, const int taps_w)
{
    const fc_index out_w = geo->out_w, dy_plane = geo->dy_plane, x_oh_step = geo->x_oh_step;
    const fc_index full_vectors = out_w / FCV_LANES;
    const fcv_mask tail_mask = FCV_FN(lane_mask)(0, out_w % FCV_LANES);
    fcv_vec acc[FC_WVGW_MAX_CHANNELS][FC_WVGW_MAX_KW];
    /* (the unroll pragmas make gcc unroll early enough to keep the accumulators in registers) */
    #pragma GCC unroll 4
    for (int kk = 0; kk < kb; kk++)
        #pragma GCC unroll 7
        for (int s = 0; s < taps_w; s++)
            acc[kk][s] = fcv_set1((real)0);
    for (fc_index n = 0; n < images; n++) {
        const real *x_row = x_task + n * geo->x_image;
        const real *dy_row = dy_task + n * geo->dy_image;
        for (fc_index oh = 0; oh < rows; oh++, x_row += x_oh_step, dy_row += out_w) {
            fc_index ow = 0;
            for (fc_index j = 0; j < full_vectors; j++, ow += FCV_LANES) {
                fcv_vec dy[FC_WVGW_MAX_CHANNELS];
                #pragma GCC unroll 4
                for (int kk = 0; kk < kb; kk++)
                    dy[kk] = fcv_loadu(dy_row + kk * dy_plane + ow);
                FCV_FN(wvgw_vector)(dy, kb, x_row + ow, taps_w, NULL, acc);
            }
            if (ow < out_w) {   /* the tail: dy and x masked to zero past out_w */
                fcv_vec dy[FC_WVGW_MAX_CHANNELS];
                #pragma GCC unroll 4
                for (int kk = 0; kk < kb; kk++)
                    dy[kk] = fcv_load_mask(dy_row + kk * dy_plane + ow, tail_mask);
                FCV_FN(wvgw_vector)(dy, kb, x_row + ow, taps_w, &tail_mask, acc);
            }
        }
    }
    #pragma GCC unroll 4
    for (int kk = 0; kk < kb; kk++)
        #pragma GCC unroll 7
        for (int s = 0; s < taps_w; s++)
            sums[kk * geo->sum_k_step + s] = fcv_reduce(acc[kk][s]);
}

/* grad_b partial sums of kb channels over a chunk of images: each output row's vectors (the last one
 * masked) summed into one of four accumulators (rows 4i + q into q; rows past a multiple of four into
 * the first), which are then added pairwise and across lanes: a fixed order. */
static FCV_TARGET void FCV_FN(wvgw_bias)(const fc_wvgw_geometry *geo, const real *dy_block, fc_index images,
                                         fc_index rows, real *sums, int kb)
{
    const fc_index out_w = geo->out_w, full_vectors = out_w / FCV_LANES;
    const fcv_mask tail_mask = FCV_FN(lane_mask)(0, out_w % FCV_LANES);
#define FC_WVGW_ADD_ROW(acc, row)                                                                \
    do {                                                                                         \
        fc_index ow = 0;                                                                         \
        for (fc_index j = 0; j < full_vectors; j++, ow += FCV_LANES)                             \
            acc = fcv_add(acc, fcv_loadu((row) + ow));                                           \
        if (ow < out_w)                                                                          \
            acc = fcv_add(acc, fcv_load_mask((row) + ow, tail_mask));                            \
    } while (0)
    for (int kk = 0; kk < kb; kk++) {
        fcv_vec acc[4];
        #pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            acc[q] = fcv_set1((real)0);
        for (fc_index n = 0; n < images; n++) {
            const real *plane = dy_block + n * geo->dy_image + kk * geo->dy_plane;
            fc_index oh = 0;
            for (; oh + 4 <= rows; oh += 4)
                #pragma GCC unroll 4
                for (int q = 0; q < 4; q++)
                    FC_WVGW_ADD_ROW(acc[q], plane + (oh + q) * out_w);
            for (; oh < rows; oh++)
                FC_WVGW_ADD_ROW(acc[0], plane + oh * out_w);
        }
        sums[kk] = fcv_reduce(fcv_add(fcv_add(acc[0], acc[1]), fcv_add(acc[2], acc[3])));
    }
#undef FC_WVGW_ADD_ROW
}

/* kb (1..FC_WVGW_MAX_CHANNELS) and S (1..FC_WVGW_MAX_KW) as compile-time constants; only the pairs within this
 * level's register budget (kb * (S + 1) <= FC_WVGW_REGISTERS, as the plan's wvgw_channels chooses) exist. */
static FCV_TARGET void FCV_FN(wvgw_task)(const fc_wvgw_geometry *geo, const real *x_task, const real *dy_task,
                                         fc_index images, fc_index rows, real *sums, int kb, int taps_w)
{
#define FC_WVGW_CASE(KB, S)                                                                      \
    case KB:                                                                                     \
        if ((KB) * ((S) + 1) <= FC_WVGW_REGISTERS)                                                    \
            FCV_FN(wvgw_task_taps)(geo, x_task, dy_task, images, rows, sums, KB, S);             \
        break;
#define FC_WVGW_KB(S)                                                                            \
    case S:                                                                                      \
        switch (kb) {                                                                            \
        FC_WVGW_CASE(1, S) FC_WVGW_CASE(2, S) FC_WVGW_CASE(3, S) FC_WVGW_CASE(4, S)              \
        }                                                                                        \
        break;
    switch (taps_w) {
    FC_WVGW_KB(1) FC_WVGW_KB(2) FC_WVGW_KB(3) FC_WVGW_KB(4) FC_WVGW_KB(5) FC_WVGW_KB(6) FC_WVGW_KB(7)
    }
#undef FC_WVGW_KB
#undef FC_WVGW_CASE
}
#undef FC_WVGW_REGISTERS

#undef FC_KVEC_ROWS
#undef FC_KVEC_K_VECTORS
#undef FC_KVGW_CHANNEL_VECTORS
#undef FC_KVGW_ACCUMULATORS

#endif
