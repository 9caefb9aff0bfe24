/* workrate - measures how fast the guest runs (CPU and memory writes), so
 * tests can quantify the slowdown caused by checkpointing.
 *
 * One iteration = `rounds` rounds of integer mixing (CPU) followed by one
 * 8-byte write into each of the next `writes` pages of a `mb` MiB buffer
 * (walked sequentially, so every page of the buffer is dirtied over and over).
 * Prints "WORKRATE iters_per_sec=<x> pages_per_sec=<y>" once per second
 * (integers; y = page writes per second, measured with CLOCK_MONOTONIC).
 *
 * Arguments: mb=<MiB> (32), rounds=<n> (64), writes=<pages per iter> (4).
 */
#include "common.h"
#include <sys/mman.h>

int main(int argc, char **argv)
{
    static const char *const known[] = { "mb", "rounds", "writes", NULL };
    args_init("WORKRATE", argc, argv, known);
    uint64_t npages = (uint64_t)arg_int("mb", 32) * 256;
    uint64_t rounds = arg_int("rounds", 64), writes = arg_int("writes", 4);
    if (npages == 0)
        die("WORKRATE FATAL mb must be > 0");

    uint64_t *buf = mmap(NULL, npages * 4096, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (buf == MAP_FAILED)
        die("WORKRATE FATAL mmap errno=%d", errno);
    mc_ready();

    uint64_t x = 88172645463325252ull, page = 0, iters = 0, pagew = 0;
    uint64_t t0 = now_ns();
    for (;;) {
        for (uint64_t r = 0; r < rounds; r++) { /* CPU: xorshift64 */
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        }
        for (uint64_t w = 0; w < writes; w++) { /* memory: one write per page */
            buf[page * 512 + (x >> 55)] += x;
            if (++page == npages)
                page = 0;
        }
        iters++;
        pagew += writes;
        if ((iters & 255) == 0) {
            uint64_t t = now_ns();
            if (t - t0 >= 1000000000ull) {
                double s = (t - t0) / 1e9;
                say("WORKRATE iters_per_sec=%llu pages_per_sec=%llu",
                    (unsigned long long)(iters / s + 0.5), (unsigned long long)(pagew / s + 0.5));
                t0 = t;
                iters = pagew = 0;
            }
        }
    }
}
