/*
 * conv_direct_wvec.c -- a stride_w 1 convolution vectorised over output columns, the forward or grad_x
 * run as one: "wvec" (blocks of output channels) and "wrows" (blocks of output rows of one channel).
 * One copy per SIMD level, over simd_vec.h. Contracts: conv_direct.h.
 */
#if !defined(FC_TEMPLATE_PASS)
#include "conv_direct.h"

#define FC_SIMD_TEMPLATE_FILE "conv_direct_wvec.c"
#include "simd_template.h"

#elif !defined(FC_VEC_LEVEL)
#include "conv_direct.h"   /* this type's declarations */

#else
/* -- forward vectorised over output columns, blocked over output channels (the "wvec" kernel) ----
 * For few output channels (LeNet's first layer: 6, under one AVX2 vector for kvec) and for the input
 * gradient of a stride-1 convolution run as one (grad_x = conv(dY, W flipped and transposed), whose
 * K' is the layer's C: 6 in LeNet's C3). A block is FC_WVEC_CHANNELS channels x nv vectors of consecutive
 * output columns of one output row: per tap, nv input loads are shared by FC_WVEC_CHANNELS weight
 * broadcasts (2 + 6 loads per 12 FMAs). Taps whose input row lies in the vertical padding are skipped;
 * horizontal padding is in the copied image. Per output element the sum runs bias, then c, r, s. */
static inline __attribute__((always_inline)) FCV_TARGET void
FCV_FN(wvec_block)(const fc_wvec_geometry *geo, const real *in, const real *wp, const real *bias,
                   fc_index oh, fc_index ow0, fc_index kb_count, fc_index cols, real *y_block, const int nv)
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
    /* straight into the block's valid channels and columns (the last vector in part) */
    const fc_index out_plane = geo->out_h * geo->out_w;
    const int last_lanes = (int)(cols - (nv - 1) * FCV_LANES);
    #pragma GCC unroll 6
    for (int kb = 0; kb < FC_WVEC_CHANNELS; kb++) {
        if (kb >= kb_count)
            break;
        real *y_row = y_block + kb * out_plane;
        #pragma GCC unroll 2
        for (int v = 0; v < nv - 1; v++)
            fcv_storeu(y_row + v * FCV_LANES, acc[kb][v]);
        FCV_FN(store_first)(y_row + (nv - 1) * FCV_LANES, acc[kb][nv - 1], last_lanes);
    }
}

/* All output planes of one image: blocks of FC_WVEC_CHANNELS channels x (1 or FC_WVEC_VECTORS vectors) of each
 * output row, stored into y_image's valid channels and columns. wp: the packed weights,
 * then FC_WVEC_CHANNELS biases per block (zero past out_channels), as pack_weights lays them out. */
FCV_TARGET void FCV_FN(fc_wvec_image)(const fc_wvec_geometry *geo, const real *in, const real *wp,
                                      const real *bias, real *y_image)
{
    const fc_index out_h = geo->out_h, out_w = geo->out_w, out_plane = out_h * out_w;
    const fc_index taps = geo->channels * geo->kernel_h * geo->kernel_w;
    for (fc_index k0 = 0; k0 < geo->out_channels; k0 += FC_WVEC_CHANNELS) {
        const fc_index kb_count = geo->out_channels - k0 < FC_WVEC_CHANNELS ? geo->out_channels - k0 : FC_WVEC_CHANNELS;
        const real *wp_block = wp + k0 / FC_WVEC_CHANNELS * taps * FC_WVEC_CHANNELS;
        const real *bias_block = bias + k0;
        for (fc_index oh = 0; oh < out_h; oh++) {
            for (fc_index ow0 = 0; ow0 < out_w; ow0 += FC_WVEC_VECTORS * FCV_LANES) {
                const fc_index cols = out_w - ow0 < FC_WVEC_VECTORS * FCV_LANES ? out_w - ow0 : FC_WVEC_VECTORS * FCV_LANES;
                real *y_block = y_image + k0 * out_plane + oh * out_w + ow0;
                if (cols > FCV_LANES)
                    FCV_FN(wvec_block)(geo, in, wp_block, bias_block, oh, ow0, kb_count, cols, y_block,
                                       FC_WVEC_VECTORS);
                else
                    FCV_FN(wvec_block)(geo, in, wp_block, bias_block, oh, ow0, kb_count, cols, y_block, 1);
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
FCV_TARGET void FCV_FN(fc_wrows_image)(const fc_wvec_geometry *geo, const real *in, const real *wp,
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
#endif
