/*
 * conv_direct_gather.c -- the gather with explicit vectors over output columns (stride_w 1): one output
 * plane as blocks of rows x vectors accumulated in registers, in the portable gather's order (bias,
 * then ch, r, s). One copy per SIMD level, over simd_vec.h. Contract: conv_direct.h.
 */
#if !defined(FC_TEMPLATE_PASS)
#include "conv_direct.h"

/* Blocking parameters of the SIMD gather kernel (registers: rows x vectors accumulators). */
#define FC_DIRECT_ROWS_NARROW 8   /* output rows per block when one vector covers the row */
#define FC_DIRECT_ROWS_WIDE 4     /* output rows per block when two vectors cover (part of) a row */
#define FC_DIRECT_MAX_VECS 2

#define FC_SIMD_TEMPLATE_FILE "conv_direct_gather.c"
#include "simd_template.h"

#elif !defined(FC_VEC_LEVEL)
#include "conv_direct.h"   /* this type's declarations */

#else
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
FCV_TARGET void FCV_FN(fc_gather_plane)(const fc_gather_geometry *gather, const real *in, const real *w,
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
#endif
