/*
 * conv_direct_grad_w.c -- grad_w with explicit vectors: the dot task over output columns ("dot_simd"),
 * vectorised over output channels ("kvgw") and over output columns ("wvgw", with grad_b). One copy per
 * SIMD level, over simd_vec.h. Contracts: conv_direct.h.
 */
#if !defined(FC_TEMPLATE_PASS)
#include "conv_direct.h"
#include "fc_compiler.h"

#define FC_SIMD_TEMPLATE_FILE "conv_direct_grad_w.c"
#include "simd_template.h"

#elif !defined(FC_VEC_LEVEL)
#include "conv_direct.h"   /* this type's declarations */

#else
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

FCV_TARGET void FCV_FN(fc_dot_task)(const fc_conv_shape *sh, const fc_range *col_range,
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
#define FC_KVGW_CHANNEL_VECTORS \
    (FC_VEC_LEVEL == FC_VEC_AVX512 ? FC_PLAN_KVGW_CHANNEL_VECTORS_AVX512 : FC_PLAN_KVGW_CHANNEL_VECTORS_AVX2)
#define FC_KVGW_ACCUMULATORS \
    (FC_VEC_LEVEL == FC_VEC_AVX512 ? FC_PLAN_KVGW_ACCUMULATORS_AVX512 : FC_PLAN_KVGW_ACCUMULATORS_AVX2)
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
                for (int i = 0; i < rows; i++) {
                    const real *x_row = x_pix + i * x_row_step;
                    FC_OPAQUE_PTR(x_row);
                    #pragma GCC unroll 7
                    for (int s = 0; s < taps_w; s++) {
                        const fcv_vec x_vec = fcv_set1(x_row[s]);
                        #pragma GCC unroll 2
                        for (int v = 0; v < kv; v++)
                            acc[v][i][s] = fcv_fmadd(x_vec, dy[v], acc[v][i][s]);
                    }
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
static __attribute__((noinline)) FCV_TARGET void
FCV_FN(kvgw_task)(const fc_kvgw_geometry *geo, const real *x_chunk, const real *dyt_chunk,
                  fc_index dyt_vector_step, fc_index count, int first_chunk, real *gw_acc, int kv, int rows)
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

/* kvgw_task's entry point. kvgw_task stays static and apart, so that GCC may drop the arguments a level
 * leaves unused (dyt_vector_step with one vector of channels, AVX-512); exported itself, it kept them
 * and its AVX-512 code grew 2% in register moves. */
FCV_TARGET void FCV_FN(fc_kvgw_task)(const fc_kvgw_geometry *geo, const real *x_chunk, const real *dyt_chunk,
                                     fc_index dyt_vector_step, fc_index count, int first_chunk,
                                     real *gw_acc, int kv, int rows)
{
    FCV_FN(kvgw_task)(geo, x_chunk, dyt_chunk, dyt_vector_step, count, first_chunk, gw_acc, kv, rows);
}
/* kvgw's copy of dy: blocks of FCV_LANES pixels x the vector's channels, each transposed in registers and
 * stored as FCV_LANES whole vectors (one scalar store per element, FCV_LANES elements apart, took 2.7%
 * of the strided backward), and with_sums added to *sum pixel by pixel while in registers (sum is not
 * touched without). Channels past
 * `channels` are zero rows; pixels past `pixels` are not read. */
static inline __attribute__((always_inline)) FCV_TARGET void
FCV_FN(kvgw_transpose)(const real *dy, fc_index channel_step, int channels, fc_index pixels, real *dyt,
                       fcv_vec *sum, const int with_sums)
{
    for (fc_index p0 = 0; p0 < pixels; p0 += FCV_LANES) {
        const fc_index block = pixels - p0 < FCV_LANES ? pixels - p0 : FCV_LANES;
        const fcv_mask in_block = FCV_FN(lane_mask)(0, block);
        fcv_vec rows[FCV_LANES];
        #pragma GCC unroll 16
        for (int l = 0; l < FCV_LANES; l++)
            rows[l] = l >= channels ? fcv_set1((real)0)
                    : block == FCV_LANES ? fcv_loadu(dy + l * channel_step + p0)
                    : fcv_load_mask(dy + l * channel_step + p0, in_block);
        FCV_FN(transpose)(rows);
        #pragma GCC unroll 16
        for (int j = 0; j < FCV_LANES; j++)
            if (j < block) {
                fcv_storeu(dyt + (p0 + j) * FCV_LANES, rows[j]);
                if (with_sums)
                    *sum = fcv_add(*sum, rows[j]);
            }
    }
}

FCV_TARGET void FCV_FN(fc_kvgw_transpose)(const real *dy, fc_index channel_step, int channels, fc_index pixels,
                                          real *dyt, real *sums)
{
    if (sums == NULL) {
        FCV_FN(kvgw_transpose)(dy, channel_step, channels, pixels, dyt, NULL, 0);
        return;
    }
    fcv_vec sum = fcv_loadu(sums);
    FCV_FN(kvgw_transpose)(dy, channel_step, channels, pixels, dyt, &sum, 1);
    fcv_storeu(sums, sum);
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
FCV_TARGET void FCV_FN(fc_wvgw_bias)(const fc_wvgw_geometry *geo, const real *dy_block, fc_index images,
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
FCV_TARGET void FCV_FN(fc_wvgw_task)(const fc_wvgw_geometry *geo, const real *x_task, const real *dy_task,
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
#undef FC_KVGW_CHANNEL_VECTORS
#undef FC_KVGW_ACCUMULATORS
#endif
