/*
 * conv_im2col.c -- convolution as im2col + GEMM, forward and backward.
 *
 * With P = out_h*out_w and CRS = C*R*S, one image's convolution is the matrix product
 *     Y_n (K x P) = W (K x CRS) * col_n (CRS x P),           col_n = im2col(x_n),
 * and its gradients are
 *     grad_W += dY_n (K x P) * col_n^T,     grad_x_n = col2im(W^T (CRS x K) * dY_n).
 *
 * Forward: fused, no column matrix. W is packed once into the GEMM's A layout. Then each task, one
 * image's block of output columns, walks the GEMM's loops itself: for each KC step and each NR-wide
 * micro-panel of its columns, im2col writes that KC x NR piece of col_n straight into the packed
 * B-panel layout (fc_im2col_panel, in L1) and the micro-kernel runs down all K rows of W, writing Y_n in
 * place (NCHW is K x P per image: ldc = P). The bias is added to the task's block while it is still in
 * L2. A column block's C (K x columns) is kept under FC_IM2COL_C_BLOCK_BYTES. Scratch: packed W and
 * one B panel per thread, whatever the batch (and with stride_w 2 one padded image with its columns
 * split into even and odd, fc_im2col_copy_image, so that panel rows are contiguous copies; the next
 * image is prefetched into L2 meanwhile; a thread copies each of its images once, for all its blocks).
 * im2col.implicit builds no panels: the micro-kernel reads that copy through offsets (at stride_w 1 a
 * copy with the padding written out and no split, or without padding the image itself). Tasks are
 * independent, so threads share them with no barrier, and each output element is the same sum
 * whatever the thread count.
 *
 * Backward, chunks of images. One image's GEMM is often small (LeNet's second layer: 16 x 100 x 150), too
 * small to amortise packing W or to give both cores a macro-tile. So the batch is cut into chunks of
 * `count` images whose column matrices sit SIDE BY SIDE in one buffer,
 *     col (CRS x count*P):  image n of the chunk owns columns [n*P, (n+1)*P),
 * and one GEMM with N = count*P covers the whole chunk. The chunk size comes from a fixed scratch
 * budget (FC_IM2COL_SCRATCH_BYTES) and the shape only -- never from the thread count -- so results are
 * the same with any number of threads; a chunk holds at least one image, however large. dY of a chunk
 * is gathered into the same (K x count*P) layout (NCHW has the image index outermost).
 *
 * Threads: the GEMM parallelises itself; im2col / col2im run in parallel over (image, channel)
 * planes of the chunk; chunks run one after the other, so grad_W's sum over chunks has a fixed order.
 *
 * Backward, grad_x as a forward (stride 1): grad_x_n is the correlation of dY_n with W flipped in r
 * and s and transposed (C x K x R x S), padded by kernel - 1 - pad, so the fused forward computes it
 * with GEMM depth K*R*S and no column matrix (conv_plan.h's FC_PLAN_AS_FORWARD_* say where).
 */
#ifndef FC_TEMPLATE_PASS

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "conv_plan.h"
#include "gemm_kernels.h"
#include "im2col.h"

/* Fused forward: most bytes of output (K x columns) one task computes, so that its C block stays in
 * L2 beside W's packed KC block while the KC steps sweep it (L2 is 512 KB to 2 MB on the machines
 * measured). */
#define FC_IM2COL_C_BLOCK_BYTES ((fc_index)128 << 10)

/* grad_x by image: most bytes of column matrix one block of output rows fills, so that it stays in L2
 * beside W^T packed (vgg-ish: 295 KB) until col2im has added it into grad_x_n. */
#define FC_IM2COL_BY_IMAGE_BLOCK_BYTES ((fc_index)192 << 10)

/* Vectors in one NR-wide micro-panel at the narrowest vector (AVX2 float: 64 / 8), for im2col.implicit. */
#define FC_IM2COL_MAX_PANEL_VECTORS 8

/* The fused forward's KC: the GEMM's, stretched to cover a depth up to 1.5 KC in one step, else the
 * depth cut into equal steps. Every extra step reloads and rewrites C, and a short last step (KC 256
 * against the strided shape's depth 288 left one of 32) runs the micro-kernel on a tile it barely
 * uses. Measured (strided forward, 1 thread, AVX2, ms, best of 7): 4.6 with steps of 256 + 32, 4.3 with one
 * of 288. */
static fc_index fc_fused_depth(fc_index depth, fc_index kc)
{
    const fc_index steps = depth <= kc + kc / 2 ? 1 : (depth + kc - 1) / kc;
    return (depth + steps - 1) / steps;
}

/* The stride-1 convolution whose forward is `sh`'s grad_x: dY (K channels of out_h x out_w) as input,
 * C output channels, padding kernel - 1 - pad, so its output is in_h x in_w. */
static fc_conv_shape fc_grad_x_forward_shape(const fc_conv_shape *sh)
{
    fc_conv_shape fwd = *sh;
    fwd.in_channels = sh->out_channels;
    fwd.in_h = sh->out_h;
    fwd.in_w = sh->out_w;
    fwd.out_channels = sh->in_channels;
    fwd.pad_h = sh->kernel_h - 1 - sh->pad_h;
    fwd.pad_w = sh->kernel_w - 1 - sh->pad_w;
    fwd.out_h = sh->in_h;
    fwd.out_w = sh->in_w;
    return fwd;
}

/* Bytes of the flipped, transposed weights (C*K*R*S elements of elem_bytes), 0 if that overflows. */
static size_t fc_flipped_weight_bytes(const fc_conv_shape *sh, size_t elem_bytes)
{
    int64_t elements, bytes;
    if (__builtin_mul_overflow(sh->in_channels, sh->out_channels, &elements)
        || __builtin_mul_overflow(elements, sh->kernel_h * sh->kernel_w, &elements)
        || __builtin_mul_overflow(elements, (int64_t)elem_bytes, &bytes) || (uint64_t)bytes > SIZE_MAX)
        return 0;
    return (size_t)bytes;
}

#define FC_TEMPLATE_FILE "conv_im2col.c"
#include "fc_template.h"

#else /* FC_TEMPLATE_PASS: type-generic code, `real` is float or double */

/* col (CRS x count*P, row stride ld_col) = the side-by-side im2col of `count` images from x_chunk. */
static void FC_FN(im2col_chunk)(const fc_ctx *ctx, const fc_conv_shape *shape, const real *x_chunk,
                                fc_index count, real *col, fc_index ld_col)
{
    const fc_index channels = shape->in_channels;
    const fc_index in_plane = shape->in_h * shape->in_w;
    const fc_index out_plane = shape->out_h * shape->out_w;
    const fc_index taps = shape->kernel_h * shape->kernel_w;
    #pragma omp parallel for num_threads(ctx->num_threads) schedule(static)
    for (fc_index job = 0; job < count * channels; job++) {
        fc_index n = job / channels, c = job % channels;
        FC_FN(fc_im2col_plane)(shape, x_chunk + job * in_plane,
                               col + c * taps * ld_col + n * out_plane, ld_col);
    }
}

/* grad_x_chunk = col2im of the side-by-side column matrix (written, not accumulated). */
static void FC_FN(col2im_chunk)(const fc_ctx *ctx, const fc_conv_shape *shape, const real *col,
                                fc_index ld_col, fc_index count, real *grad_x_chunk)
{
    const fc_index channels = shape->in_channels;
    const fc_index in_plane = shape->in_h * shape->in_w;
    const fc_index out_plane = shape->out_h * shape->out_w;
    const fc_index taps = shape->kernel_h * shape->kernel_w;
    #pragma omp parallel for num_threads(ctx->num_threads) schedule(static)
    for (fc_index job = 0; job < count * channels; job++) {
        fc_index n = job / channels, c = job % channels;
        real *plane = grad_x_chunk + job * in_plane;
        memset(plane, 0, (size_t)in_plane * sizeof(real));
        FC_FN(fc_col2im_plane)(ctx->simd, shape, col + c * taps * ld_col + n * out_plane, ld_col, plane);
    }
}

/* dy (K x count*P) = the chunk's grad_y with image n in columns [n*P, (n+1)*P): the layout of the
 * chunk's side-by-side column matrix, which NCHW (image index outermost) is not. */
static void FC_FN(gather_grad_y)(const fc_ctx *ctx, const real *grad_y_chunk, fc_index count,
                                 fc_index out_channels, fc_index out_plane, real *dy, fc_index ld_dy)
{
    #pragma omp parallel for num_threads(ctx->num_threads) schedule(static)
    for (fc_index job = 0; job < count * out_channels; job++) {
        fc_index n = job / out_channels, k = job % out_channels;
        memcpy(dy + k * ld_dy + n * out_plane, grad_y_chunk + job * out_plane,
               (size_t)out_plane * sizeof(real));
    }
}

/* grad_b[k] = sum of grad_y over n, h, w. Each k is one thread's serial sum (fixed order), kept in
 * double so that a float sum over a large batch does not drift. */
static void FC_FN(bias_gradient)(const fc_ctx *ctx, const fc_conv_shape *shape, const real *grad_y,
                                 real *grad_b)
{
    const fc_index batch = shape->batch, out_channels = shape->out_channels;
    const fc_index out_plane = shape->out_h * shape->out_w;
    #pragma omp parallel for num_threads(ctx->num_threads) schedule(static)
    for (fc_index k = 0; k < out_channels; k++) {
        double total = 0.0;
        for (fc_index n = 0; n < batch; n++) {
            const real *row = grad_y + (n * out_channels + k) * out_plane;
            double row_sum = 0.0;
            for (fc_index q = 0; q < out_plane; q++)
                row_sum += row[q];
            total += row_sum;
        }
        grad_b[k] = (real)total;
    }
}

/* y_n[k][j0, j1) += bias[k] for every output channel k: the epilogue of one task's column block. */
static void FC_FN(add_bias_block)(const real *bias, fc_index out_channels, fc_index out_plane,
                                  fc_index j0, fc_index j1, real *y_n)
{
    for (fc_index k = 0; k < out_channels; k++) {
        real *row = y_n + k * out_plane;
        const real b = bias[k];
        for (fc_index j = j0; j < j1; j++)
            row[j] += b;
    }
}

/* One task of the fused forward: output columns [jr_begin*NR, jr_end*NR) of image n, read from x_read
 * (x_n, or its copy with ranges->copy_image) (the loops of gemm.c's one thread, with B packed by im2col
 * instead of copied). With row_offsets (im2col.implicit) the micro-kernel reads x_read in place,
 * `lanes` columns per vector, instead of a panel built from it: one output row's, or where out_w is half
 * a vector, two rows' halves. */
static void FC_FN(forward_task)(fc_simd_level level, const FC_CAT(fc_gemm_plan, FC_SUFFIX) *plan,
                                const fc_im2col_ranges *ranges, const real *a_all, const fc_index *row_offsets,
                                fc_index lanes, const real *x_read, const real *x_next, const real *bias,
                                fc_index jr_begin, fc_index jr_end, real *b_panel, real *y_n)
{
    const fc_conv_shape *sh = ranges->shape;
    const fc_index out_channels = sh->out_channels, out_plane = sh->out_h * sh->out_w;
    const fc_index crs = sh->in_channels * sh->kernel_h * sh->kernel_w;
    const fc_index mr = plan->blocks.mr, nr = plan->blocks.nr, kc_max = plan->blocks.kc;
    const fc_index m_pad = (out_channels + mr - 1) / mr * mr;
    const fc_index j_end = jr_end * nr < out_plane ? jr_end * nr : out_plane;
    /* x_next's cache lines, spread over the micro-kernel calls of this task: the next copy reads them from L2 */
    const fc_index next_lines = x_next ? sh->in_channels * sh->in_h * sh->in_w * (fc_index)sizeof(real) / 64 : 0;
    const fc_index calls = (crs + kc_max - 1) / kc_max * (jr_end - jr_begin) * (m_pad / mr);
    const fc_index lines_per_call = (next_lines + calls - 1) / calls;
    const fc_index half_step = row_offsets && sh->out_w % lanes != 0
                               ? fc_im2col_copy_position(ranges, lanes / 2) - fc_im2col_copy_position(ranges, 0) : 0;
    fc_index prefetched = 0;

    for (fc_index pc = 0; pc < crs; pc += kc_max) {
        const fc_index kc = crs - pc < kc_max ? crs - pc : kc_max;
        const real beta = pc == 0 ? (real)0 : (real)1;
        for (fc_index j0 = jr_begin * nr; j0 < j_end; j0 += nr) {
            const fc_index cols = j_end - j0 < nr ? j_end - j0 : nr;
            fc_index vec_offsets[FC_IM2COL_MAX_PANEL_VECTORS];
            const int vectors = row_offsets ? (int)(cols / lanes) : 0;
            for (int v = 0; v < vectors; v++)
                vec_offsets[v] = fc_im2col_copy_position(ranges, j0 + v * lanes);
            if (!row_offsets)
                FC_FN(fc_im2col_panel)(level, ranges, x_read, pc, kc, j0, cols, nr, b_panel);
            for (fc_index ir = 0; ir < out_channels; ir += mr) {
                const fc_index rows = out_channels - ir < mr ? out_channels - ir : mr;
                const real *a_tile = a_all + pc * m_pad + ir * kc;
                real *c_tile = y_n + ir * out_plane + j0;
                for (fc_index end = prefetched + lines_per_call; prefetched < end && prefetched < next_lines; prefetched++)
                    __builtin_prefetch((const char *)x_next + prefetched * 64, 0, 2);
                if (row_offsets)
                    plan->indirect_ukernel((int)rows, vectors, kc, a_tile, x_read, row_offsets + pc, vec_offsets,
                                           half_step, beta, c_tile, out_plane);
                else
                    FC_FN(fc_gemm_multiply_panel)(plan, rows, cols, kc, (real)1, a_tile, b_panel, beta, c_tile,
                                                  out_plane);
            }
        }
    }
    if (bias)
        FC_FN(add_bias_block)(bias, out_channels, out_plane, jr_begin * nr, j_end, y_n);
}

int FC_FN(fc_conv2d_forward_im2col)(const fc_ctx *ctx, const fc_conv_shape *shape, const real *x,
                                    const real *weight, const real *bias, real *y)
{
    FC_CAT(fc_gemm_plan, FC_SUFFIX) plan = FC_FN(fc_gemm_plan_for)(ctx->simd);
    const fc_index out_channels = shape->out_channels, nr = plan.blocks.nr;
    const fc_index in_image = shape->in_channels * shape->in_h * shape->in_w;
    const fc_index out_plane = shape->out_h * shape->out_w;
    const fc_index crs = shape->in_channels * shape->kernel_h * shape->kernel_w;
    const fc_index panels = (out_plane + nr - 1) / nr;
    fc_index block_panels = FC_IM2COL_C_BLOCK_BYTES / (out_channels * nr * (fc_index)sizeof(real));
    fc_index blocks_per_image, tasks;
    fc_im2col_ranges ranges;
    real *a_all;
    int status = FC_OK, threads;

    const fc_conv_plan conv_plan = fc_conv_plan_forward(ctx, shape, FC_ALGO_IM2COL, FC_DTYPE);
    const int implicit = conv_plan.kernel == FC_KERNEL_IM2COL_IMPLICIT && plan.indirect_ukernel != NULL;
    fc_index *row_offsets = NULL;

    plan.blocks.kc = (int)fc_fused_depth(crs, plan.blocks.kc);
    block_panels = block_panels < 1 ? 1 : block_panels > panels ? panels : block_panels;
    blocks_per_image = (panels + block_panels - 1) / block_panels;
    tasks = shape->batch * blocks_per_image;
    threads = tasks < ctx->num_threads ? (int)tasks : ctx->num_threads;
    if (fc_im2col_ranges_init(&ranges, shape, implicit) != FC_OK)
        return FC_ENOMEM;
    a_all = fc_gemm_alloc((size_t)fc_gemm_packed_a_size(&plan.blocks, out_channels, crs) * sizeof(real));
    row_offsets = implicit ? malloc((size_t)crs * sizeof(fc_index)) : NULL;
    if (a_all == NULL || (implicit && row_offsets == NULL)) {
        free(a_all);
        fc_im2col_ranges_free(&ranges);
        return FC_ENOMEM;
    }
    if (implicit)
        fc_im2col_copy_row_offsets(&ranges, row_offsets);
    FC_FN(fc_gemm_pack_a_all)(&plan, weight, crs, 1, out_channels, crs, a_all);
    #pragma omp parallel num_threads(threads) if (threads > 1)
    {
        real *b_panel = implicit ? NULL : fc_gemm_alloc((size_t)(plan.blocks.kc * nr) * sizeof(real));
        real *x_copy = ranges.copy_image ? fc_gemm_alloc((size_t)ranges.copy_size * sizeof(real)) : NULL;
        fc_index copied = -1;   /* the image x_copy holds */
        #pragma omp for schedule(static)
        for (fc_index task = 0; task < tasks; task++) {
            const fc_index n = task / blocks_per_image, first = task % blocks_per_image * block_panels;
            const fc_index last = first + block_panels < panels ? first + block_panels : panels;
            if ((!implicit && b_panel == NULL) || (ranges.copy_image && x_copy == NULL)) {
                #pragma omp atomic write
                status = FC_ENOMEM;
                continue;
            }
            const fc_index n_next = (task + 1) / blocks_per_image;
            const real *x_next = ranges.copy_image && n_next != n && n_next < shape->batch
                                 ? x + n_next * in_image : NULL;
            if (ranges.copy_image && copied != n)
                FC_FN(fc_im2col_copy_image)(ctx->simd, &ranges, x + n * in_image, x_copy);
            copied = n;
            FC_FN(forward_task)(ctx->simd, &plan, &ranges, a_all, row_offsets, conv_plan.lanes,
                                ranges.copy_image ? x_copy : x + n * in_image, x_next, bias, first, last, b_panel,
                                y + n * out_channels * out_plane);
        }
        free(b_panel);
        free(x_copy);
    }
    free(a_all);
    free(row_offsets);
    fc_im2col_ranges_free(&ranges);
    return status;
}

/* Images' output rows per block of grad_x_by_image: the block's columns (whole rows, a multiple of the
 * GEMM's NR where a block holds that many) within FC_IM2COL_BY_IMAGE_BLOCK_BYTES of column matrix, at
 * least one row. */
static fc_index FC_FN(by_image_block_rows)(const fc_conv_shape *shape, fc_index nr)
{
    const fc_index crs = shape->in_channels * shape->kernel_h * shape->kernel_w;
    fc_index columns = FC_IM2COL_BY_IMAGE_BLOCK_BYTES / (crs * (fc_index)sizeof(real));
    if (columns >= nr)
        columns = columns / nr * nr;
    const fc_index rows = columns / shape->out_w;
    return rows < 1 ? 1 : (rows > shape->out_h ? shape->out_h : rows);
}

/* Rows [0, kc) x columns [0, n) of dY_n (row stride ld) -> one B micro-panel, columns n..nr-1 zero. */
static void FC_FN(pack_grad_y_panel)(const real *dy, fc_index ld, fc_index kc, fc_index n, fc_index nr,
                                     real *panel)
{
    for (fc_index p = 0; p < kc; p++) {
        const real *src = dy + p * ld;
        real *dst = panel + p * nr;
        for (fc_index j = 0; j < n; j++)
            dst[j] = src[j];
        for (fc_index j = n; j < nr; j++)
            dst[j] = 0;
    }
}

/* grad_x_n = col2im(W^T dY_n), a block of block_rows output rows at a time: the block's columns of the
 * column matrix (the GEMM's loops over B panels, A packed once by the caller) go into `col`, then are
 * added into grad_x_n while still in L2. A grad_x element next to a block border sums the blocks in
 * order: the order is the shape's, not the thread count's. */
static void FC_FN(grad_x_image)(fc_simd_level level, const FC_CAT(fc_gemm_plan, FC_SUFFIX) *plan,
                                const fc_conv_shape *shape,
                                const real *a_all, fc_index block_rows, const real *dy_n, real *b_panel,
                                real *col, real *grad_x_n)
{
    const fc_index out_channels = shape->out_channels, out_w = shape->out_w;
    const fc_index out_plane = shape->out_h * out_w, in_plane = shape->in_h * shape->in_w;
    const fc_index taps = shape->kernel_h * shape->kernel_w, crs = shape->in_channels * taps;
    const fc_index nr = plan->blocks.nr, kc_max = plan->blocks.kc;
    const fc_index m_pad = (crs + plan->blocks.mr - 1) / plan->blocks.mr * plan->blocks.mr;
    memset(grad_x_n, 0, (size_t)(shape->in_channels * in_plane) * sizeof(real));
    for (fc_index oh0 = 0; oh0 < shape->out_h; oh0 += block_rows) {
        const fc_index oh1 = oh0 + block_rows < shape->out_h ? oh0 + block_rows : shape->out_h;
        const fc_index columns = (oh1 - oh0) * out_w;
        for (fc_index pc = 0; pc < out_channels; pc += kc_max) {
            const fc_index kc = out_channels - pc < kc_max ? out_channels - pc : kc_max;
            for (fc_index j = 0; j < columns; j += nr) {
                const fc_index n = columns - j < nr ? columns - j : nr;
                FC_FN(pack_grad_y_panel)(dy_n + pc * out_plane + oh0 * out_w + j, out_plane, kc, n, nr, b_panel);
                FC_FN(fc_gemm_multiply_panel)(plan, crs, n, kc, (real)1, a_all + pc * m_pad, b_panel,
                                              pc == 0 ? (real)0 : (real)1, col + j, columns);
            }
        }
        for (fc_index c = 0; c < shape->in_channels; c++)
            FC_FN(fc_col2im_rows)(level, shape, col + c * taps * columns, columns, oh0, oh1,
                                  grad_x_n + c * in_plane);
    }
}

/* grad_x image by image: each thread takes whole images and computes each one's column matrix a block
 * of output rows at a time, added into grad_x_n while the block is in its cache (grad_x_image), instead of
 * a chunk's col (3.8 MB for LeNet's C3) making a round trip through L3, and without the chunked form's
 * barriers (conv_plan.h's FC_IM2COL_BY_IMAGE_* say where). W^T is packed once for all images. The GEMM
 * sums over K in the chunked form's order (the KC steps of fc_gemm); col2im adds the blocks in order. */
static int FC_FN(grad_x_by_image)(const fc_ctx *ctx, const fc_conv_shape *shape, const real *grad_y,
                                  const real *weight, real *grad_x)
{
    const FC_CAT(fc_gemm_plan, FC_SUFFIX) plan = FC_FN(fc_gemm_plan_for)(ctx->simd);
    const fc_index out_channels = shape->out_channels, channels = shape->in_channels;
    const fc_index in_plane = shape->in_h * shape->in_w, out_plane = shape->out_h * shape->out_w;
    const fc_index crs = channels * shape->kernel_h * shape->kernel_w, nr = plan.blocks.nr;
    const fc_index block_rows = FC_FN(by_image_block_rows)(shape, nr);
    real *a_all = fc_gemm_alloc((size_t)fc_gemm_packed_a_size(&plan.blocks, crs, out_channels) * sizeof(real));
    if (a_all == NULL)
        return FC_ENOMEM;
    /* A = W^T (CRS x K): W (K x CRS) read with swapped strides */
    FC_FN(fc_gemm_pack_a_all)(&plan, weight, 1, crs, crs, out_channels, a_all);
    int status = FC_OK;
    #pragma omp parallel num_threads(ctx->num_threads)
    {
        real *b_panel = fc_gemm_alloc((size_t)(plan.blocks.kc * nr) * sizeof(real));
        real *col = malloc((size_t)(crs * block_rows * shape->out_w) * sizeof(real));
        #pragma omp for schedule(static)
        for (fc_index n = 0; n < shape->batch; n++) {
            if (b_panel == NULL || col == NULL) {
                #pragma omp atomic write
                status = FC_ENOMEM;
                continue;
            }
            FC_FN(grad_x_image)(ctx->simd, &plan, shape, a_all, block_rows, grad_y + n * out_channels * out_plane,
                                b_panel, col, grad_x + n * channels * in_plane);
        }
        free(b_panel);
        free(col);
    }
    free(a_all);
    return status;
}

/* flipped[c][k][r][s] = weight[k][c][R-1-r][S-1-s]: the weights of grad_x's forward. */
static void FC_FN(flip_transpose_weights)(const fc_conv_shape *sh, const real *weight, real *flipped)
{
    const fc_index channels = sh->in_channels, out_channels = sh->out_channels;
    const fc_index taps = sh->kernel_h * sh->kernel_w;
    for (fc_index c = 0; c < channels; c++)
        for (fc_index k = 0; k < out_channels; k++) {
            const real *src = weight + (k * channels + c) * taps;
            real *dst = flipped + (c * out_channels + k) * taps;
            for (fc_index t = 0; t < taps; t++)
                dst[t] = src[taps - 1 - t];
        }
}

/* grad_x as the fused forward of grad_y with the flipped, transposed weights (stride 1, padding at most
 * kernel - 1: the plan's conditions). Scratch: one copy of the weights, whatever the batch. */
static int FC_FN(grad_x_as_forward)(const fc_ctx *ctx, const fc_conv_shape *shape, const real *grad_y,
                                    const real *weight, real *grad_x)
{
    const fc_conv_shape forward = fc_grad_x_forward_shape(shape);
    const size_t bytes = fc_flipped_weight_bytes(shape, sizeof(real));
    real *flipped = bytes ? malloc(bytes) : NULL;
    if (flipped == NULL)
        return FC_ENOMEM;
    FC_FN(flip_transpose_weights)(shape, weight, flipped);
    const int status = FC_FN(fc_conv2d_forward_im2col)(ctx, &forward, grad_y, flipped, NULL, grad_x);
    free(flipped);
    return status;
}

int FC_FN(fc_conv2d_backward_im2col)(const fc_ctx *ctx, const fc_conv_shape *shape,
                                     const real *grad_y, const real *x, const real *weight,
                                     real *grad_x, real *grad_w, real *grad_b)
{
    const fc_index batch = shape->batch, out_channels = shape->out_channels;
    const fc_index in_image = shape->in_channels * shape->in_h * shape->in_w;
    const fc_index out_plane = shape->out_h * shape->out_w;
    const fc_index crs = shape->in_channels * shape->kernel_h * shape->kernel_w;
    const fc_conv_plan grad_x_plan = fc_conv_plan_grad_x(ctx, shape, FC_ALGO_IM2COL, FC_DTYPE);
    const fc_index chunk = grad_x_plan.images_per_chunk;   /* images per GEMM: the budget's */
    int status = FC_OK;
    real *col_buf = NULL, *dy_buf = NULL;

    if (grad_b)
        FC_FN(bias_gradient)(ctx, shape, grad_y, grad_b);
    if (grad_x && grad_x_plan.kernel == FC_KERNEL_IM2COL_BY_IMAGE) {
        status = FC_FN(grad_x_by_image)(ctx, shape, grad_y, weight, grad_x);
        grad_x = NULL;
    }
    if (grad_x && grad_x_plan.kernel == FC_KERNEL_IM2COL_AS_FORWARD) {
        status = FC_FN(grad_x_as_forward)(ctx, shape, grad_y, weight, grad_x);
        grad_x = NULL;
    }
    if (status != FC_OK || (!grad_x && !grad_w))
        return status;

    col_buf = malloc((size_t)(crs * chunk * out_plane) * sizeof(real));
    dy_buf = chunk > 1 ? malloc((size_t)(out_channels * chunk * out_plane) * sizeof(real)) : NULL;
    if (!col_buf || (chunk > 1 && !dy_buf)) {
        status = FC_ENOMEM;
        goto done;
    }
    for (fc_index first = 0; first < batch && status == FC_OK; first += chunk) {
        const fc_index count = batch - first < chunk ? batch - first : chunk;
        const fc_index ld = count * out_plane;   /* row stride of both col and dY */
        const real *grad_y_chunk = grad_y + first * out_channels * out_plane;
        const real *dy = grad_y_chunk;            /* one image: grad_y already is (K x P) */

        if (count > 1) {
            FC_FN(gather_grad_y)(ctx, grad_y_chunk, count, out_channels, out_plane, dy_buf, ld);
            dy = dy_buf;
        }
        if (grad_w) {
            /* grad_w (K x CRS) (+)= dY (K x ld) * col^T; col^T is col read with swapped strides. */
            FC_FN(im2col_chunk)(ctx, shape, x + first * in_image, count, col_buf, ld);
            status = FC_FN(fc_gemm)(ctx, out_channels, crs, ld, (real)1, dy, ld, 1, col_buf, 1, ld,
                                    first == 0 ? (real)0 : (real)1, grad_w, crs);
            if (status != FC_OK)
                break;
        }
        if (grad_x) {
            /* col (CRS x ld) = W^T dY, W^T being W (K x CRS) read with swapped strides. */
            status = FC_FN(fc_gemm)(ctx, crs, ld, out_channels, (real)1, weight, 1, crs, dy, ld, 1,
                                    (real)0, col_buf, ld);
            if (status != FC_OK)
                break;
            FC_FN(col2im_chunk)(ctx, shape, col_buf, ld, count, grad_x + first * in_image);
        }
    }
done:
    free(col_buf);
    free(dy_buf);
    return status;
}

#endif /* FC_TEMPLATE_PASS */
