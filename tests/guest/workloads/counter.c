/* counter - proves that guest memory AND execution continue from a checkpoint.
 *
 * Increments a 64-bit counter every interval_ms and prints "COUNTER <n>".
 * The counter lives in one page-aligned, mlock()ed struct:
 *   uint8_t magic[16] = "MCGRPC-COUNTER-1" (no NUL), uint64_t value,
 *   uint64_t value_inverted (== ~value).
 * Host-side tests find it by scanning the guest RAM file for the magic and
 * accept a hit only if value_inverted == ~value.  The magic is built at run
 * time by XOR-decoding ENC with a volatile key, so the 16 bytes exist exactly
 * once in guest RAM: inside the struct (not in the binary, not in any buffer).
 *
 * Arguments: interval_ms=<ms> (default 50).
 */
#include "common.h"
#include <sys/mman.h>

struct marker {
    uint8_t magic[16];
    uint64_t value;
    uint64_t value_inverted;
};

/* "MCGRPC-COUNTER-1" XOR 0xA5 */
static const uint8_t ENC[16] = { 0xe8, 0xe6, 0xe2, 0xf7, 0xf5, 0xe6, 0x88, 0xe6,
                                 0xea, 0xf0, 0xeb, 0xf1, 0xe0, 0xf7, 0x88, 0x94 };
static volatile uint8_t key = 0xA5; /* volatile: the compiler cannot fold the XOR */

int main(int argc, char **argv)
{
    static const char *const known[] = { "interval_ms", NULL };
    args_init("COUNTER", argc, argv, known);
    uint64_t interval = (uint64_t)arg_int("interval_ms", 50) * 1000000ull;

    volatile struct marker *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (m == MAP_FAILED || mlock((void *)m, 4096) != 0)
        die("COUNTER FATAL mmap/mlock errno=%d", errno);
    m->value = 0;
    m->value_inverted = ~(uint64_t)0;
    uint8_t k = key;
    for (int i = 0; i < 16; i++)
        m->magic[i] = ENC[i] ^ k;
    mc_ready();

    uint64_t next = now_ns();
    for (;;) {
        uint64_t v = m->value + 1;
        m->value = v;
        m->value_inverted = ~v;
        say("COUNTER %llu", (unsigned long long)v);
        next += interval;
        uint64_t now = now_ns();
        if (next < now) /* fell behind (VM was paused): do not burst */
            next = now;
        sleep_until(next);
    }
}
