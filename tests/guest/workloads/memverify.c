/* memverify - proves that a restored checkpoint is a CONSISTENT memory image.
 *
 * Keeps `pages` data pages (mlock()ed) plus one header page under a
 * cross-page invariant:
 *   data page i = { gen, sum, payload[510] }, payload = f(i, gen),
 *                 sum = hash(i, gen, payload)
 *   header page  = { total = sum of all gens, updates, checks }
 * One update = pick a pseudo-random page, bump gen, rewrite payload, write
 * sum, then total += 1.  These are separate stores spread over two pages, on
 * purpose: a checkpoint that mixes pages from different moments (or loses
 * some dirty pages) breaks the invariant, while a correct checkpoint resumes
 * mid-update and completes it.  Every check_ms (or every check_every updates)
 * everything is verified and "MEMVERIFY ok checks=<n> updates=<u>" or
 * "MEMVERIFY VIOLATION ..." lines are printed; it never exits on a violation.
 *
 * Arguments: pages=<n> (4096 = 16 MiB), rate=<updates/s> (0 = unlimited),
 *            check_ms=<ms> (1000), check_every=<updates> (0 = use check_ms).
 */
#include "common.h"
#include <sys/mman.h>

#define WORDS 510 /* (4096 - 16) / 8 */
struct page { uint64_t gen, sum, w[WORDS]; };
struct header { uint64_t total, updates, checks; };

static uint64_t mix(uint64_t x) /* splitmix64 finaliser */
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* payload word k of page i at generation g is the k-th xorshift64 output */
static void fill(struct page *p, uint64_t i, uint64_t g)
{
    uint64_t x = mix(i << 40 ^ g) | 1;
    for (int k = 0; k < WORDS; k++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p->w[k] = x;
    }
}

static uint64_t hash(const struct page *p, uint64_t i, uint64_t g)
{
    uint64_t h = 0xcbf29ce484222325ull ^ mix(i) ^ g;
    for (int k = 0; k < WORDS; k++)
        h = (h ^ p->w[k]) * 0x100000001b3ull;
    return h;
}

static volatile struct header *hdr;
static struct page *pg;
static uint64_t npages;

static void check(void)
{
    uint64_t sum = 0, bad = 0;
    int printed = 0;
    hdr->checks++;
    for (uint64_t i = 0; i < npages; i++) {
        struct page *p = &pg[i];
        uint64_t g = p->gen, want = 0;
        sum += g;
        uint64_t h = hash(p, i, g);
        int kbad = -1;
        uint64_t x = mix(i << 40 ^ g) | 1;
        for (int k = 0; k < WORDS; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            if (p->w[k] != x && kbad < 0) {
                kbad = k;
                want = x;
            }
        }
        if (h == p->sum && kbad < 0)
            continue;
        bad++;
        if (printed++ >= 16)
            continue;
        if (h != p->sum)
            say("MEMVERIFY VIOLATION page=%llu gen=%llu checksum stored=%016llx computed=%016llx",
                (unsigned long long)i, (unsigned long long)g,
                (unsigned long long)p->sum, (unsigned long long)h);
        if (kbad >= 0)
            say("MEMVERIFY VIOLATION page=%llu gen=%llu payload word=%d got=%016llx want=%016llx",
                (unsigned long long)i, (unsigned long long)g, kbad,
                (unsigned long long)p->w[kbad], (unsigned long long)want);
    }
    if (sum != hdr->total)
        say("MEMVERIFY VIOLATION total=%llu sum_of_gens=%llu",
            (unsigned long long)hdr->total, (unsigned long long)sum);
    if (bad || sum != hdr->total)
        say("MEMVERIFY VIOLATION summary checks=%llu updates=%llu bad_pages=%llu",
            (unsigned long long)hdr->checks, (unsigned long long)hdr->updates,
            (unsigned long long)bad);
    else
        say("MEMVERIFY ok checks=%llu updates=%llu",
            (unsigned long long)hdr->checks, (unsigned long long)hdr->updates);
}

int main(int argc, char **argv)
{
    static const char *const known[] = { "pages", "rate", "check_ms", "check_every", NULL };
    args_init("MEMVERIFY", argc, argv, known);
    npages = arg_int("pages", 4096);
    uint64_t rate = arg_int("rate", 0);
    uint64_t check_ns = (uint64_t)arg_int("check_ms", 1000) * 1000000ull;
    uint64_t check_every = arg_int("check_every", 0);
    if (npages == 0)
        die("MEMVERIFY FATAL pages must be > 0");

    size_t len = (npages + 1) * 4096;
    char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED || mlock(mem, len) != 0)
        die("MEMVERIFY FATAL mmap/mlock of %zu bytes errno=%d", len, errno);
    hdr = (volatile struct header *)mem;
    pg = (struct page *)(mem + 4096);
    for (uint64_t i = 0; i < npages; i++) {
        fill(&pg[i], i, 0);
        pg[i].sum = hash(&pg[i], i, 0);
    }
    mc_ready();

    uint64_t rnd = mix(now_ns());
    uint64_t start = now_ns(), next_check = start + check_ns, since_check = 0;
    for (;;) {
        rnd = mix(rnd);
        uint64_t i = rnd % npages;
        volatile struct page *p = &pg[i];
        uint64_t g = p->gen + 1;
        p->gen = g;                          /* 1: generation  */
        fill(&pg[i], i, g);                  /* 2: payload     */
        p->sum = hash(&pg[i], i, g);         /* 3: checksum    */
        hdr->total = hdr->total + 1;         /* 4: other page  */
        hdr->updates = hdr->updates + 1;
        since_check++;

        if (check_every ? since_check >= check_every : now_ns() >= next_check) {
            check();
            since_check = 0;
            next_check = now_ns() + check_ns;
        }
        if (rate) { /* pace to `rate` updates per second */
            static uint64_t t0, n0;
            uint64_t now = now_ns();
            if (!t0 || now > t0 + (hdr->updates - n0) * 1000000000ull / rate + 1000000000ull) {
                t0 = now; /* (re)start the pacing window, e.g. after a pause */
                n0 = hdr->updates;
            }
            uint64_t due = t0 + (hdr->updates - n0) * 1000000000ull / rate;
            if (due > now)
                sleep_until(due);
        }
    }
}
