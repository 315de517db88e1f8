#include "_internal.h"
#include "_test.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <unistd.h>

/* A lane with the test playing libvirt (lv), QEMU (qemu) and the engine (ec, eu). */
typedef struct rig {
  int lv, qemu;
  vasp_lane *lane;
  vasp_sock *ec, *eu;
} rig;

static bool rig_open(rig *r) {
  int a[2], b[2];
  vasp_sock *client = NULL, *upstream = NULL;
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, a) || socketpair(AF_UNIX, SOCK_STREAM, 0, b)) {
    return false;
  }
  r->lv = a[0];
  r->qemu = b[0];
  if (vasp_sock_wrap(a[1], &client) != VASP_OK || vasp_sock_wrap(b[1], &upstream) != VASP_OK ||
      vasp_lane_open(client, upstream, "query-status\nqom-get\ngetfd\nclosefd", &r->lane, &r->ec,
                     &r->eu) != VASP_OK) {
    return false;
  }
  /* What goes the wrong way fails the test instead of hanging it. */
  struct timeval limit = {.tv_sec = 10};
  const int fds[] = {r->lv, r->qemu, vasp_sock_fd(r->ec), vasp_sock_fd(r->eu)};
  for (size_t i = 0; i < 4; i++) {
    setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  }
  return true;
}

/* The engine closes its ends; the lane then closes libvirt's and QEMU's. */
static void rig_close(rig *r) {
  vasp_sock_close(r->ec);
  vasp_sock_close(r->eu);
  char c;
  /* The lane's thread is done with both once their ends read as closed. */
  while (read(r->lv, &c, 1) > 0) {
  }
  while (read(r->qemu, &c, 1) > 0) {
  }
  close(r->lv);
  close(r->qemu);
  vasp_lane_free(r->lane);
}

static bool put(int fd, const char *s) {
  return write(fd, s, strlen(s)) == (ssize_t)strlen(s);
}

/* Reads exactly strlen(want) bytes from fd and compares. */
static bool got(int fd, const char *want) {
  size_t n = strlen(want), at = 0;
  char buf[8192];
  while (at < n) {
    ssize_t r = read(fd, buf + at, n - at);
    if (r <= 0) return false;
    at += (size_t)r;
  }
  return memcmp(buf, want, n) == 0;
}

static bool engine_got(vasp_sock *s, const char *want) {
  size_t n = strlen(want), at = 0;
  char buf[8192];
  while (at < n) {
    size_t len = 0;
    uint32_t nfds = 0;
    if (vasp_sock_recv(s, (uint8_t *)buf + at, n - at, &len, NULL, 0, &nfds) || !len) {
      return false;
    }
    at += len;
  }
  return memcmp(buf, want, n) == 0;
}

static bool engine_send(vasp_sock *s, const char *text) {
  size_t sent = 0;
  return vasp_sock_send(s, (const uint8_t *)text, strlen(text), NULL, 0, 0, &sent) == VASP_OK &&
         sent == strlen(text);
}

/* Sends text with one descriptor attached, as libvirt sends getfd. */
static bool put_fd(int sock, const char *text, int32_t fd) {
  return vasp_send_fds(sock, (const uint8_t *)text, strlen(text), &fd, 1, 0) ==
         (ssize_t)strlen(text);
}

static bool quiet(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, 0) == 0;
}

#define QUERY "{\"execute\": \"query-status\", \"id\": 7}\n"
#define REPLY "{\"return\": {\"status\": \"running\"}, \"id\": 7}\n"
#define EVENT "{\"timestamp\": {\"seconds\": 1}, \"event\": \"STOP\"}\n"

TEST(lane_passes_a_listed_query_and_its_reply_while_the_engine_is_idle) {
  rig r = {0};
  CHECK(rig_open(&r));
  /* The greeting goes through the engine, which then reports itself idle. */
  CHECK(put(r.qemu, "{\"QMP\": {}}\n"));
  CHECK(engine_got(r.eu, "{\"QMP\": {}}\n"));
  CHECK(engine_send(r.ec, "{\"QMP\": {}}\n"));
  CHECK(got(r.lv, "{\"QMP\": {}}\n"));
  CHECK_RC(vasp_lane_idle(r.lane, 0, 12), VASP_OK, NULL);
  CHECK(put(r.lv, QUERY));
  CHECK(got(r.qemu, QUERY));
  CHECK(put(r.qemu, REPLY));
  CHECK(got(r.lv, REPLY));
  CHECK(vasp_lane_passed(r.lane) == 1);
  /* An unlisted command goes to the engine. */
  CHECK(put(r.lv, "{\"execute\": \"stop\"}\n"));
  CHECK(engine_got(r.ec, "{\"execute\": \"stop\"}\n"));
  CHECK(quiet(r.qemu));
  rig_close(&r);
}

TEST(lane_hands_everything_to_an_engine_that_has_not_caught_up) {
  rig r = {0};
  CHECK(rig_open(&r));
  /* No report yet. */
  CHECK(put(r.lv, QUERY));
  CHECK(engine_got(r.ec, QUERY));
  /* A report that misses bytes handed over since is no report. */
  CHECK_RC(vasp_lane_idle(r.lane, 0, 0), VASP_OK, NULL);
  CHECK(put(r.lv, QUERY));
  CHECK(engine_got(r.ec, QUERY));
  CHECK(vasp_lane_passed(r.lane) == 0);
  rig_close(&r);
}

TEST(lane_never_passes_what_qemu_could_read_otherwise) {
  rig r = {0};
  static const char *const refused[] = {
      "{\"execute\": \"query-status\"}{\"execute\": \"stop\"}\n", /* two in one read */
      "{\"execute\": \"query-status\", \"execute\": \"stop\"}\n",  /* a key twice */
      "{\"execute\": \"query-st\\u0061tus\"}\n",                  /* an escape */
      "{\"exec-oob\": \"query-status\"}\n",
      "{\"execute\": \"query-status\", \"x\": 1}\n",
      "{\"execute\": \"query-status\", \"arguments\": [1]}\n",
      "{\"execute\": \"query-status\", \"id\": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}\n",
      "{\"execute\": \"query-status\", \"id\": 01}\n",
      "{\"execute\": \"query-status\", \"id\": 'a'}\n",
      "{\"execute\": \"query-status\"\n", /* not complete */
      "[{\"execute\": \"query-status\"}]\n",
      "{\"execute\": \"query-status\", \"id\": \"\xc3\xa9\"}\n",
  };
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
    CHECK(rig_open(&r));
    CHECK_RC(vasp_lane_idle(r.lane, 0, 0), VASP_OK, NULL);
    CHECK(put(r.lv, refused[i]));
    bool to_engine = engine_got(r.ec, refused[i]);
    rig_close(&r);
    if (!to_engine) return (void)test_fail(__FILE__, __LINE__, refused[i]);
  }
  /* Longer than 4096 bytes, in one read. */
  CHECK(rig_open(&r));
  CHECK_RC(vasp_lane_idle(r.lane, 0, 0), VASP_OK, NULL);
  char big[5000];
  int n = snprintf(big, sizeof big, "{\"execute\": \"query-status\", \"id\": \"%04500d\"}\n", 1);
  CHECK(n > 4096 && write(r.lv, big, (size_t)n) == n);
  CHECK(engine_got(r.ec, big));
  CHECK(vasp_lane_passed(r.lane) == 0);
  rig_close(&r);
}

TEST(lane_sends_an_event_and_the_reply_after_it_through_the_engine) {
  rig r = {0};
  CHECK(rig_open(&r));
  CHECK_RC(vasp_lane_idle(r.lane, 0, 0), VASP_OK, NULL);
  CHECK(put(r.lv, QUERY));
  CHECK(got(r.qemu, QUERY));
  /* An event, then the reply in the same read: both go the engine's way, in order. */
  CHECK(put(r.qemu, EVENT REPLY "{\"event\": \"RES"));
  CHECK(engine_got(r.eu, EVENT REPLY "{\"event\": \"RES"));
  CHECK(quiet(r.lv));
  /* The engine sends them on; libvirt's next command was held until the reply came. */
  CHECK(engine_send(r.ec, EVENT REPLY));
  CHECK(got(r.lv, EVENT REPLY));
  rig_close(&r);
}

TEST(lane_puts_what_the_engine_sent_before_its_report_ahead_of_a_passed_reply) {
  rig r = {0};
  CHECK(rig_open(&r));
  CHECK(engine_send(r.ec, EVENT));
  CHECK_RC(vasp_lane_idle(r.lane, 0, 0), VASP_OK, NULL);
  CHECK(put(r.lv, QUERY));
  CHECK(got(r.qemu, QUERY));
  /* A reply split over two reads. */
  CHECK(put(r.qemu, "{\"return\": {\"status\":"));
  CHECK(put(r.qemu, " \"running\"}, \"id\": 7}\n"));
  CHECK(got(r.lv, EVENT REPLY));
  CHECK(vasp_lane_passed(r.lane) == 1);
  rig_close(&r);
}

TEST(lane_carries_descriptors_with_their_bytes_and_ends_with_the_engine) {
  rig r = {0};
  CHECK(rig_open(&r));
  int pipefd[2];
  CHECK(pipe(pipefd) == 0);
  /* A listed query with a descriptor: to the engine, descriptor attached. */
  const char *getfd = "{\"execute\": \"query-status\"}\n";
  CHECK_RC(vasp_lane_idle(r.lane, 0, 0), VASP_OK, NULL);
  CHECK(put_fd(r.lv, getfd, pipefd[1]));
  close(pipefd[1]);
  uint8_t buf[64];
  size_t n = 0;
  int32_t fds[2];
  uint32_t nfds = 0;
  CHECK_RC(vasp_sock_recv(r.ec, buf, sizeof buf, &n, fds, 2, &nfds), VASP_OK, r.ec);
  CHECK(n == strlen(getfd) && nfds == 1);
  /* The engine passes it on to QEMU. */
  size_t sent = 0;
  CHECK_RC(vasp_sock_send(r.eu, buf, n, fds, 1, 0, &sent), VASP_OK, r.eu);
  close(fds[0]);
  uint8_t got_buf[64];
  int32_t passed = -1;
  uint32_t npassed = 0;
  CHECK(vasp_recv_fds(r.qemu, got_buf, sizeof got_buf, 0, &passed, 1, &npassed) == (ssize_t)n);
  CHECK(npassed == 1);
  CHECK(write(passed, "x", 1) == 1);
  char c = 0;
  CHECK(read(pipefd[0], &c, 1) == 1 && c == 'x');
  close(passed);
  /* The end of libvirt's side reaches the engine. */
  shutdown(r.lv, SHUT_WR);
  CHECK_RC(vasp_sock_recv(r.ec, buf, sizeof buf, &n, NULL, 0, &nfds), VASP_OK, r.ec);
  CHECK(n == 0);
  /* Closing the engine's ends closes libvirt's and QEMU's (the lane has no other copy of
   * the pipe: its reader sees the end once the test's own copies are closed). */
  rig_close(&r);
  CHECK(read(pipefd[0], &c, 1) == 0);
  close(pipefd[0]);
}

static bool notes_are(vasp_lane *lane, const char *want) {
  char buf[256];
  size_t n = 0;
  return vasp_lane_notes(lane, buf, sizeof buf, &n) == VASP_OK && n == strlen(want) &&
         memcmp(buf, want, n) == 0;
}

TEST(lane_passes_getfd_and_closefd_and_notes_what_they_did) {
  rig r = {0};
  CHECK(rig_open(&r));
  CHECK_RC(vasp_lane_idle(r.lane, 0, 0), VASP_OK, NULL);
  int pipefd[2];
  CHECK(pipe(pipefd) == 0);
  const char *getfd = "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"migrate\"}}\n";
  CHECK(put_fd(r.lv, getfd, pipefd[1]));
  close(pipefd[1]);
  /* QEMU gets the command with the descriptor. */
  uint8_t buf[128];
  int32_t passed = -1;
  uint32_t npassed = 0;
  CHECK(vasp_recv_fds(r.qemu, buf, sizeof buf, 0, &passed, 1, &npassed) ==
        (ssize_t)strlen(getfd));
  CHECK(npassed == 1);
  close(passed);
  CHECK(notes_are(r.lane, "getfd migrate pipe\n"));
  CHECK(notes_are(r.lane, "")); /* taken */
  CHECK(put(r.qemu, "{\"return\": {}}\n"));
  CHECK(got(r.lv, "{\"return\": {}}\n"));
  const char *closefd = "{\"execute\": \"closefd\", \"arguments\": {\"fdname\": \"migrate\"}}\n";
  CHECK(put(r.lv, closefd));
  CHECK(got(r.qemu, closefd));
  CHECK(notes_are(r.lane, "closefd migrate\n"));
  CHECK(put(r.qemu, "{\"return\": {}}\n"));
  CHECK(got(r.lv, "{\"return\": {}}\n"));
  CHECK(vasp_lane_passed(r.lane) == 2);
  /* A getfd with more than its name, or without a descriptor, is the engine's. */
  const char *wide =
      "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"a\", \"fdname\": \"b\"}}\n";
  CHECK(put_fd(r.lv, wide, pipefd[0]));
  CHECK(engine_got(r.ec, wide));
  rig_close(&r);
  CHECK(rig_open(&r));
  CHECK_RC(vasp_lane_idle(r.lane, 0, 0), VASP_OK, NULL);
  CHECK(put(r.lv, getfd));
  CHECK(engine_got(r.ec, getfd));
  CHECK(notes_are(r.lane, ""));
  rig_close(&r);
  close(pipefd[0]);
}
