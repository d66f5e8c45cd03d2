/* Send COUNT UDP datagrams of LEN payload octets to 127.0.0.1:PORT as fast as sendmmsg can,
 * then print the seconds it took. For bench/live-capture: a load on the loopback interface. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: flood PORT COUNT LEN\n");
        return 2;
    }
    int port = atoi(argv[1]);
    long count = atol(argv[2]);
    int len = atoi(argv[3]);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        perror("connect");
        return 1;
    }
    enum { BATCH = 64 };
    static char buf[65536];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = buf;
        iov[i].iov_len = len;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    long sent = 0;
    while (sent < count) {
        int n = count - sent < BATCH ? (int)(count - sent) : BATCH;
        int r = sendmmsg(fd, msgs, n, 0);
        if (r > 0)
            sent += r;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.3f\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
    return 0;
}
