/*
 * block_cache.c -- memory blocks kept after free and handed back for the next request of their size.
 *
 * A training step allocates the same arrays every batch. From glibc each large one is fresh heap or a
 * fresh mapping whose pages fault and are zeroed on first touch, so a step pays for its memory anew.
 * While the cache is open, a freed block of at least FC_CACHE_MIN_BYTES is kept (at most
 * FC_CACHE_SLOTS blocks and FC_CACHE_MAX_BYTES in all; the oldest goes first) and the next request of
 * the same page-rounded size gets it back. Closing the last user releases every kept block.
 *
 * Every block carries a header that records where it came from, so a block can be freed here whether
 * or not the cache is still open. The state is shared by all threads and guarded by a spinlock: the
 * sections under it are a scan of FC_CACHE_SLOTS entries.
 */
#include "fastconv.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define FC_CACHE_MIN_BYTES ((size_t)64 << 10)    /* below this, malloc's own bins are as fast */
#define FC_CACHE_MAX_BYTES ((size_t)256 << 20)
#define FC_CACHE_SLOTS 64
#define FC_CACHE_PAGE ((size_t)4096)
#define FC_CACHE_ALIGN ((size_t)64)               /* of every block, and the room for its header */

typedef struct {
    void *base;          /* what malloc returned */
    size_t usable;       /* bytes after the header */
    size_t capacity;     /* = usable for a block the cache may keep, 0 for one it never keeps */
} block_header;

typedef struct {
    void *block;         /* the user pointer, NULL for an empty slot */
    size_t capacity;
    uint64_t stamp;      /* when it was kept: the smallest goes first */
} cache_slot;

static atomic_flag lock = ATOMIC_FLAG_INIT;
static cache_slot slots[FC_CACHE_SLOTS];
static size_t kept_bytes = 0;
static int kept_blocks = 0;
static int open_count = 0;
static uint64_t next_stamp = 0;
static uint64_t hits = 0, misses = 0;

static void acquire(void) { while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire)) {} }
static void release(void) { atomic_flag_clear_explicit(&lock, memory_order_release); }

static block_header *header_of(void *block) { return (block_header *)((char *)block - FC_CACHE_ALIGN); }

/* The page-rounded size a request is kept under, or 0 when it is too small to keep (or would overflow). */
static size_t cached_capacity(size_t bytes)
{
    if (bytes < FC_CACHE_MIN_BYTES || bytes > FC_CACHE_MAX_BYTES)
        return 0;
    return (bytes + FC_CACHE_PAGE - 1) & ~(FC_CACHE_PAGE - 1);
}

/* A block from the system, 64-byte aligned (malloc's 16 would do for NumPy; the kernels' vectors like 64). */
static void *new_block(size_t bytes, size_t capacity)
{
    size_t usable = capacity ? capacity : bytes;
    if (usable > SIZE_MAX - 2 * FC_CACHE_ALIGN)
        return NULL;
    char *base = malloc(usable + 2 * FC_CACHE_ALIGN);
    if (!base)
        return NULL;
    void *block = (void *)(((uintptr_t)base + 2 * FC_CACHE_ALIGN - 1) & ~(uintptr_t)(FC_CACHE_ALIGN - 1));
    *header_of(block) = (block_header){ base, usable, capacity };
    return block;
}

/* Slot i's block, taken out of the cache (lock held). */
static void *take_slot_locked(int i)
{
    void *block = slots[i].block;
    slots[i].block = NULL;
    kept_bytes -= slots[i].capacity;
    kept_blocks--;
    return block;
}

/* A kept block of exactly this capacity, taken out of the cache, or NULL. */
static void *take_kept(size_t capacity)
{
    int found = -1;
    acquire();
    for (int i = 0; i < FC_CACHE_SLOTS && found < 0; i++)
        if (slots[i].block && slots[i].capacity == capacity)
            found = i;
    void *block = found >= 0 ? take_slot_locked(found) : NULL;
    if (block) hits++; else misses++;
    release();
    return block;
}

/* The oldest kept block, taken out (lock held), or NULL when none is kept. */
static void *take_oldest_locked(void)
{
    int oldest = -1;
    for (int i = 0; i < FC_CACHE_SLOTS; i++)
        if (slots[i].block && (oldest < 0 || slots[i].stamp < slots[oldest].stamp))
            oldest = i;
    return oldest >= 0 ? take_slot_locked(oldest) : NULL;
}

void *fc_cache_alloc(size_t bytes)
{
    size_t capacity = cached_capacity(bytes);
    void *block = capacity ? take_kept(capacity) : NULL;
    return block ? block : new_block(bytes, capacity);
}

void *fc_cache_calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *block = fc_cache_alloc(count * size);
    if (block)
        memset(block, 0, count * size);
    return block;
}

void fc_cache_free(void *block)
{
    if (!block)
        return;
    block_header header = *header_of(block);
    void *evicted[FC_CACHE_SLOTS];
    int n_evicted = 0;
    int kept = 0;
    if (header.capacity) {
        acquire();
        if (open_count > 0) {
            while (kept_blocks == FC_CACHE_SLOTS || kept_bytes + header.capacity > FC_CACHE_MAX_BYTES)
                evicted[n_evicted++] = take_oldest_locked();
            for (int i = 0; i < FC_CACHE_SLOTS && !kept; i++) {
                if (!slots[i].block) {
                    slots[i] = (cache_slot){ block, header.capacity, next_stamp++ };
                    kept_bytes += header.capacity;
                    kept_blocks++;
                    kept = 1;
                }
            }
        }
        release();
    }
    for (int i = 0; i < n_evicted; i++)
        free(header_of(evicted[i])->base);
    if (!kept)
        free(header.base);
}

void *fc_cache_realloc(void *block, size_t bytes)
{
    if (!block)
        return fc_cache_alloc(bytes);
    block_header header = *header_of(block);
    if (bytes <= header.usable && cached_capacity(bytes) == header.capacity)
        return block;
    void *moved = fc_cache_alloc(bytes);
    if (moved) {
        memcpy(moved, block, bytes < header.usable ? bytes : header.usable);
        fc_cache_free(block);
    }
    return moved;
}

void fc_cache_open(void)
{
    acquire();
    open_count++;
    release();
}

void fc_cache_close(void)
{
    void *evicted[FC_CACHE_SLOTS];
    int n_evicted = 0;
    acquire();
    if (open_count > 0 && --open_count == 0) {
        void *block;
        while ((block = take_oldest_locked()) != NULL)
            evicted[n_evicted++] = block;
    }
    release();
    for (int i = 0; i < n_evicted; i++)
        free(header_of(evicted[i])->base);
}

fc_cache_stats fc_cache_get_stats(void)
{
    acquire();
    fc_cache_stats stats = { open_count, kept_blocks, kept_bytes, hits, misses };
    release();
    return stats;
}
