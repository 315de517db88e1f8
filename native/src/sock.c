/* Unix stream sockets carrying SCM_RIGHTS descriptors, for the QMP gate. */
#include "_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct vasp_sock {
  vasp_err err;    /* first: vasp_errmsg(handle); written by all but recv/accept */
  vasp_err rx_err; /* written only by vasp_sock_recv and vasp_sock_accept */
  int fd;
  atomic_bool shut;
};

static int sock_new(vasp_err *err, int fd, vasp_sock **out) {
  vasp_sock *s = calloc(1, sizeof *s);
  if (!s) return vasp_fail(err, VASP_E_NOMEM, "cannot allocate a socket handle");
  s->fd = fd;
  atomic_init(&s->shut, false);
  *out = s;
  return VASP_OK;
}

/* Checks out, fills *addr for path and creates an unbound Unix stream socket
 * in *fd (close-on-exec): what listen and connect both start with. */
static int unix_socket(const char *path, vasp_sock **out, struct sockaddr_un *addr, int *fd) {
  if (!out) return vasp_fail(NULL, VASP_E_ARG, "out is NULL");
  *out = NULL;
  if (!path) return vasp_fail(NULL, VASP_E_ARG, "socket path is NULL");
  size_t len = strlen(path);
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (len == 0 || len >= sizeof addr->sun_path) {
    return vasp_fail(NULL, VASP_E_ARG, "socket path \"%s\" is empty or longer than %zu bytes",
                     path, sizeof addr->sun_path - 1);
  }
  memcpy(addr->sun_path, path, len);
  *fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (*fd < 0) return vasp_fail(NULL, VASP_E_IO, "cannot create a socket: %s", strerror(errno));
  return VASP_OK;
}

int vasp_sock_listen(const char *path, vasp_sock **out) {
  struct sockaddr_un addr;
  int fd = -1;
  int rc = unix_socket(path, out, &addr, &fd);
  if (rc) return rc;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0) {
    int e = errno;
    close(fd);
    return vasp_fail(NULL, VASP_E_IO, "cannot listen on \"%s\": %s", path, strerror(e));
  }
  rc = sock_new(NULL, fd, out);
  if (rc) close(fd);
  return rc;
}

int vasp_sock_adopt(int32_t fd, vasp_sock **out) {
  if (!out) return vasp_fail(NULL, VASP_E_ARG, "out is NULL");
  *out = NULL;
  int type = 0, accepting = 0;
  socklen_t len = sizeof type;
  struct sockaddr_un addr;
  socklen_t alen = sizeof addr;
  if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
      (len = sizeof accepting, getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len)) != 0 ||
      getsockname(fd, (struct sockaddr *)&addr, &alen) != 0) {
    return vasp_fail(NULL, VASP_E_ARG, "descriptor %d is not a socket: %s", fd, strerror(errno));
  }
  if (type != SOCK_STREAM || addr.sun_family != AF_UNIX || !accepting) {
    return vasp_fail(NULL, VASP_E_ARG, "descriptor %d is not a listening Unix stream socket", fd);
  }
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0) {
    return vasp_fail(NULL, VASP_E_IO, "cannot mark descriptor %d close-on-exec: %s", fd,
                     strerror(errno));
  }
  return sock_new(NULL, fd, out);
}

int vasp_sock_connect(const char *path, vasp_sock **out) {
  struct sockaddr_un addr;
  int fd = -1;
  int rc = unix_socket(path, out, &addr, &fd);
  if (rc) return rc;
  int r;
  do r = connect(fd, (struct sockaddr *)&addr, sizeof addr);
  while (r != 0 && errno == EINTR);
  if (r != 0) {
    int e = errno;
    close(fd);
    return vasp_fail(NULL, e == ENOENT || e == ECONNREFUSED ? VASP_E_NOT_FOUND : VASP_E_IO,
                     "cannot connect to \"%s\": %s", path, strerror(e));
  }
  rc = sock_new(NULL, fd, out);
  if (rc) close(fd);
  return rc;
}

int vasp_sock_accept(vasp_sock *listener, vasp_sock **out) {
  if (!out) return vasp_fail(NULL, VASP_E_ARG, "out is NULL");
  *out = NULL;
  if (!listener) return vasp_fail(NULL, VASP_E_ARG, "listener is NULL");
  for (;;) {
    if (atomic_load(&listener->shut)) {
      return vasp_fail(&listener->rx_err, VASP_E_CLOSED, "the listening socket was shut down");
    }
    int fd = accept4(listener->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) {
      int rc = sock_new(&listener->rx_err, fd, out);
      if (rc) close(fd);
      return rc;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (atomic_load(&listener->shut)) continue; /* reported above */
    return vasp_fail(&listener->rx_err, VASP_E_IO, "cannot accept: %s", strerror(errno));
  }
}

/* Room for VASP_SOCK_MAX_FDS descriptors, aligned for struct cmsghdr. */
typedef union {
  char buf[CMSG_SPACE(sizeof(int) * VASP_SOCK_MAX_FDS)];
  struct cmsghdr align;
} fd_space;

ssize_t vasp_recv_fds(int fd, uint8_t *buf, size_t cap, int flags, int32_t *fds,
                      uint32_t fd_cap, uint32_t *nfds) {
  fd_space control;
  struct iovec iov = {.iov_base = buf, .iov_len = cap};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                       .msg_controllen = sizeof control.buf};
  ssize_t n;
  do n = recvmsg(fd, &msg, flags | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  *nfds = 0;
  if (n < 0 || msg.msg_controllen == 0) return n;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int got;
      memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
      if (*nfds < fd_cap && *nfds < VASP_SOCK_MAX_FDS) fds[(*nfds)++] = got;
      else close(got);
    }
  }
  return n;
}

int vasp_sock_recv(vasp_sock *s, uint8_t *buf, size_t cap, size_t *out_len, int32_t *fds,
                   uint32_t fd_cap, uint32_t *out_nfds) {
  if (!s) return vasp_fail(NULL, VASP_E_ARG, "socket is NULL");
  if (!buf || cap == 0 || !out_len || !out_nfds || (fd_cap > 0 && !fds)) {
    return vasp_fail(&s->rx_err, VASP_E_ARG, "recv needs a buffer, its size and out-parameters");
  }
  uint32_t got = 0;
  ssize_t n = vasp_recv_fds(s->fd, buf, cap, 0, fds, fd_cap, &got);
  if (n < 0) {
    if (!atomic_load(&s->shut)) {
      return vasp_fail(&s->rx_err, VASP_E_IO, "cannot receive: %s", strerror(errno));
    }
    n = 0;
  }
  *out_len = (size_t)n;
  *out_nfds = got;
  return VASP_OK;
}

const char *vasp_sock_rx_errmsg(const vasp_sock *s) {
  return s ? s->rx_err.msg : vasp_errmsg(NULL);
}

ssize_t vasp_send_fds(int fd, const uint8_t *buf, size_t len, const int32_t *fds,
                      uint32_t nfds, int flags) {
  fd_space control;
  struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds > 0) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  do n = sendmsg(fd, &msg, flags | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n;
}

int vasp_sock_send(vasp_sock *s, const uint8_t *buf, size_t len, const int32_t *fds,
                   uint32_t nfds, uint32_t flags, size_t *out_sent) {
  if (!s) return vasp_fail(NULL, VASP_E_ARG, "socket is NULL");
  if (!out_sent || (len > 0 && !buf) || (nfds > 0 && !fds) || len == 0) {
    return vasp_fail(&s->err, VASP_E_ARG, "send needs bytes and an out-parameter");
  }
  if (nfds > VASP_SOCK_MAX_FDS) {
    return vasp_fail(&s->err, VASP_E_ARG, "cannot send %u descriptors at once (at most %u)",
                     nfds, VASP_SOCK_MAX_FDS);
  }
  bool dontwait = flags & VASP_SOCK_DONTWAIT;
  ssize_t n = vasp_send_fds(s->fd, buf, len, fds, nfds, dontwait ? MSG_DONTWAIT : 0);
  if (n < 0) {
    if (dontwait && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      *out_sent = 0;
      return VASP_OK;
    }
    return vasp_fail(&s->err, atomic_load(&s->shut) ? VASP_E_CLOSED : VASP_E_IO,
                     "cannot send: %s", strerror(errno));
  }
  *out_sent = (size_t)n;
  return VASP_OK;
}

int vasp_sock_shutdown(vasp_sock *s) {
  if (!s) return vasp_fail(NULL, VASP_E_ARG, "socket is NULL");
  atomic_store(&s->shut, true);
  /* ENOTCONN: a listener, or a peer already gone; both are shut enough. */
  /* The calling thread's slot, not the handle's: a send may be failing on another thread. */
  if (shutdown(s->fd, SHUT_RDWR) != 0 && errno != ENOTCONN) {
    return vasp_fail(NULL, VASP_E_IO, "cannot shut the socket down: %s", strerror(errno));
  }
  return VASP_OK;
}

int vasp_sock_wrap(int fd, vasp_sock **out) {
  return sock_new(NULL, fd, out);
}

int vasp_sock_fd(const vasp_sock *s) {
  return s->fd;
}

void vasp_sock_forget(vasp_sock *s) {
  free(s);
}

void vasp_sock_close(vasp_sock *s) {
  if (!s) return;
  close(s->fd);
  free(s);
}

int vasp_fd_close(int32_t fd) {
  if (fd < 0) return vasp_fail(NULL, VASP_E_ARG, "descriptor %d is invalid", fd);
  if (close(fd) != 0 && errno != EINTR) {
    return vasp_fail(NULL, VASP_E_IO, "cannot close descriptor %d: %s", fd, strerror(errno));
  }
  return VASP_OK;
}
