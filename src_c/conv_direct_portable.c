/*
 * conv_direct_portable.c -- the direct convolution's portable kernels (any CPU): the gather, the scatter,
 * the dot task of grad_w and grad_b's plane sums. Plain C; the compiler vectorises the contiguous inner
 * loops. Padding is never materialised: the callers pass, per kernel column s, the range of output
 * columns whose input column lies inside the image (col_range), and per kernel row the valid output
 * rows, so inner loops run branch-free over contiguous memory. Contracts: conv_direct.h.
 */
#if !defined(FC_TEMPLATE_PASS)
#include <string.h>
#include "conv_direct.h"

/* Independent partial sums of the portable reductions (lets the compiler vectorise them). */
#define FC_DIRECT_LANES 8

#define FC_TEMPLATE_FILE "conv_direct_portable.c"
#include "fc_template.h"

#else
#include "conv_direct.h"   /* this type's declarations */

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

void FC_FN(fc_gather_plane_portable)(const fc_gather_geometry *gather, const real *in, const real *w,
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
void FC_FN(fc_scatter_plane)(const fc_conv_shape *sh, const fc_range *col_range,
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
void FC_FN(fc_dot_task_portable)(const fc_conv_shape *sh, const fc_range *col_range,
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
real FC_FN(fc_grad_b_one)(const fc_conv_shape *sh, const real *grad_y, fc_index k)
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

#endif
