/*
 * conv_im2col.c -- convolution as im2col + GEMM, forward and backward.
 *
 * With P = out_h*out_w and CRS = C*R*S, one image's convolution is the matrix product
 *     Y_n (K x P) = W (K x CRS) * col_n (CRS x P),           col_n = im2col(x_n),
 * and its gradients are
 *     grad_W += dY_n (K x P) * col_n^T,     grad_x_n = col2im(W^T (CRS x K) * dY_n).
 *
 * Chunks of images. One image's GEMM is often small (LeNet's second layer: 16 x 100 x 150), too
 * small to amortise packing W or to give both cores a macro-tile. So the batch is cut into chunks of
 * `count` images whose column matrices sit SIDE BY SIDE in one buffer,
 *     col (CRS x count*P):  image n of the chunk owns columns [n*P, (n+1)*P),
 * and one GEMM with N = count*P covers the whole chunk. The chunk size comes from a fixed scratch
 * budget (FC_IM2COL_SCRATCH_BYTES) and the shape only -- never from the thread count -- so results are
 * the same with any number of threads; a chunk holds at least one image, however large.
 *
 * Output layout. The natural GEMM output (K x count*P) is not NCHW (NCHW wants the image index
 * outermost), and a row-major C with one ldc cannot express the jump between images. We keep the
 * one big GEMM and write its result to a scratch matrix, then copy it into y image by image, adding
 * the bias in that same pass (the "epilogue"); the copy is K*P per image, tiny next to the GEMM's
 * K*P*CRS multiply-adds. A chunk of one image (large images) needs no copy: the GEMM writes straight
 * into y with ldc = P and the bias is added in place. The backward pass gathers dY of a chunk into the
 * same (K x count*P) layout for the same reason.
 *
 * Threads: the GEMM parallelises itself; im2col / col2im run in parallel over (image, channel)
 * planes of the chunk; chunks run one after the other, so grad_W's sum over chunks has a fixed order.
 */
#ifndef FC_TEMPLATE_PASS

#include <stdlib.h>
#include <string.h>
#include "im2col.h"

/* Scratch budget of one call: the column buffer plus the (K x count*P) output / dY buffer. */
#define FC_IM2COL_SCRATCH_BYTES ((fc_index)4 << 20)

/* grad_x image by image (grad_x_by_image) when an image's column matrix is small (two or more fit the
 * budget) and the GEMM's depth, out_channels, is at most this. Measured (2 threads, float32, AVX-512,
 * ms, by image vs chunked): lenet-c3 (K 16) 0.52 vs 0.74 inside a training step; seed000-c2 (K 50) 1.96
 * vs 2.66; strided (K 64) 1.72 vs 2.32; but seed002-c4 (K 128) 3.5 vs 2.2: its W^T, packed again for
 * every image, is as large as the image's GEMM is long. */
#define FC_IM2COL_BY_IMAGE_MAX_K 64

/* Images per chunk: as many as the scratch budget holds at `bytes_per_image` each, at least one. */
static fc_index fc_images_per_chunk(fc_index batch, fc_index bytes_per_image)
{
    fc_index count = FC_IM2COL_SCRATCH_BYTES / bytes_per_image;
    if (count < 1)
        count = 1;
    return count < batch ? count : batch;
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
        FC_FN(fc_col2im_plane)(shape, col + c * taps * ld_col + n * out_plane, ld_col, plane);
    }
}

/* Epilogue of the chunked forward GEMM: y image n, channel k = out row k, columns of image n, + bias. */
static void FC_FN(scatter_add_bias)(const fc_ctx *ctx, const real *out, fc_index ld_out,
                                    fc_index count, fc_index out_channels, fc_index out_plane,
                                    const real *bias, real *y_chunk)
{
    #pragma omp parallel for num_threads(ctx->num_threads) schedule(static)
    for (fc_index job = 0; job < count * out_channels; job++) {
        fc_index n = job / out_channels, k = job % out_channels;
        const real *src = out + k * ld_out + n * out_plane;
        real *dst = y_chunk + job * out_plane;
        if (bias) {
            const real b = bias[k];
            for (fc_index q = 0; q < out_plane; q++)
                dst[q] = src[q] + b;
        } else {
            memcpy(dst, src, (size_t)out_plane * sizeof(real));
        }
    }
}

/* Epilogue of a one-image chunk, whose GEMM wrote y directly: y_image (K x P) += bias. */
static void FC_FN(add_bias_in_place)(const fc_ctx *ctx, const real *bias, fc_index out_channels,
                                     fc_index out_plane, real *y_image)
{
    #pragma omp parallel for num_threads(ctx->num_threads) schedule(static)
    for (fc_index k = 0; k < out_channels; k++) {
        real *row = y_image + k * out_plane;
        const real b = bias[k];
        for (fc_index q = 0; q < out_plane; q++)
            row[q] += b;
    }
}

/* dy (K x count*P) = the chunk's grad_y with image n in columns [n*P, (n+1)*P): the inverse of the
 * forward epilogue's layout change. */
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

int FC_FN(fc_conv2d_forward_im2col)(const fc_ctx *ctx, const fc_conv_shape *shape, const real *x,
                                    const real *weight, const real *bias, real *y)
{
    const fc_index batch = shape->batch, out_channels = shape->out_channels;
    const fc_index in_image = shape->in_channels * shape->in_h * shape->in_w;
    const fc_index out_plane = shape->out_h * shape->out_w;
    const fc_index crs = shape->in_channels * shape->kernel_h * shape->kernel_w;
    const fc_index chunk = fc_images_per_chunk(
        batch, (crs + out_channels) * out_plane * (fc_index)sizeof(real));
    int status = FC_OK;

    real *col_buf = malloc((size_t)(crs * chunk * out_plane) * sizeof(real));
    real *out_buf = chunk > 1 ? malloc((size_t)(out_channels * chunk * out_plane) * sizeof(real))
                              : NULL;
    if (!col_buf || (chunk > 1 && !out_buf)) {
        status = FC_ENOMEM;
        goto done;
    }
    for (fc_index first = 0; first < batch && status == FC_OK; first += chunk) {
        const fc_index count = batch - first < chunk ? batch - first : chunk;
        const fc_index ld_col = count * out_plane;
        real *y_chunk = y + first * out_channels * out_plane;

        FC_FN(im2col_chunk)(ctx, shape, x + first * in_image, count, col_buf, ld_col);
        if (count == 1) {
            status = FC_FN(fc_gemm)(ctx, out_channels, out_plane, crs, (real)1, weight, crs, 1,
                                    col_buf, ld_col, 1, (real)0, y_chunk, out_plane);
            if (status == FC_OK && bias)
                FC_FN(add_bias_in_place)(ctx, bias, out_channels, out_plane, y_chunk);
        } else {
            status = FC_FN(fc_gemm)(ctx, out_channels, ld_col, crs, (real)1, weight, crs, 1,
                                    col_buf, ld_col, 1, (real)0, out_buf, ld_col);
            if (status == FC_OK)
                FC_FN(scatter_add_bias)(ctx, out_buf, ld_col, count, out_channels, out_plane,
                                        bias, y_chunk);
        }
    }
done:
    free(col_buf);
    free(out_buf);
    return status;
}

/* grad_x image by image, for images whose column matrix is small: each thread takes whole images and,
 * for each, computes col = W^T dY_n with a one-thread GEMM into its own scratch, then col2im's it into
 * grad_x_n while col is still in its cache, instead of a chunk's col (3.8 MB for LeNet's C3) making a
 * round trip through L3 (see FC_IM2COL_BY_IMAGE_MAX_K for where it pays). Results are those of the
 * chunked form bit for bit: the GEMM's sums over K run in the same order
 * (the contract of fc_gemm), and col2im adds in the same order. */
static int FC_FN(grad_x_by_image)(const fc_ctx *ctx, const fc_conv_shape *shape, const real *grad_y,
                                  const real *weight, real *grad_x)
{
    const fc_ctx one_thread = { 1, ctx->simd };
    const fc_index out_channels = shape->out_channels, channels = shape->in_channels;
    const fc_index in_plane = shape->in_h * shape->in_w, out_plane = shape->out_h * shape->out_w;
    const fc_index taps = shape->kernel_h * shape->kernel_w, crs = channels * taps;
    int status = FC_OK;
    #pragma omp parallel num_threads(ctx->num_threads)
    {
        real *col = malloc((size_t)(crs * out_plane) * sizeof(real));   /* one image: <= the budget */
        #pragma omp for schedule(static)
        for (fc_index n = 0; n < shape->batch; n++) {
            real *grad_x_n = grad_x + n * channels * in_plane;
            if (col == NULL || FC_FN(fc_gemm)(&one_thread, crs, out_plane, out_channels, (real)1, weight, 1,
                                               crs, grad_y + n * out_channels * out_plane, out_plane, 1,
                                               (real)0, col, out_plane) != FC_OK) {
                #pragma omp atomic write
                status = FC_ENOMEM;
                continue;
            }
            memset(grad_x_n, 0, (size_t)(channels * in_plane) * sizeof(real));
            for (fc_index c = 0; c < channels; c++)
                FC_FN(fc_col2im_plane)(shape, col + c * taps * out_plane, out_plane, grad_x_n + c * in_plane);
        }
        free(col);
    }
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
    const fc_index chunk = fc_images_per_chunk(
        batch, (crs + out_channels) * out_plane * (fc_index)sizeof(real));
    int status = FC_OK;
    real *col_buf = NULL, *dy_buf = NULL;

    if (grad_b)
        FC_FN(bias_gradient)(ctx, shape, grad_y, grad_b);
    if (grad_x && chunk > 1 && out_channels <= FC_IM2COL_BY_IMAGE_MAX_K) {
        /* several images' columns fit the budget, so one image's is small: see grad_x_by_image */
        status = FC_FN(grad_x_by_image)(ctx, shape, grad_y, weight, grad_x);
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
