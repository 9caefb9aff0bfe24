/* udpseq - proves that guest network output is neither lost, duplicated nor
 * reordered across checkpoints and failover (output is released only after
 * the checkpoint that produced it).
 *
 * Sends UDP datagrams with payload "SEQ <n>\n" (n = 1, 2, 3, ... kept in
 * memory; n only advances when sendto() succeeds) to host:port every
 * interval_ms, and prints "UDPSEQ <n>" every 100 datagrams.  Send errors
 * print "UDPSEQ error seq=<n> errno=<e>" (at most once per 100 attempts).
 *
 * Arguments: host=<IPv4> (10.0.2.2, the slirp host), port=<udp port> (5555),
 *            interval_ms=<ms> (10).
 */
#include "common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
    static const char *const known[] = { "host", "port", "interval_ms", NULL };
    args_init("UDPSEQ", argc, argv, known);
    const char *host = arg_str("host", "10.0.2.2");
    long long port = arg_int("port", 5555);
    uint64_t interval = (uint64_t)arg_int("interval_ms", 10) * 1000000ull;

    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (port < 1 || port > 65535 || inet_pton(AF_INET, host, &to.sin_addr) != 1)
        die("UDPSEQ FATAL bad host/port %s:%lld", host, port);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("UDPSEQ FATAL socket errno=%d", errno);
    mc_ready();

    uint64_t seq = 1, errors = 0, next = now_ns();
    for (;;) {
        char msg[32];
        int len = snprintf(msg, sizeof msg, "SEQ %llu\n", (unsigned long long)seq);
        if (sendto(fd, msg, len, 0, (struct sockaddr *)&to, sizeof to) == len) {
            if (seq % 100 == 0)
                say("UDPSEQ %llu", (unsigned long long)seq);
            seq++;
        } else if (errors++ % 100 == 0) {
            say("UDPSEQ error seq=%llu errno=%d", (unsigned long long)seq, errno);
        }
        next += interval;
        uint64_t now = now_ns();
        if (next < now) /* fell behind (VM was paused): do not burst */
            next = now;
        sleep_until(next);
    }
}
