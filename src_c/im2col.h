/*
 * im2col.h -- the per-plane building blocks of im2col.c, shared with conv_im2col.c.
 *
 * fastconv.h's fc_im2col / fc_col2im work on one whole image with a dense column matrix
 * (row stride out_h*out_w). The im2col convolution wants more: it lays the columns of a whole chunk
 * of images side by side, (C*R*S) x (chunk*out_h*out_w), so that ONE GEMM covers the chunk, and it
 * parallelises over (image, channel) pairs. These two functions give it exactly that: they handle
 * one channel plane and take the row stride of the column matrix (ld_col) as an argument (the backward pass uses them).
 *
 *  - fc_im2col_plane: x_plane is one (in_h, in_w) input plane; col_rows receives its kernel_h*kernel_w
 *    rows, row (r*S + s) at col_rows + (r*S + s)*ld_col, out_h*out_w values each (oh*out_w + ow).
 *    Padded positions are written as zero.
 *  - fc_col2im_plane: the adjoint: ADDS those rows back into x_plane (`level` picks the instructions
 *    of stride-2 runs; the sums are the same at every level).
 *  - fc_col2im_rows: the same for the output rows [oh_begin, oh_end) only, whose columns col_rows
 *    holds from its start ((oh - oh_begin)*out_w + ow): a block of an image's column matrix.
 * The shape's batch, in_channels and out_channels are not used.
 */
#ifndef FASTCONV_IM2COL_H
#define FASTCONV_IM2COL_H

#include "fastconv.h"

/*
 * The fused im2col + GEMM forward (conv_im2col.c) never builds a column matrix: it packs blocks of
 * one at a time straight into the GEMM's B-panel layout.
 *  - fc_im2col_ranges: for each kernel row r the output rows [oh_lo[r], oh_hi[r]) that read real
 *    input, for each kernel column s the output columns [ow_lo[s], ow_hi[s]); computed once per call
 *    (init allocates, free releases), read-only after, so threads share it.
 *  - fc_im2col_panel: rows [row0, row0 + rows) x columns [col0, col0 + cols) of x_image's column
 *    matrix (C*R*S x out_h*out_w), row p at panel + p*width, columns cols..width-1 zero (width >= cols);
 *    `level` picks the instructions of its copies (the values are the same at every level). With
 *    ranges->copy_image, x_image must be fc_im2col_copy_image's copy of the image, in which every run
 *    of a panel row is one contiguous copy, padding included.
 *  - fc_im2col_copy_image: out (ranges->copy_size elements) = x_image (in_channels planes) with its
 *    padding written out as zeros (planes of copy_h x copy_w), and with ranges->split_columns each
 *    row's even columns first, then its odd ones.
 * init copies the image where stride_w is 2 (split), and for `implicit` (im2col.implicit, whose GEMM
 * reads the image itself) wherever there is padding; an implicit GEMM without padding reads x_image,
 * whose planes are then the layout's (copy_h x copy_w = in_h x in_w).
 */
typedef struct {
    const fc_conv_shape *shape;
    fc_index *oh_lo, *oh_hi;   /* kernel_h entries each */
    fc_index *ow_lo, *ow_hi;   /* kernel_w entries each */
    int copy_image;            /* x_image in fc_im2col_copy_image's layout */
    int split_columns;         /* stride_w 2: that layout's rows are split into even and odd columns */
    fc_index copy_h, copy_w;   /* a plane of that layout: the padded input's */
    fc_index copy_size;        /* elements to allocate for one image in that layout */
} fc_im2col_ranges;

int fc_im2col_ranges_init(fc_im2col_ranges *ranges, const fc_conv_shape *shape, int implicit);   /* FC_OK / FC_ENOMEM */
void fc_im2col_ranges_free(fc_im2col_ranges *ranges);
/* The copy's layout as an implicit GEMM's B (gemm_kernels.h's indirect micro-kernel): column-matrix row
 * p = (c*R + r)*S + s, at output position j, is element row_offsets[p] + fc_im2col_copy_position(j),
 * and the positions j..j+n-1 of one output row are contiguous. row_offsets has C*R*S entries. */
void fc_im2col_copy_row_offsets(const fc_im2col_ranges *ranges, fc_index *row_offsets);
fc_index fc_im2col_copy_position(const fc_im2col_ranges *ranges, fc_index j);

#define FC_DECLARE_IM2COL_PLANE(real, sfx)                                                        \
void fc_im2col_plane_##sfx(const fc_conv_shape *shape, const real *x_plane,                       \
                           real *col_rows, fc_index ld_col);                                      \
void fc_col2im_plane_##sfx(fc_simd_level level, const fc_conv_shape *shape, const real *col_rows, \
                           fc_index ld_col, real *x_plane);                                       \
void fc_col2im_rows_##sfx(fc_simd_level level, const fc_conv_shape *shape, const real *col_rows,  \
                          fc_index ld_col, fc_index oh_begin, fc_index oh_end, real *x_plane);    \
void fc_im2col_panel_##sfx(fc_simd_level level, const fc_im2col_ranges *ranges,                   \
                           const real *x_image, fc_index row0, fc_index rows, fc_index col0,      \
                           fc_index cols, fc_index width, real *panel);                           \
void fc_im2col_copy_image_##sfx(fc_simd_level level, const fc_im2col_ranges *ranges,                \
                                const real *x_image, real *out);

FC_DECLARE_IM2COL_PLANE(float, f32)
FC_DECLARE_IM2COL_PLANE(double, f64)

#endif /* FASTCONV_IM2COL_H */
