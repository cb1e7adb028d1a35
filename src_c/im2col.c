/*
 * im2col.c -- unfold an image into the column matrix of a convolution, and fold it back.
 *
 * For a kernel offset (r, s), output position (oh, ow) reads input (ih, iw) with
 *     ih = oh*stride_h - pad_h + r,    iw = ow*stride_w - pad_w + s.
 * Row (c*R + r)*S + s of the column matrix holds, for every output position, the input value that
 * kernel tap (c, r, s) multiplies, so that convolution becomes  Y (K x P) = W (K x CRS) * col (CRS x P).
 *
 * Speed: instead of testing "is (ih, iw) inside the image?" for every element, each (r, s) row
 * computes once which output rows oh and which output columns ow read real input (a contiguous
 * range of each, see fc_valid_output_range). Outside those ranges the row is zero; inside, an output
 * row is a strided copy of an input row -- a plain memcpy when stride_w == 1.
 *
 * col2im is the adjoint (used for the input gradient): it ADDS each column value back to the input
 * element it was read from; values that were read from padding are dropped.
 */
#ifndef FC_TEMPLATE_PASS

#include <string.h>
#include "im2col.h"

/* The output positions o in [0, out_len) whose input coordinate o*stride - pad + offset lies in
 * [0, in_len), as the half-open range [*lo, *hi) (lo == hi when there is none). */
static inline void fc_valid_output_range(fc_index out_len, fc_index in_len, fc_index stride,
                                         fc_index pad, fc_index offset, fc_index *lo, fc_index *hi)
{
    fc_index first_needed = pad - offset;            /* o*stride >= pad - offset   */
    fc_index last_allowed = in_len - 1 + pad - offset; /* o*stride <= in_len-1+pad-offset */
    fc_index low = first_needed > 0 ? (first_needed + stride - 1) / stride : 0;
    fc_index high = last_allowed >= 0 ? last_allowed / stride + 1 : 0;
    if (high > out_len)
        high = out_len;
    if (low > high)
        low = high;
    *lo = low;
    *hi = high;
}

#define FC_TEMPLATE_FILE "im2col.c"
#include "fc_template.h"

#else /* FC_TEMPLATE_PASS: type-generic code, `real` is float or double */

/* One output row of one column-matrix row: dst[0, out_w) with zeros outside [ow_lo, ow_hi) and
 * dst[ow] = src[(ow - ow_lo) * stride_w] inside. */
static inline void FC_FN(im2col_row)(real *dst, const real *src, fc_index ow_lo, fc_index ow_hi,
                                     fc_index out_w, fc_index stride_w)
{
    fc_index count = ow_hi - ow_lo;
    if (ow_lo > 0)
        memset(dst, 0, (size_t)ow_lo * sizeof(real));
    if (stride_w == 1) {
        memcpy(dst + ow_lo, src, (size_t)count * sizeof(real));
    } else {
        real *out = dst + ow_lo;
        for (fc_index i = 0; i < count; i++)
            out[i] = src[i * stride_w];
    }
    if (ow_hi < out_w)
        memset(dst + ow_hi, 0, (size_t)(out_w - ow_hi) * sizeof(real));
}

void FC_FN(fc_im2col_plane)(const fc_conv_shape *shape, const real *x_plane, real *col_rows,
                            fc_index ld_col)
{
    const fc_index in_h = shape->in_h, in_w = shape->in_w;
    const fc_index out_h = shape->out_h, out_w = shape->out_w;
    const fc_index kernel_h = shape->kernel_h, kernel_w = shape->kernel_w;
    const fc_index stride_h = shape->stride_h, stride_w = shape->stride_w;
    const fc_index pad_h = shape->pad_h, pad_w = shape->pad_w;

    for (fc_index r = 0; r < kernel_h; r++) {
        fc_index oh_lo, oh_hi;
        fc_valid_output_range(out_h, in_h, stride_h, pad_h, r, &oh_lo, &oh_hi);
        for (fc_index s = 0; s < kernel_w; s++) {
            fc_index ow_lo, ow_hi;
            fc_valid_output_range(out_w, in_w, stride_w, pad_w, s, &ow_lo, &ow_hi);
            real *row = col_rows + (r * kernel_w + s) * ld_col;

            if (ow_lo == ow_hi) {   /* this tap reads only padding, whatever the output row */
                memset(row, 0, (size_t)(out_h * out_w) * sizeof(real));
                continue;
            }
            /* Output rows above/below the image read only padding. */
            memset(row, 0, (size_t)(oh_lo * out_w) * sizeof(real));
            memset(row + oh_hi * out_w, 0, (size_t)((out_h - oh_hi) * out_w) * sizeof(real));
            for (fc_index oh = oh_lo; oh < oh_hi; oh++) {
                fc_index ih = oh * stride_h - pad_h + r;
                fc_index iw_first = ow_lo * stride_w - pad_w + s;
                FC_FN(im2col_row)(row + oh * out_w, x_plane + ih * in_w + iw_first,
                                  ow_lo, ow_hi, out_w, stride_w);
            }
        }
    }
}

void FC_FN(fc_col2im_plane)(const fc_conv_shape *shape, const real *col_rows, fc_index ld_col,
                            real *x_plane)
{
    const fc_index in_h = shape->in_h, in_w = shape->in_w;
    const fc_index out_h = shape->out_h, out_w = shape->out_w;
    const fc_index kernel_h = shape->kernel_h, kernel_w = shape->kernel_w;
    const fc_index stride_h = shape->stride_h, stride_w = shape->stride_w;
    const fc_index pad_h = shape->pad_h, pad_w = shape->pad_w;

    for (fc_index r = 0; r < kernel_h; r++) {
        fc_index oh_lo, oh_hi;
        fc_valid_output_range(out_h, in_h, stride_h, pad_h, r, &oh_lo, &oh_hi);
        for (fc_index s = 0; s < kernel_w; s++) {
            fc_index ow_lo, ow_hi;
            fc_valid_output_range(out_w, in_w, stride_w, pad_w, s, &ow_lo, &ow_hi);
            const fc_index count = ow_hi - ow_lo;
            const real *row = col_rows + (r * kernel_w + s) * ld_col;
            if (count == 0)
                continue;
            for (fc_index oh = oh_lo; oh < oh_hi; oh++) {
                fc_index ih = oh * stride_h - pad_h + r;
                fc_index iw_first = ow_lo * stride_w - pad_w + s;
                real *dst = x_plane + ih * in_w + iw_first;
                const real *src = row + oh * out_w + ow_lo;
                if (stride_w == 1) {
                    for (fc_index i = 0; i < count; i++)
                        dst[i] += src[i];
                } else {
                    for (fc_index i = 0; i < count; i++)
                        dst[i * stride_w] += src[i];
                }
            }
        }
    }
}

void FC_FN(fc_im2col)(const fc_conv_shape *shape, const real *x, real *col)
{
    const fc_index plane = shape->in_h * shape->in_w;
    const fc_index out_plane = shape->out_h * shape->out_w;
    const fc_index taps = shape->kernel_h * shape->kernel_w;
    for (fc_index c = 0; c < shape->in_channels; c++)
        FC_FN(fc_im2col_plane)(shape, x + c * plane, col + c * taps * out_plane, out_plane);
}

void FC_FN(fc_col2im)(const fc_conv_shape *shape, const real *col, real *x)
{
    const fc_index plane = shape->in_h * shape->in_w;
    const fc_index out_plane = shape->out_h * shape->out_w;
    const fc_index taps = shape->kernel_h * shape->kernel_w;
    for (fc_index c = 0; c < shape->in_channels; c++)
        FC_FN(fc_col2im_plane)(shape, col + c * taps * out_plane, out_plane, x + c * plane);
}

#endif /* FC_TEMPLATE_PASS */
