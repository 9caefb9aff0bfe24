/* common.h - tiny helpers shared by the test-guest workloads.
 *
 * Output: every line goes to stdout (init points it at /dev/ttyS0) with ONE
 * write(), so lines from different workloads never interleave mid-line.
 * No stdio buffering is used anywhere.
 * Arguments: argv entries of the form key=value (init turns the kernel
 * parameter mc.<workload>.<key>=<value> into <key>=<value>).
 */
#ifndef MC_COMMON_H
#define MC_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int mc_argc;
static char **mc_argv;
static const char *mc_name = "?"; /* prefix of our output lines */
static const char *mc_prog = "?"; /* basename of argv[0] */

/* Write one formatted line (newline added) with a single write(). */
static inline void say(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = write(1, buf + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        off += w;
    }
}

#define die(...) do { say(__VA_ARGS__); exit(1); } while (0)

/* known: NULL-terminated list of accepted keys; unknown keys are fatal. */
static inline void args_init(const char *name, int argc, char **argv, const char *const *known)
{
    mc_name = name;
    mc_prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    mc_argc = argc;
    mc_argv = argv;
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        int ok = 0;
        for (const char *const *k = known; eq && *k; k++)
            if (strlen(*k) == (size_t)(eq - argv[i]) && !strncmp(*k, argv[i], eq - argv[i]))
                ok = 1;
        if (!ok)
            die("%s FATAL bad argument '%s'", name, argv[i]);
    }
}

static inline const char *arg_str(const char *key, const char *def)
{
    size_t kl = strlen(key);
    for (int i = 1; i < mc_argc; i++)
        if (!strncmp(mc_argv[i], key, kl) && mc_argv[i][kl] == '=')
            return mc_argv[i] + kl + 1;
    return def;
}

static inline long long arg_int(const char *key, long long def)
{
    const char *s = arg_str(key, NULL);
    if (!s)
        return def;
    char *end;
    long long v = strtoll(s, &end, 0);
    if (*s == 0 || *end != 0 || v < 0)
        die("%s FATAL bad value %s=%s", mc_name, key, s);
    return v;
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Sleep until an absolute CLOCK_MONOTONIC time in ns. */
static inline void sleep_until(uint64_t t)
{
    struct timespec ts = { .tv_sec = t / 1000000000ull, .tv_nsec = t % 1000000000ull };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Tell init we are initialised: writes "<prog> ready" to the FIFO
 * /run/mc/ready (nothing happens when it does not exist, e.g. on the host). */
static inline void mc_ready(void)
{
    char msg[128];
    int n = snprintf(msg, sizeof msg, "%s ready\n", mc_prog);
    int fd = open("/run/mc/ready", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, msg, n) != n)
            say("%s WARNING ready notification failed errno=%d", mc_name, errno);
        close(fd);
    }
}

#endif
