/*
 * conv_direct_kvec.c -- the forward vectorised over output channels ("kvec"), one copy per SIMD level,
 * over simd_vec.h. Contract: conv_direct.h.
 */
#if !defined(FC_TEMPLATE_PASS)
#include "conv_direct.h"
#include "fc_compiler.h"

#define FC_KVEC_MAX_COLS 12       /* output columns per register block */

#define FC_SIMD_TEMPLATE_FILE "conv_direct_kvec.c"
#include "simd_template.h"

#elif !defined(FC_VEC_LEVEL)
#include "conv_direct.h"   /* this type's declarations */

#else
/* -- forward vectorised over output channels (the "kvec" kernel) -------------------------------
 * When out_w is small (LeNet's 10x10 planes) the row-vectorised gather (conv_direct_gather.c) leaves most lanes
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

/* Store a block's accumulators into the `lanes` output planes at y (the block's first pixel of its first
 * plane): each row's pixels, FCV_LANES at a time, transposed in registers so that a vector holds one
 * channel's run of pixels, then stored as one (partial) vector per channel. */
static inline __attribute__((always_inline)) FCV_TARGET void
FCV_FN(kvec_store_block)(fcv_vec acc[FC_KVEC_K_VECTORS][FC_KVEC_ROWS][FC_KVEC_MAX_COLS], const int lanes,
                         const int kv, const int rows, const int cols, fc_index out_plane, fc_index out_w, real *y)
{
    #pragma GCC unroll 2
    for (int v = 0; v < kv; v++)
        #pragma GCC unroll 2
        for (int i = 0; i < rows; i++)
            #pragma GCC unroll 2
            for (int j0 = 0; j0 < cols; j0 += FCV_LANES) {
                const int count = cols - j0 < FCV_LANES ? cols - j0 : FCV_LANES;
                fcv_vec pixels[FCV_LANES];
                #pragma GCC unroll 16
                for (int q = 0; q < FCV_LANES; q++)
                    pixels[q] = q < count ? acc[v][i][j0 + q] : fcv_set1(0);
                FCV_FN(transpose)(pixels);
                real *at = y + v * FCV_LANES * out_plane + i * out_w + j0;
                #pragma GCC unroll 16
                for (int lane = 0; lane < FCV_LANES; lane++)
                    if (v * FCV_LANES + lane < lanes)
                        FCV_FN(store_first)(at + lane * out_plane, pixels[lane], count);
            }
}

/* One block: kv vectors of output channels x rows x cols output pixels (compile-time constants after
 * inlining), written to the planes at y. col_step is stride_w, a constant 1 in the unit-stride case. */
static inline __attribute__((always_inline)) FCV_TARGET void
FCV_FN(kvec_block)(const fc_kvec_geometry *geo, const real *in, const real *wt, const real *bias, const int lanes,
                   const int kv, const int rows, const int cols, const fc_index col_step, real *y)
{
    const fc_index channels = geo->channels, kernel_h = geo->kernel_h, kernel_w = geo->kernel_w;
    const fc_index in_channel_step = geo->in_channel_step, in_row_step = geo->in_row_step;
    const fc_index block_row_step = geo->block_row_step, wt_tap_step = geo->k_pad;
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
            const real *in_rows[FC_KVEC_ROWS];
            #pragma GCC unroll 2
            for (int i = 0; i < rows; i++)
                in_rows[i] = in + c * in_channel_step + r * in_row_step + i * block_row_step;
            for (fc_index s = 0; s < kernel_w; s++) {
                fcv_vec w_vec[FC_KVEC_K_VECTORS];
                #pragma GCC unroll 2
                for (int v = 0; v < kv; v++)
                    w_vec[v] = fcv_loadu(wt + v * FCV_LANES);
                wt += wt_tap_step;
                #pragma GCC unroll 2
                for (int i = 0; i < rows; i++) {
                    const real *tap = in_rows[i] + s;
                    FC_OPAQUE_PTR(tap);
                    #pragma GCC unroll 12
                    for (int j = 0; j < cols; j++) {
                        const fcv_vec x_vec = fcv_set1(tap[j * col_step]);
                        #pragma GCC unroll 2
                        for (int v = 0; v < kv; v++)
                            acc[v][i][j] = fcv_fmadd(x_vec, w_vec[v], acc[v][i][j]);
                    }
                }
            }
        }
    }
    FCV_FN(kvec_store_block)(acc, lanes, kv, rows, cols, geo->out_h * geo->out_w, geo->out_w, y);
}

/* One block of kv (1 or FC_KVEC_K_VECTORS) channel vectors x `rows` (FC_KVEC_ROWS or 1) x `cols`
 * pixels, each a compile-time constant per case. Two-vector blocks have at most 6 columns (kvec_image
 * asks for FC_KVEC_MAX_COLS / kv), so their cases above 6 are never reached; the clamp keeps the
 * accumulators within the register budget in the code the compiler generates for them. */
static inline __attribute__((always_inline)) FCV_TARGET void
FCV_FN(kvec_block_cases)(const fc_kvec_geometry *geo, const real *in, const real *wt, const real *bias, int lanes,
                         int kv, int rows, int cols, const fc_index col_step, real *y)
{
#define FC_KVEC_CASE(n)                                                                                  \
    case n:                                                                                              \
        if (kv == 2 && FC_KVEC_K_VECTORS == 2)                                                           \
            FCV_FN(kvec_block)(geo, in, wt, bias, lanes, FC_KVEC_K_VECTORS, 1, n <= 6 ? n : 6, col_step, y); \
        else if (rows == FC_KVEC_ROWS)                                                                   \
            FCV_FN(kvec_block)(geo, in, wt, bias, lanes, 1, FC_KVEC_ROWS, n, col_step, y);               \
        else                                                                                             \
            FCV_FN(kvec_block)(geo, in, wt, bias, lanes, 1, 1, n, col_step, y);                          \
        break;
    switch (cols) {
    FC_KVEC_CASE(1) FC_KVEC_CASE(2) FC_KVEC_CASE(3) FC_KVEC_CASE(4) FC_KVEC_CASE(5) FC_KVEC_CASE(6)
    FC_KVEC_CASE(7) FC_KVEC_CASE(8) FC_KVEC_CASE(9) FC_KVEC_CASE(10) FC_KVEC_CASE(11)
    default: FC_KVEC_CASE(12)
    }
#undef FC_KVEC_CASE
}

/* Unit column stride, the common case, as a constant: the block's input columns are then fixed offsets
 * from its row pointers, where a run-time stride needs a general register per column. */
static FCV_TARGET void FCV_FN(kvec_block_dispatch)(const fc_kvec_geometry *geo, const real *in, const real *wt,
                                                   const real *bias, int lanes, int kv, int rows, int cols,
                                                   real *y)
{
    if (geo->stride_w == 1)
        FCV_FN(kvec_block_cases)(geo, in, wt, bias, lanes, kv, rows, cols, 1, y);
    else
        FCV_FN(kvec_block_cases)(geo, in, wt, bias, lanes, kv, rows, cols, geo->stride_w, y);
}

/* All output planes of one image. `in` is the (padded) image, wt/bias the packed weights and bias;
 * y_image is the image's K x out_h x out_w output. */
FCV_TARGET void FCV_FN(fc_kvec_image)(const fc_kvec_geometry *geo, const real *in, const real *wt,
                                      const real *bias, real *y_image)
{
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
                                            bias + k0, lanes, kv, rows, cols,
                                            y_image + k0 * out_plane + oh0 * out_w + ow0);
            }
        }
    }
}
#undef FC_KVEC_ROWS
#undef FC_KVEC_K_VECTORS
#endif
