/*
 * conv_direct.h -- the direct convolution's kernels: the geometry they read and what each computes.
 *
 * conv_direct.c holds the drivers (checks, scratch, weight packing, threading loops); each kernel family
 * lives in a file of its own, declared below per element type:
 *   conv_direct_portable.c  any CPU: gather, scatter, dot (grad_w), grad_b
 *   conv_direct_gather.c    the gather with explicit vectors over output columns
 *   conv_direct_kvec.c      forward vectorised over output channels
 *   conv_direct_wvec.c      forward / grad_x vectorised over output columns: wvec and wrows
 *   conv_direct_grad_w.c    grad_w with explicit vectors: dot, kvgw, wvgw
 * The SIMD families are written once over simd_vec.h and compiled per level through simd_template.h;
 * conv_plan.c decides which kernel and which level a call runs.
 *
 * Determinism: every output element is owned by one kernel call and summed in a fixed order (stated
 * per kernel below), so results depend on the SIMD level (the AVX levels use FMA, the portable level
 * cannot) but never on the thread count.
 */
#ifndef FASTCONV_CONV_DIRECT_H
#define FASTCONV_CONV_DIRECT_H

#include "conv_plan.h"
#include "simd_targets.h"

/* Half-open range [lo, hi) of indices. */
typedef struct {
    fc_index lo, hi;
} fc_range;

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

/* Geometry of the kvec forward kernel: the padded input image and the packed weights. */
typedef struct {
    fc_index channels, kernel_h, kernel_w, out_channels, out_h, out_w;
    fc_index in_channel_step, in_row_step;  /* of the (padded) input image */
    fc_index block_row_step;                /* stride_h * in_row_step: next output row's input */
    fc_index k_pad;                         /* out_channels rounded up to whole K steps of a block */
    fc_index stride_w;                      /* next output column's input */
} fc_kvec_geometry;

/* Geometry of the wvec and wrows kernels: a stride_w 1 convolution vectorised over output
 * columns. The input image has rows padded horizontally (pad_w zeros each side, then slack so that the
 * lanes past out_w read inside the buffer); wvec skips input rows above or below the image, wrows' copy
 * holds them as zero rows. Weights packed [channel block][c][r][s][block width]. */
typedef struct {
    fc_index channels, kernel_h, kernel_w, out_channels, out_h, out_w;
    fc_index in_h, pad_h, stride_h;         /* input rows [0, in_h) are real; oh*stride_h - pad_h + r */
    fc_index in_channel_step, in_row_step;  /* of the row-padded image (the rows kernel: padded rows too) */
} fc_wvec_geometry;

/* Geometry of the kvgw kernel: dy transposed per channel vector, x with its border. */
typedef struct {
    fc_index kernel_w, out_h, out_w, stride_h, stride_w;
    fc_index in_row_step;       /* of the (padded) x image */
    fc_index x_image;           /* elements between two images of the (padded) x chunk */
    fc_index dyt_image;         /* out_h * out_w * lanes: one image's pixels for one vector of channels */
    fc_index k_pad;             /* out_channels rounded up to a multiple of the lanes */
} fc_kvgw_geometry;

/* Geometry of the wvgw kernel: x copied with pad_w zero columns on the left and zeros on the
 * right up to row_step (fc_wvgw_row_step); rows in the vertical padding are skipped, not copied. */
typedef struct {
    fc_index out_w;
    fc_index x_oh_step;         /* stride_h * row_step: the next output row's x row */
    fc_index x_image;           /* elements between two images of the copied x */
    fc_index dy_plane, dy_image;
    fc_index sum_k_step;        /* elements of grad_w between two output channels (C*R*S) */
} fc_wvgw_geometry;

#endif /* FASTCONV_CONV_DIRECT_H */

/* ---- the kernels of one element type (read again inside each fc_template.h pass) -------------------
 * Names: fc_<kernel>_portable_f32, and per SIMD level fc_<kernel>_avx2_f32 / _avx512_f64 ... (FCV_FN). */
#if defined(FC_TEMPLATE_PASS) && !defined(FC_VEC_LEVEL)

/* conv_direct_portable.c, any CPU: */

/* One output plane of the gather:
 *     out[oh][ow] = bias + sum over ch, r, s of w(ch,r,s) * in[ch][oh*stride_h - pad_h + r][ow*stride_w - pad_w + s]
 * summed in the order bias, ch, r, s; gather->col_range set (the valid output columns of each tap). */
void FC_FN(fc_gather_plane_portable)(const fc_gather_geometry *gather, const real *in, const real *w,
                                     real bias, real *out);
/* grad_x plane (n, c) for any stride: zeroed, then every grad_y[n][k] element spread back over the
 * input positions it was computed from, k by k. col_range: the forward's valid output columns per tap. */
void FC_FN(fc_scatter_plane)(const fc_conv_shape *sh, const fc_range *col_range, const real *grad_y_n,
                             const real *weight_c, real *restrict grad_x_plane);
/* grad_w[k][c][r][:] (the "dot" task): for each tap s, the sum over n and the valid output rows `rows`
 * and columns col_range[s] of grad_y * x, in 8 partial sums (FC_DIRECT_LANES) added in lane order. */
void FC_FN(fc_dot_task_portable)(const fc_conv_shape *sh, const fc_range *col_range, fc_range rows,
                                 const real *grad_y, const real *x, fc_index k, fc_index c, fc_index r,
                                 real *grad_w_row);
/* grad_b[k]: the sum of the grad_y[:, k] planes, in lanes as the dot task. */
real FC_FN(fc_grad_b_one)(const fc_conv_shape *sh, const real *grad_y, fc_index k);

/* The SIMD kernels, one of each per level (the files below, compiled for AVX2 and AVX-512): */

/* conv_direct_gather.c: the portable gather's plane, for stride_w 1 and kernel_w <=
 * FC_DIRECT_GATHER_SIMD_MAX_KW, in the same order; rows in the vertical padding read zero_row (in_w zeros). */
typedef void FC_FN(fc_gather_plane_fn)(const fc_gather_geometry *gather, const real *in, const real *w,
                                       real bias, const real *zero_row, real *out);
/* conv_direct_grad_w.c: the portable dot task for stride_w 1 and kernel_w <= FC_DIRECT_DOT_SIMD_MAX_KW;
 * lane j of a vector always holds the columns ow0 + j, so the order is fixed by the shape. */
typedef void FC_FN(fc_dot_task_fn)(const fc_conv_shape *sh, const fc_range *col_range, fc_range rows,
                                   const real *grad_y, const real *x, fc_index k, fc_index c, fc_index r,
                                   real *grad_w_row);
/* conv_direct_kvec.c: all output planes of one image, vectorised over output channels. `in` is the
 * (zero-bordered) image, wt the weights packed [c][r][s][k_pad], bias k_pad values; y_image receives
 * K x out_h x out_w. Order per element: bias, then c, r, s. */
typedef void FC_FN(fc_kvec_image_fn)(const fc_kvec_geometry *geo, const real *in, const real *wt,
                                     const real *bias, real *y_image);
/* conv_direct_wvec.c: all output planes of one image of a stride_w 1 convolution, vectorised over
 * output columns. wvec: wp packed in blocks of FC_WVEC_CHANNELS channels, `in` row-padded (rows in the
 * vertical padding skipped); order bias, c, r, s. wrows: wp in blocks of 1, `in` holding the vertical
 * padding rows too; order bias, c, s, r. */
typedef void FC_FN(fc_wvec_image_fn)(const fc_wvec_geometry *geo, const real *in, const real *wp,
                                     const real *bias, real *y_image);
typedef FC_FN(fc_wvec_image_fn) FC_FN(fc_wrows_image_fn);
/* conv_direct_grad_w.c, kvgw: one task's kv vectors of output channels x `rows` kernel rows x kernel_w
 * taps of one input channel, over the `count` images of a chunk (dyt: grad_y transposed per channel
 * vector); gw_acc[(i*kernel_w + s)*k_pad + k] starts at 0 (first_chunk) or from the earlier chunks'
 * sums, so each element sums over n, oh, ow in increasing order across chunks. */
typedef void FC_FN(fc_kvgw_task_fn)(const fc_kvgw_geometry *geo, const real *x_chunk, const real *dyt_chunk,
                                    fc_index dyt_vector_step, fc_index count, int first_chunk, real *gw_acc,
                                    int kv, int rows);
/* conv_direct_grad_w.c, kvgw's copy of dy: dyt[p*lanes + l] = dy[l*channel_step + p] for p < pixels, l <
 * channels (<= lanes), and 0 for the lanes l >= channels (output channels past K); sums (NULL: none)
 * lanes values, sums[l] += dyt[p*lanes + l] for p in increasing order. */
typedef void FC_FN(fc_kvgw_transpose_fn)(const real *dy, fc_index channel_step, int channels, fc_index pixels,
                                         real *dyt, real *sums);
/* conv_direct_grad_w.c, wvgw: the partial sums of kb output channels x kernel_w taps of one kernel row
 * and input channel over `images` images and `rows` valid output rows (x row-padded with zeros);
 * sums[kk*sum_k_step + s]. Lanes past out_w add exactly 0. */
typedef void FC_FN(fc_wvgw_task_fn)(const fc_wvgw_geometry *geo, const real *x_task, const real *dy_task,
                                    fc_index images, fc_index rows, real *sums, int kb, int taps_w);
/* conv_direct_grad_w.c, wvgw's grad_b: the partial sums of kb channels' planes over `images` images,
 * in a fixed order (four row accumulators, then pairwise and across lanes). */
typedef void FC_FN(fc_wvgw_bias_fn)(const fc_wvgw_geometry *geo, const real *dy_block, fc_index images,
                                    fc_index rows, real *sums, int kb);

#if FC_HAVE_X86
FC_FN(fc_gather_plane_fn) FC_FN(fc_gather_plane_avx2), FC_FN(fc_gather_plane_avx512);
FC_FN(fc_dot_task_fn) FC_FN(fc_dot_task_avx2), FC_FN(fc_dot_task_avx512);
FC_FN(fc_kvec_image_fn) FC_FN(fc_kvec_image_avx2), FC_FN(fc_kvec_image_avx512);
FC_FN(fc_wvec_image_fn) FC_FN(fc_wvec_image_avx2), FC_FN(fc_wvec_image_avx512);
FC_FN(fc_wrows_image_fn) FC_FN(fc_wrows_image_avx2), FC_FN(fc_wrows_image_avx512);
FC_FN(fc_kvgw_task_fn) FC_FN(fc_kvgw_task_avx2), FC_FN(fc_kvgw_task_avx512);
FC_FN(fc_kvgw_transpose_fn) FC_FN(fc_kvgw_transpose_avx2), FC_FN(fc_kvgw_transpose_avx512);
FC_FN(fc_wvgw_task_fn) FC_FN(fc_wvgw_task_avx2), FC_FN(fc_wvgw_task_avx512);
FC_FN(fc_wvgw_bias_fn) FC_FN(fc_wvgw_bias_avx2), FC_FN(fc_wvgw_bias_avx512);
/* The plan's level of SIMD kernel `name` (the plan picks SIMD kernels only where the CPU has a level). */
#define FC_DIRECT_SIMD(plan, name) \
    ((plan)->simd >= FC_SIMD_AVX512 ? FC_FN(FC_CAT(name, avx512)) : FC_FN(FC_CAT(name, avx2)))
#else
#define FC_DIRECT_SIMD(plan, name) ((FC_FN(FC_CAT(name, fn)) *)NULL)
#endif

#endif /* FC_TEMPLATE_PASS && !FC_VEC_LEVEL */
