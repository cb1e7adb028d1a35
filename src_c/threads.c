/*
 * threads.c -- how many threads one kernel call runs on: the count asked for, lowered while other
 * processes keep this process's cores busy.
 *
 * Every kernel is a fork-join region, so with a busy neighbour each region waits for whichever of
 * its threads the OS has preempted; giving the call one thread per core that is actually free keeps
 * every region moving. Results never depend on the thread count (fastconv.h), so the count may change
 * between any two calls.
 *
 * At most every FC_LOAD_STEP_NS a call samples the busy time of the CPUs this process may run on
 * (/proc/stat, the CPUs of its affinity mask) and this process's own CPU time. Over the last
 * FC_LOAD_WINDOW_NS (from the newest sample back to the newest one at least that old), busy time less
 * own time gives the cores other processes used; calls then get round(cores - others) threads, at least
 * 1 and at most the count asked for. Off Linux, or when /proc/stat cannot be read, calls get the count
 * asked for.
 *
 * The state is shared by every caller: the binding calls fc_threads_for_call with the GIL held,
 * which serialises it.
 */
#define _GNU_SOURCE
#include "fastconv.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#ifdef __linux__
#include <sched.h>
#include <unistd.h>
#endif

/* The window is long against /proc/stat's 10 ms ticks (ten per core) and short against a training
 * run; sampling four times a window lets a neighbour that starts or stops show within about half a
 * window, for one /proc/stat read per 25 ms. */
#define FC_LOAD_WINDOW_NS 100000000LL
#define FC_LOAD_STEP_NS 25000000LL
#define FC_LOAD_SAMPLES 8             /* > window / step + 1, so a full window is always kept */

typedef struct {
    int64_t wall_ns, own_cpu_ns, busy_ticks;
} load_sample;

static int adaptive = 1;
static load_sample samples[FC_LOAD_SAMPLES];   /* a ring, newest at samples[newest] */
static int sample_count = 0, newest = 0;
static int free_cores = 0;           /* from the last window; 0: not known */

int fc_threads_free_cores(int cpus, double others_busy)
{
    int free = (int)floor(cpus - others_busy + 0.5);
    if (free < 1)
        return 1;
    return free > cpus ? cpus : free;
}

void fc_threads_set_adaptive(int enabled)
{
    adaptive = enabled != 0;
    sample_count = 0;
    free_cores = 0;
}

int fc_threads_adaptive(void)
{
    return adaptive;
}

#ifdef __linux__
static int64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Ticks spent busy (all but idle and iowait) by the CPUs in `mask`; -1 if /proc/stat is unreadable. */
static int64_t busy_ticks(const cpu_set_t *mask, int *cpus)
{
    FILE *stat = fopen("/proc/stat", "r");
    if (!stat)
        return -1;
    char line[512];
    int64_t busy = 0;
    *cpus = 0;
    while (fgets(line, sizeof line, stat)) {
        if (strncmp(line, "cpu", 3) != 0 || !isdigit((unsigned char)line[3]))
            continue;   /* the all-CPU summary line, and the lines after the CPUs */
        int cpu;
        long long user, nice, system, idle, iowait, irq, softirq, steal;
        if (sscanf(line + 3, "%d %lld %lld %lld %lld %lld %lld %lld %lld", &cpu, &user, &nice, &system, &idle,
                   &iowait, &irq, &softirq, &steal) != 9)
            continue;
        if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, mask))
            continue;
        busy += user + nice + system + irq + softirq + steal;
        *cpus += 1;
    }
    fclose(stat);
    return busy;
}

/* The newest sample at least FC_LOAD_WINDOW_NS older than `now`, else the oldest kept; NULL while
 * even that spans under half a window, too few ticks to tell a busy core from rounding. */
static const load_sample *window_start(const load_sample *now)
{
    const load_sample *start = NULL;
    for (int age = 1; age < sample_count; age++) {
        start = &samples[(newest - age + FC_LOAD_SAMPLES) % FC_LOAD_SAMPLES];
        if (now->wall_ns - start->wall_ns >= FC_LOAD_WINDOW_NS)
            break;
    }
    return start != NULL && now->wall_ns - start->wall_ns >= FC_LOAD_WINDOW_NS / 2 ? start : NULL;
}

static void sample_load(int64_t now_ns)
{
    cpu_set_t mask;
    int cpus = 0;
    int64_t busy = sched_getaffinity(0, sizeof mask, &mask) == 0 ? busy_ticks(&mask, &cpus) : -1;
    if (busy < 0 || cpus == 0) {
        sample_count = 0;
        free_cores = 0;
        return;
    }
    newest = (newest + 1) % FC_LOAD_SAMPLES;
    samples[newest] = (load_sample){now_ns, clock_ns(CLOCK_PROCESS_CPUTIME_ID), busy};
    if (sample_count < FC_LOAD_SAMPLES)
        sample_count++;
    const load_sample *now = &samples[newest], *start = window_start(now);
    if (start == NULL)
        return;
    double seconds = (now->wall_ns - start->wall_ns) * 1e-9;
    double busy_seconds = (double)(now->busy_ticks - start->busy_ticks) / (double)sysconf(_SC_CLK_TCK);
    double own_seconds = (now->own_cpu_ns - start->own_cpu_ns) * 1e-9;
    free_cores = fc_threads_free_cores(cpus, (busy_seconds - own_seconds) / seconds);
}

int fc_threads_for_call(int requested)
{
    if (requested <= 1 || !adaptive)
        return requested;
    int64_t now_ns = clock_ns(CLOCK_MONOTONIC);
    if (sample_count == 0 || now_ns - samples[newest].wall_ns >= FC_LOAD_STEP_NS)
        sample_load(now_ns);
    return free_cores > 0 && free_cores < requested ? free_cores : requested;
}
#else
int fc_threads_for_call(int requested)
{
    return requested;
}
#endif
