/*
 * conv_chain.c -- inference through consecutive convolution blocks (convolution, then optionally a ReLU,
 * then optionally a max pool) in one parallel region. Contract: fastconv.h, fc_conv_chain_forward_*.
 *
 * Layer by layer, a batch pays a fork-join per layer (six for LeNet-5's convolutions, ReLUs and pools)
 * and sends every intermediate through memory (LeNet-5's first convolution writes 4.8 MB for 256
 * images). Here the batch is cut into groups of a few images; each thread takes whole groups and
 * carries each through every block in turn, with its intermediates in per-thread scratch sized to stay
 * in L2: the convolution by conv2d.c's fc_conv2d_forward on one thread (the kernel its plan picks), then
 * the ReLU and the max pool in one pass (fc_max_pool2d_values), or the ReLU alone, in place.
 *
 * The same bits as layer by layer, whatever the groups: every convolution kernel computes each image on
 * its own, and a plan depends on the batch only through "two images or more", so no group holds a single
 * image unless the batch is one image; the ReLU is elementwise and the pool per plane. So the group size
 * may follow the thread count (every thread gets a group of a small batch) and threads take groups in
 * any order.
 */
#ifndef FC_TEMPLATE_PASS

#include <stdlib.h>
#include "fastconv.h"

/* Bytes of a group's largest convolution output: a group's intermediates then stay in L2 (512 KB to
 * 2 MB on the machines measured) beside the weights. */
#define FC_CHAIN_GROUP_BYTES ((fc_index)256 << 10)

static fc_index fc_chain_conv_elements(const fc_conv_block *block)
{
    return block->conv.out_channels * block->conv.out_h * block->conv.out_w;
}

static fc_index fc_chain_out_elements(const fc_conv_block *block)
{
    if (!block->pool)
        return fc_chain_conv_elements(block);
    return block->pool_shape.channels * block->pool_shape.out_h * block->pool_shape.out_w;
}

/* Images per group: as many as FC_CHAIN_GROUP_BYTES holds of the largest convolution output and at most
 * a thread's share of the batch, but at least 2 (a plan may differ for one image) and at most the batch. */
static fc_index fc_chain_group(fc_index batch, int threads, int count, const fc_conv_block *blocks,
                               fc_index elem_bytes)
{
    fc_index largest = 1;
    for (int i = 0; i < count; i++)
        if (fc_chain_conv_elements(&blocks[i]) > largest)
            largest = fc_chain_conv_elements(&blocks[i]);
    fc_index group = FC_CHAIN_GROUP_BYTES / (largest * elem_bytes);
    const fc_index share = threads > 1 ? (batch + threads - 1) / threads : batch;
    if (group > share)
        group = share;
    if (group < 2)
        group = 2;
    return group < batch ? group : batch;
}

/* Groups of `group` images; the last takes a remainder of one image too (it then holds group + 1). */
static fc_index fc_chain_groups(fc_index batch, fc_index group)
{
    fc_index groups = (batch + group - 1) / group;
    return groups > 1 && batch % group == 1 ? groups - 1 : groups;
}

/* Scratch elements per image: with pooled_conv, the largest convolution output of a pooled block (it
 * goes to conv_buf); else the largest output of a block before the last (it goes to out_buf). */
static fc_index fc_chain_largest(int count, const fc_conv_block *blocks, int pooled_conv)
{
    fc_index largest = 1;
    for (int i = 0; i < count; i++) {
        const fc_index elements = pooled_conv ? (blocks[i].pool ? fc_chain_conv_elements(&blocks[i]) : 0)
                                              : (i < count - 1 ? fc_chain_out_elements(&blocks[i]) : 0);
        largest = elements > largest ? elements : largest;
    }
    return largest;
}

#define FC_TEMPLATE_FILE "conv_chain.c"
#include "fc_template.h"

#else /* FC_TEMPLATE_PASS: `real` is float or double */

/* Carry `images` images from x through every block into y, on this thread. conv_buf holds a pooled
 * block's convolution output, out_buf[i % 2] block i's output (the last block writes y). */
static int FC_FN(chain_group)(const fc_ctx *one, int count, const fc_conv_block *blocks, fc_index images,
                              const real *x, real *y, real *conv_buf, real *const out_buf[2])
{
    const real *in = x;
    for (int i = 0; i < count; i++) {
        const fc_conv_block *block = &blocks[i];
        real *out = i == count - 1 ? y : out_buf[i % 2];
        real *conv_out = block->pool ? conv_buf : out;
        fc_conv_shape conv = block->conv;
        conv.batch = images;
        const int status = FC_FN(fc_conv2d_forward)(one, &conv, block->algo, in, (const real *)block->weight,
                                                    (const real *)block->bias, conv_out);
        if (status != FC_OK)
            return status;
        if (block->pool) {
            fc_pool_shape pool = block->pool_shape;
            pool.batch = images;
            FC_FN(fc_max_pool2d_values)(one, &pool, conv_out, out, block->relu);
        } else if (block->relu) {
            FC_FN(fc_relu_forward)(one, images * fc_chain_conv_elements(block), out, out);
        }
        in = out;
    }
    return FC_OK;
}

int FC_FN(fc_conv_chain_forward)(const fc_ctx *ctx, fc_index batch, int count, const fc_conv_block *blocks,
                                 const real *x, real *y)
{
    if (ctx == NULL || blocks == NULL || count < 1 || batch < 0 || x == NULL || y == NULL)
        return FC_EINVAL;
    if (batch == 0)
        return FC_OK;
    const fc_index group = fc_chain_group(batch, ctx->num_threads, count, blocks, (fc_index)sizeof(real));
    const fc_index groups = fc_chain_groups(batch, group);
    const fc_conv_shape *first = &blocks[0].conv;
    const fc_index x_image = first->in_channels * first->in_h * first->in_w;
    const fc_index y_image = fc_chain_out_elements(&blocks[count - 1]);
    const size_t conv_size = (size_t)((group + 1) * fc_chain_largest(count, blocks, 1));
    const size_t out_size = (size_t)((group + 1) * fc_chain_largest(count, blocks, 0));
    const fc_ctx one = { 1, ctx->simd };
    int status = FC_OK;
    #pragma omp parallel num_threads(ctx->num_threads)
    {
        real *conv_buf = malloc(conv_size * sizeof(real));
        real *const out_buf[2] = { malloc(out_size * sizeof(real)), malloc(out_size * sizeof(real)) };
        const int have_scratch = conv_buf != NULL && out_buf[0] != NULL && out_buf[1] != NULL;
        if (!have_scratch) {
            #pragma omp atomic write
            status = FC_ENOMEM;
        }
        #pragma omp for schedule(dynamic, 1)
        for (fc_index g = 0; g < groups; g++) {
            if (!have_scratch)
                continue;
            const fc_index begin = g * group, end = g == groups - 1 ? batch : begin + group;
            const int group_status = FC_FN(chain_group)(&one, count, blocks, end - begin, x + begin * x_image,
                                                        y + begin * y_image, conv_buf, out_buf);
            if (group_status != FC_OK) {
                #pragma omp atomic write
                status = group_status;
            }
        }
        free(conv_buf);
        free(out_buf[0]);
        free(out_buf[1]);
    }
    return status;
}

#endif /* FC_TEMPLATE_PASS */
