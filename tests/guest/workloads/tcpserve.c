/* tcpserve - proves that TCP connections survive checkpoints and failover
 * with every byte delivered exactly once, in order, in both directions.
 *
 * echo_port (5001): echoes everything back (latency / stream tests).
 * seq_port  (5002): duplex verified stream.  The client must send byte
 *   i = (i*31 + (i>>11)) & 0xff for i = 0, 1, 2, ...; every byte is checked
 *   ("TCPSEQ ERROR offset=<i> got=<x> want=<y>" once per connection on the
 *   first mismatch).  Meanwhile the guest sends byte
 *   j = (j*17 + (j>>13) + 5) & 0xff as fast as the client reads.
 *   Prints "TCPSEQ open", "TCPSEQ rx=<bytes> tx=<bytes>" about every 2 s and
 *   "TCPSEQ closed rx=<bytes> tx=<bytes> reason=<eof|reset|error-<errno>>".
 * Each connection is served by its own forked child (any number of
 * sequential or concurrent connections).  Prints
 * "TCPSERVE listening echo_port=<p> seq_port=<q>" once the ports are open.
 *
 * Arguments: echo_port=<port> (5001), seq_port=<port> (5002).
 */
#include "common.h"
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

static int listen_on(long long port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_ANY) };
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || port < 1 || port > 65535)
        die("TCPSERVE FATAL bad port %lld", port);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 64))
        die("TCPSERVE FATAL bind/listen port %lld errno=%d", port, errno);
    return fd;
}

static void serve_echo(int fd)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = send(fd, buf + off, n - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return;
            off += w;
        }
    }
}

static inline uint8_t rx_byte(uint64_t i) { return (uint8_t)((i * 31 + (i >> 11)) & 0xff); }
static inline uint8_t tx_byte(uint64_t j) { return (uint8_t)((j * 17 + (j >> 13) + 5) & 0xff); }

static void serve_seq(int fd)
{
    static uint8_t in[65536], out[65536];
    uint64_t rx = 0, tx = 0, out_start = 0, out_len = 0; /* out holds bytes out_start.. */
    uint64_t next_report = now_ns() + 2000000000ull;
    int reported_error = 0;
    const char *reason = "eof";
    char why[32];
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    say("TCPSEQ open");
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
        int r = poll(&p, 1, 500);
        if (r < 0 && errno != EINTR) {
            snprintf(why, sizeof why, "error-%d", errno);
            reason = why;
            break;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(fd, in, sizeof in);
            if (n == 0)
                break; /* client closed its side */
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                reason = errno == ECONNRESET ? "reset" : (snprintf(why, sizeof why, "error-%d", errno), why);
                break;
            }
            for (ssize_t k = 0; k < n; k++, rx++)
                if (in[k] != rx_byte(rx) && !reported_error++)
                    say("TCPSEQ ERROR offset=%llu got=%u want=%u",
                        (unsigned long long)rx, in[k], rx_byte(rx));
        }
        if (p.revents & POLLOUT) {
            if (tx == out_start + out_len) { /* refill the send buffer */
                out_start = tx;
                out_len = sizeof out;
                for (uint64_t k = 0; k < out_len; k++)
                    out[k] = tx_byte(out_start + k);
            }
            ssize_t w = send(fd, out + (tx - out_start), out_start + out_len - tx, MSG_NOSIGNAL);
            if (w > 0)
                tx += w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                reason = (errno == ECONNRESET || errno == EPIPE) ? "reset"
                         : (snprintf(why, sizeof why, "error-%d", errno), why);
                break;
            }
        }
        if (now_ns() >= next_report) {
            say("TCPSEQ rx=%llu tx=%llu", (unsigned long long)rx, (unsigned long long)tx);
            next_report = now_ns() + 2000000000ull;
        }
    }
    say("TCPSEQ closed rx=%llu tx=%llu reason=%s", (unsigned long long)rx,
        (unsigned long long)tx, reason);
}

int main(int argc, char **argv)
{
    static const char *const known[] = { "echo_port", "seq_port", NULL };
    args_init("TCPSERVE", argc, argv, known);
    long long eport = arg_int("echo_port", 5001), sport = arg_int("seq_port", 5002);
    int lfd[2] = { listen_on(eport), listen_on(sport) };
    signal(SIGCHLD, SIG_IGN); /* children are reaped automatically */
    signal(SIGPIPE, SIG_IGN);
    say("TCPSERVE listening echo_port=%lld seq_port=%lld", eport, sport);
    mc_ready();

    for (;;) {
        struct pollfd p[2] = { { .fd = lfd[0], .events = POLLIN }, { .fd = lfd[1], .events = POLLIN } };
        if (poll(p, 2, -1) < 0)
            continue;
        for (int k = 0; k < 2; k++) {
            if (!(p[k].revents & POLLIN))
                continue;
            int c = accept4(lfd[k], NULL, NULL, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            int one = 1;
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            pid_t pid = fork();
            if (pid == 0) {
                close(lfd[0]);
                close(lfd[1]);
                if (k == 0)
                    serve_echo(c);
                else
                    serve_seq(c);
                _exit(0);
            }
            if (pid < 0)
                say("TCPSERVE fork failed errno=%d", errno);
            close(c);
        }
    }
}
