/*
 * threads.c -- how many threads one kernel call runs on: the count asked for, lowered while other
 * processes keep this process's cores busy.
 *
 * Every kernel is a fork-join region, so with a busy neighbour each region waits for whichever of
 * its threads the OS has preempted; giving the call one thread per core that is actually free keeps
 * every region moving. Results never depend on the thread count (fastconv.h), so the count may change
 * between any two calls.
 *
 * Every FC_LOAD_WINDOW_NS the busy time of the CPUs this process may run on (/proc/stat, the CPUs of
 * its affinity mask), less this process's own CPU time, gives the cores other processes used; calls
 * then get round(cores - others) threads, at least 1 and at most the count asked for. Off Linux, or
 * when /proc/stat cannot be read, calls get the count asked for.
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

/* Long against the kernel's 10 ms accounting tick, short against a training run. */
#define FC_LOAD_WINDOW_NS 250000000LL

static int adaptive = 1;
static int64_t last_wall_ns = 0;     /* 0: no sample yet */
static int64_t last_own_cpu_ns = 0;
static int64_t last_busy_ticks = 0;
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
    last_wall_ns = 0;
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

static void sample_load(int64_t now_ns)
{
    cpu_set_t mask;
    int cpus = 0;
    int64_t busy = sched_getaffinity(0, sizeof mask, &mask) == 0 ? busy_ticks(&mask, &cpus) : -1;
    int64_t own_cpu_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    if (busy < 0 || cpus == 0) {
        free_cores = 0;
    } else if (last_wall_ns != 0) {
        double seconds = (now_ns - last_wall_ns) * 1e-9;
        double busy_seconds = (double)(busy - last_busy_ticks) / (double)sysconf(_SC_CLK_TCK);
        double own_seconds = (own_cpu_ns - last_own_cpu_ns) * 1e-9;
        free_cores = fc_threads_free_cores(cpus, (busy_seconds - own_seconds) / seconds);
    }
    last_wall_ns = now_ns;
    last_own_cpu_ns = own_cpu_ns;
    last_busy_ticks = busy;
}

int fc_threads_for_call(int requested)
{
    if (requested <= 1 || !adaptive)
        return requested;
    int64_t now_ns = clock_ns(CLOCK_MONOTONIC);
    if (last_wall_ns == 0 || now_ns - last_wall_ns >= FC_LOAD_WINDOW_NS)
        sample_load(now_ns);
    return free_cores > 0 && free_cores < requested ? free_cores : requested;
}
#else
int fc_threads_for_call(int requested)
{
    return requested;
}
#endif
