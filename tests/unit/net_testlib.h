/*
 * net_testlib.h - a loopback listener that never answers, for the unit
 * tests of a port already in use (admin) and of a server that accepts and
 * stays silent (registry). Test-only; header-only.
 */
#ifndef TS_NET_TESTLIB_H
#define TS_NET_TESTLIB_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* A socket listening on 127.0.0.1 at a port the system picks: the socket
 * (the caller closes it), its port in *port; -1 when it cannot listen. */
static inline int tn_listen_loopback(int backlog, int *port) {
    *port = 0;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) || listen(s, backlog)) return -1;
    socklen_t sl = sizeof sa;
    getsockname(s, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return s;
}

#endif
