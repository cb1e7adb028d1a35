/*
 * test_block_cache.c -- src_c/block_cache.c: reuse of a freed block for the same size, nothing kept while
 * closed, zeroed calloc from a dirty block, realloc keeping the contents, the slot and byte bounds,
 * overflowing sizes, and threads sharing the cache. Under the sanitizers a block used after it is
 * really freed, an overrun, or a block never released (leak) fails the run.
 */
#include <stdlib.h>
#include <string.h>

#include "fastconv.h"
#include "test_support.h"

#define BIG ((size_t)100000)     /* above the cache's minimum size */
#define SMALL ((size_t)100)

static int all_bytes(const unsigned char *block, size_t bytes, unsigned char value)
{
    for (size_t i = 0; i < bytes; i++)
        if (block[i] != value)
            return 0;
    return 1;
}

static void test_reuse_while_open(void)
{
    fc_cache_open();
    char *first = fc_cache_alloc(BIG);
    expect(first && (uintptr_t)first % 64 == 0, "a kept-size block is 64-byte aligned", "reuse");
    memset(first, 1, BIG);
    fc_cache_free(first);
    expect(fc_cache_get_stats().kept_blocks == 1, "a freed block is kept while open", "reuse");
    char *second = fc_cache_alloc(BIG - 5);  /* the same page-rounded size */
    expect(second == first, "the next request of its size gets it back", "reuse");
    char *other = fc_cache_alloc(3 * BIG);
    expect(other != first, "another size gets another block", "reuse");
    fc_cache_free(other);
    unsigned char *zeroed = fc_cache_calloc(BIG / 4, 4);
    expect(zeroed && all_bytes(zeroed, BIG, 0), "calloc zeroes a reused block", "reuse");
    fc_cache_free(zeroed);
    fc_cache_free(second);
    size_t kept_before = fc_cache_get_stats().kept_bytes;
    char *small = fc_cache_alloc(SMALL);
    expect(small && (uintptr_t)small % 64 == 0, "a small block is 64-byte aligned too", "reuse");
    fc_cache_free(small);
    expect(fc_cache_get_stats().kept_bytes == kept_before, "small blocks are not kept", "reuse");
    fc_cache_close();
    expect(fc_cache_get_stats().kept_blocks == 0, "the last close releases every block", "reuse");
}

static void test_nothing_kept_while_closed(void)
{
    char *block = fc_cache_alloc(BIG);
    fc_cache_open();
    fc_cache_open();
    fc_cache_close();
    fc_cache_free(block);
    expect(fc_cache_get_stats().kept_blocks == 1, "still open after one of two closes", "closed");
    fc_cache_close();
    block = fc_cache_alloc(BIG);
    fc_cache_free(block);
    fc_cache_free(NULL);
    expect(fc_cache_get_stats().kept_blocks == 0, "a block freed while closed is released", "closed");
}

static void test_realloc_keeps_contents(void)
{
    size_t sizes[] = { 1, SMALL, BIG, 5 * BIG, BIG / 2, 7, 2 * BIG };
    unsigned char *block = fc_cache_realloc(NULL, 1);
    size_t held = 1;
    block[0] = 42;
    fc_cache_open();
    for (size_t i = 1; i < sizeof sizes / sizeof *sizes; i++) {
        size_t keep = held < sizes[i] ? held : sizes[i];
        memset(block, 42, keep);
        block = fc_cache_realloc(block, sizes[i]);
        expect(block && all_bytes(block, keep, 42), "realloc keeps the common prefix", "realloc");
        memset(block, 42, sizes[i]);
        held = sizes[i];
    }
    fc_cache_free(block);
    fc_cache_close();
}

static void test_bounds_and_overflow(void)
{
    fc_cache_open();
    void *blocks[80];
    for (int i = 0; i < 80; i++)
        blocks[i] = fc_cache_alloc(BIG + (size_t)i * 8192);
    for (int i = 0; i < 80; i++)
        fc_cache_free(blocks[i]);
    fc_cache_stats stats = fc_cache_get_stats();
    expect(stats.kept_blocks == 64, "at most 64 blocks are kept", "bounds");
    void *newest = fc_cache_alloc(BIG + 79 * 8192);
    expect(newest == blocks[79], "the oldest blocks went first", "bounds");
    fc_cache_free(newest);
    void *huge[3];
    for (int i = 0; i < 3; i++)
        huge[i] = fc_cache_alloc((size_t)100 << 20);
    for (int i = 0; i < 3; i++)
        fc_cache_free(huge[i]);
    expect(fc_cache_get_stats().kept_bytes <= (size_t)256 << 20, "at most 256 MB are kept", "bounds");
    expect(fc_cache_alloc(SIZE_MAX - 10) == NULL, "an impossible size gives NULL", "overflow");
    expect(fc_cache_calloc(SIZE_MAX / 2, 4) == NULL, "an overflowing calloc gives NULL", "overflow");
    expect(fc_cache_realloc(NULL, SIZE_MAX - 63) == NULL, "an impossible realloc gives NULL", "overflow");
    fc_cache_close();
}

static void test_threads_share_it(void)
{
    int bad = 0;
    fc_cache_open();
#pragma omp parallel for num_threads(4) reduction(+ : bad) schedule(static, 1)
    for (int round = 0; round < 4000; round++) {
        size_t bytes = (round % 3 == 0) ? SMALL : BIG + (size_t)(round % 5) * 4096;
        unsigned char mark = (unsigned char)(round & 0xff);
        unsigned char *block = fc_cache_alloc(bytes);
        if (!block) {
            bad++;
            continue;
        }
        memset(block, mark, bytes);
        bad += !all_bytes(block, bytes, mark);
        fc_cache_free(block);
    }
    fc_cache_close();
    expect(bad == 0, "no two threads hold one block", "threads");
    expect(fc_cache_get_stats().open_count == 0, "opens and closes balance", "threads");
}

int main(void)
{
    test_reuse_while_open();
    test_nothing_kept_while_closed();
    test_realloc_keeps_contents();
    test_bounds_and_overflow();
    test_threads_share_it();
    printf("block_cache: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
