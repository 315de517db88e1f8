#include "_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int open_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

/* A listener at a fresh path, a client connected to it and the accepted end. */
typedef struct pair {
  char path[300];
  vasp_sock *listener, *client, *server;
} pair;

static bool pair_open(pair *p) {
  snprintf(p->path, sizeof p->path, "%s/s.sock", test_tmpdir());
  return vasp_sock_listen(p->path, &p->listener) == VASP_OK &&
         vasp_sock_connect(p->path, &p->client) == VASP_OK &&
         vasp_sock_accept(p->listener, &p->server) == VASP_OK;
}

static void pair_close(pair *p) {
  vasp_sock_close(p->client);
  vasp_sock_close(p->server);
  vasp_sock_close(p->listener);
}

TEST(sock_passes_bytes_and_descriptors_both_ways) {
  int before = open_fds();
  pair p = {0};
  CHECK(pair_open(&p));
  int pipefd[2];
  CHECK(pipe(pipefd) == 0);
  int32_t out[1] = {pipefd[1]};
  size_t sent = 0;
  CHECK_RC(vasp_sock_send(p.client, (const uint8_t *)"{\"execute\":\"getfd\"}", 19, out, 1, 0,
                          &sent), VASP_OK, p.client);
  CHECK(sent == 19);
  close(pipefd[1]);
  uint8_t buf[64];
  int32_t fds[4];
  size_t n = 0;
  uint32_t nfds = 0;
  CHECK_RC(vasp_sock_recv(p.server, buf, sizeof buf, &n, fds, 4, &nfds), VASP_OK, NULL);
  CHECK(n == 19 && memcmp(buf, "{\"execute\":\"getfd\"}", 19) == 0);
  CHECK(nfds == 1);
  /* The received descriptor is the pipe's write end, close-on-exec. */
  CHECK(write(fds[0], "x", 1) == 1);
  char c = 0;
  CHECK(read(pipefd[0], &c, 1) == 1 && c == 'x');
  CHECK((fcntl(fds[0], F_GETFD) & FD_CLOEXEC) != 0);
  /* And back, from the accepted end to the client. */
  CHECK_RC(vasp_sock_send(p.server, (const uint8_t *)"ok\n", 3, fds, 1, VASP_SOCK_DONTWAIT,
                          &sent), VASP_OK, p.server);
  CHECK(sent == 3);
  CHECK_RC(vasp_fd_close(fds[0]), VASP_OK, NULL);
  CHECK_RC(vasp_sock_recv(p.client, buf, sizeof buf, &n, fds, 4, &nfds), VASP_OK, NULL);
  CHECK(n == 3 && nfds == 1);
  CHECK_RC(vasp_fd_close(fds[0]), VASP_OK, NULL);
  close(pipefd[0]);
  pair_close(&p);
  CHECK(open_fds() == before);
}

TEST(sock_recv_reports_end_of_stream_as_zero_bytes) {
  pair p = {0};
  CHECK(pair_open(&p));
  vasp_sock_close(p.client);
  p.client = NULL;
  uint8_t buf[8];
  int32_t fds[1];
  size_t n = 1;
  uint32_t nfds = 1;
  CHECK_RC(vasp_sock_recv(p.server, buf, sizeof buf, &n, fds, 1, &nfds), VASP_OK, NULL);
  CHECK(n == 0 && nfds == 0);
  pair_close(&p);
}

TEST(sock_recv_closes_descriptors_beyond_its_room) {
  int before = open_fds();
  pair p = {0};
  CHECK(pair_open(&p));
  int32_t three[3];
  for (int i = 0; i < 3; i++) three[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
  size_t sent;
  CHECK_RC(vasp_sock_send(p.client, (const uint8_t *)"x", 1, three, 3, 0, &sent), VASP_OK, NULL);
  for (int i = 0; i < 3; i++) close(three[i]);
  uint8_t buf[8];
  int32_t fds[1];
  size_t n;
  uint32_t nfds;
  CHECK_RC(vasp_sock_recv(p.server, buf, sizeof buf, &n, fds, 1, &nfds), VASP_OK, NULL);
  CHECK(n == 1 && nfds == 1);
  close(fds[0]);
  pair_close(&p);
  CHECK(open_fds() == before);
}

typedef struct waiter {
  vasp_sock *s;
  bool accept;
  int rc;
  size_t n;
} waiter;

static void *wait_on(void *arg) {
  waiter *w = arg;
  uint8_t buf[8];
  int32_t fds[1];
  uint32_t nfds;
  vasp_sock *got = NULL;
  w->rc = w->accept ? vasp_sock_accept(w->s, &got)
                    : vasp_sock_recv(w->s, buf, sizeof buf, &w->n, fds, 1, &nfds);
  vasp_sock_close(got);
  return NULL;
}

TEST(sock_shutdown_wakes_a_blocked_recv_and_accept) {
  pair p = {0};
  CHECK(pair_open(&p));
  waiter r = {.s = p.server, .n = 99}, a = {.s = p.listener, .accept = true};
  pthread_t tr, ta;
  CHECK(pthread_create(&tr, NULL, wait_on, &r) == 0);
  CHECK(pthread_create(&ta, NULL, wait_on, &a) == 0);
  usleep(20000);
  CHECK_RC(vasp_sock_shutdown(p.server), VASP_OK, p.server);
  CHECK_RC(vasp_sock_shutdown(p.listener), VASP_OK, p.listener);
  pthread_join(tr, NULL);
  pthread_join(ta, NULL);
  CHECK(r.rc == VASP_OK && r.n == 0);
  CHECK(a.rc == VASP_E_CLOSED);
  CHECK(strstr(vasp_sock_rx_errmsg(p.listener), "shut down") != NULL);
  pair_close(&p);
}

TEST(sock_adopts_only_a_listening_unix_socket) {
  const char *dir = test_tmpdir();
  vasp_sock *s = NULL, *c = NULL;
  int fd = open("/dev/null", O_RDONLY); /* not a socket */
  CHECK_RC(vasp_sock_adopt(fd, &s), VASP_E_ARG, NULL);
  CHECK(s == NULL && fcntl(fd, F_GETFD) >= 0); /* still the caller's */
  close(fd);
  /* An inherited listening socket, as libvirt hands one over (not close-on-exec). */
  int raw = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s/b.sock", dir);
  CHECK(bind(raw, (struct sockaddr *)&addr, sizeof addr) == 0 && listen(raw, 1) == 0);
  CHECK_RC(vasp_sock_adopt(raw, &s), VASP_OK, NULL);
  CHECK((fcntl(raw, F_GETFD) & FD_CLOEXEC) != 0);
  CHECK_RC(vasp_sock_connect(addr.sun_path, &c), VASP_OK, NULL);
  vasp_sock *accepted = NULL;
  CHECK_RC(vasp_sock_accept(s, &accepted), VASP_OK, s);
  vasp_sock_close(accepted);
  vasp_sock_close(c);
  vasp_sock_close(s);
  vasp_sock_close(NULL);
}

TEST(sock_connect_says_not_found_when_nothing_listens) {
  char path[300];
  snprintf(path, sizeof path, "%s/none.sock", test_tmpdir());
  vasp_sock *c = (vasp_sock *)1;
  CHECK_RC(vasp_sock_connect(path, &c), VASP_E_NOT_FOUND, NULL);
  CHECK(c == NULL);
  CHECK(strstr(vasp_errmsg(NULL), "none.sock") != NULL);
  CHECK_RC(vasp_sock_listen("", &c), VASP_E_ARG, NULL);
}
