/* SPDX-License-Identifier: MIT */
/*
 * sd_notify datagrams (see notify.h). A fresh socket per message: the daemon sends only a
 * handful (READY, STOPPING, a few STATUS lines), so there is nothing to keep open.
 */
#include "edge/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int ptc_notify_to(const char *socket_name, const char *state)
{
    if (socket_name == NULL || socket_name[0] == '\0') {
        return 0;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    size_t len = strlen(socket_name);
    if ((socket_name[0] != '/' && socket_name[0] != '@') || len >= sizeof(sa.sun_path)) {
        return -EINVAL;
    }
    memcpy(sa.sun_path, socket_name, len);
    if (sa.sun_path[0] == '@') {
        /* An abstract socket: the name starts with a NUL byte and is not NUL-terminated. */
        sa.sun_path[0] = '\0';
    }
    socklen_t salen =
        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (socket_name[0] == '/' ? 1 : 0));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    int rc = 0;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0) {
        rc = -errno;
    }
    close(fd);
    return rc;
}

int ptc_notify(const char *state)
{
    return ptc_notify_to(getenv("NOTIFY_SOCKET"), state);
}
