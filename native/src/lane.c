/* The QMP gate's fast lane: one thread per gate connection relays the bytes
 * (and SCM_RIGHTS descriptors) between libvirt, QEMU and the engine, and
 * passes an allow-listed query and its reply itself whenever the engine has
 * nothing of the connection in hand. See vasp.h and docs/hooks.md. */
#include "_internal.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The longest message, and the deepest nesting, the lane passes itself:
 * far below QEMU's limits (json-streamer.c: 64 MiB, 2^21 tokens, depth
 * 1024), so QEMU reads such a message as one value. */
#define FAST_MAX 4096u
#define FAST_DEPTH 16
/* Bytes read at once. */
#define CHUNK (64u * 1024u)
/* Bytes queued for one side before the sides that feed it are read no more. */
#define QUEUE_CAP (1u << 20)
/* The longest line from QEMU the lane holds while it waits for a reply. */
#define LINE_CAP (64u << 20)
/* The longest descriptor name the lane passes itself, and the notes it keeps at most. */
#define FDNAME_MAX 128
#define NOTES_CAP (64u * 1024u)

/* The four sockets: libvirt, QEMU, and the engine's ends of both. */
enum { CL, UP, EC, EU, NSIDES };

typedef struct chunk {
  struct chunk *next;
  size_t len, off;
  uint32_t nfds;
  int fds[VASP_SOCK_MAX_FDS];
  uint8_t data[]; /* len 0: shut the side down once the chunks ahead are sent */
} chunk;

typedef struct {
  chunk *head, *tail;
  size_t bytes;
} queue;

struct vasp_lane {
  vasp_err err; /* first: vasp_errmsg(handle) */
  atomic_int refs;
  pthread_mutex_t mu;
  uint64_t idle_client, idle_upstream; /* the engine's last report, under mu */
  bool idle_known;                     /* under mu */
  char notes[NOTES_CAP];               /* "getfd NAME KIND\n", "closefd NAME\n"; under mu */
  size_t notes_len;                    /* under mu */
  atomic_uint_fast64_t fast;
  /* Below: the lane's thread only. */
  char *names; /* "\nname\nname\n" */
  int fd[NSIDES];
  bool eof[NSIDES];  /* nothing more comes from this side */
  bool dead[NSIDES]; /* nothing more goes to this side */
  queue out[NSIDES];
  uint64_t to_engine_client, to_engine_upstream; /* bytes handed to the engine */
  bool fast_out; /* a query the lane passed awaits its reply */
  uint8_t *line; /* QEMU's bytes since that query, while it awaits its reply */
  size_t line_len, line_cap;
  uint8_t buf[CHUNK];        /* what libvirt or QEMU sent */
  uint8_t engine_buf[CHUNK]; /* what the engine sent: read while buf is in use */
};

/* ---- recognising a query the lane may pass ------------------------------ */

typedef struct {
  const uint8_t *p, *end;
  int depth;
} scan;

static void skip_ws(scan *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) {
    s->p++;
  }
}

static bool eat(scan *s, uint8_t c) {
  if (s->p >= s->end || *s->p != c) return false;
  s->p++;
  return true;
}

/* A string of printable ASCII without escapes: where QEMU's reading and plain
 * JSON's cannot differ (no \u0000, no surrogates, no invalid UTF-8). */
static bool string(scan *s, const uint8_t **at, size_t *len) {
  if (!eat(s, '"')) return false;
  const uint8_t *start = s->p;
  while (s->p < s->end && *s->p != '"') {
    if (*s->p < 0x20 || *s->p > 0x7e || *s->p == '\\') return false;
    s->p++;
  }
  if (at) *at = start, *len = (size_t)(s->p - start);
  return eat(s, '"');
}

static bool digits(scan *s) {
  const uint8_t *start = s->p;
  while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
  return s->p > start;
}

static bool number(scan *s) {
  eat(s, '-');
  if (!eat(s, '0') && !digits(s)) return false;
  if (eat(s, '.') && !digits(s)) return false;
  if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
    s->p++;
    if (!eat(s, '+')) eat(s, '-');
    if (!digits(s)) return false;
  }
  return true;
}

static bool word(scan *s, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0) return false;
  s->p += n;
  return true;
}

static bool value(scan *s);

/* An object or array, its opening bracket next. */
static bool container(scan *s) {
  uint8_t close = *s->p == '{' ? '}' : ']';
  if (++s->depth > FAST_DEPTH) return false;
  s->p++;
  skip_ws(s);
  if (!eat(s, close)) {
    for (;;) {
      if (close == '}') {
        if (!string(s, NULL, NULL)) return false;
        skip_ws(s);
        if (!eat(s, ':')) return false;
        skip_ws(s);
      }
      if (!value(s)) return false;
      skip_ws(s);
      if (eat(s, close)) break;
      if (!eat(s, ',')) return false;
      skip_ws(s);
    }
  }
  s->depth--;
  return true;
}

static bool value(scan *s) {
  if (s->p >= s->end) return false;
  switch (*s->p) {
  case '{':
  case '[':
    return container(s);
  case '"':
    return string(s, NULL, NULL);
  case 't':
    return word(s, "true");
  case 'f':
    return word(s, "false");
  case 'n':
    return word(s, "null");
  default:
    return number(s);
  }
}

static bool is_key(const uint8_t *k, size_t n, const char *name) {
  return n == strlen(name) && memcmp(k, name, n) == 0;
}

/* Arguments of exactly {"fdname": STRING}: the name into fdname. */
static bool fdname_only(scan *s, char fdname[FDNAME_MAX + 1]) {
  const uint8_t *k, *v;
  size_t n, vn;
  if (!eat(s, '{')) return false;
  skip_ws(s);
  if (!string(s, &k, &n) || !is_key(k, n, "fdname")) return false;
  skip_ws(s);
  if (!eat(s, ':')) return false;
  skip_ws(s);
  if (!string(s, &v, &vn) || vn > FDNAME_MAX) return false;
  skip_ws(s);
  if (!eat(s, '}')) return false;
  memcpy(fdname, v, vn);
  fdname[vn] = '\0';
  return true;
}

typedef enum { NOT_PASSABLE, OTHER, GETFD, CLOSEFD } fd_op;

/* Whether msg is exactly one JSON object {"execute": NAME, "arguments": {…},
 * "id": …} (arguments and id optional, no other member, none twice) in the
 * strict subset above, white space around it, NAME in names. For getfd and
 * closefd the arguments must be exactly {"fdname": STRING}, written to
 * fdname. */
static fd_op passable(const char *names, const uint8_t *msg, size_t len,
                      char fdname[FDNAME_MAX + 1]) {
  if (len > FAST_MAX) return NOT_PASSABLE;
  scan s = {msg, msg + len, 1};
  const uint8_t *name = NULL;
  size_t name_len = 0;
  bool has_args = false, has_id = false;
  const uint8_t *args = NULL;
  skip_ws(&s);
  if (!eat(&s, '{')) return NOT_PASSABLE;
  skip_ws(&s);
  do {
    const uint8_t *k;
    size_t n;
    skip_ws(&s);
    if (!string(&s, &k, &n)) return NOT_PASSABLE;
    skip_ws(&s);
    if (!eat(&s, ':')) return NOT_PASSABLE;
    skip_ws(&s);
    if (is_key(k, n, "execute") && !name) {
      if (!string(&s, &name, &name_len)) return NOT_PASSABLE;
    } else if (is_key(k, n, "arguments") && !has_args) {
      args = s.p;
      if (s.p >= s.end || *s.p != '{' || !container(&s)) return NOT_PASSABLE;
      has_args = true;
    } else if (is_key(k, n, "id") && !has_id) {
      if (!value(&s)) return NOT_PASSABLE;
      has_id = true;
    } else {
      return NOT_PASSABLE;
    }
    skip_ws(&s);
  } while (eat(&s, ','));
  if (!eat(&s, '}') || !name || name_len == 0 || name_len > 64) return NOT_PASSABLE;
  skip_ws(&s);
  if (s.p != s.end) return NOT_PASSABLE;
  fd_op op = is_key(name, name_len, "getfd")     ? GETFD
             : is_key(name, name_len, "closefd") ? CLOSEFD
                                                 : OTHER;
  if (op != OTHER) {
    scan a = {args, msg + len, 1};
    if (!args || !fdname_only(&a, fdname)) return NOT_PASSABLE;
  }
  char needle[68];
  needle[0] = '\n';
  memcpy(needle + 1, name, name_len);
  needle[name_len + 1] = '\n';
  needle[name_len + 2] = '\0';
  return strstr(names, needle) ? op : NOT_PASSABLE;
}

/* Whether a line from QEMU is a reply: a top-level "return" or "error" member
 * and no "event" or "QMP" one. QEMU writes its keys without escapes. */
static bool is_reply(const uint8_t *p, size_t n) {
  int depth = 0;
  bool in_str = false, esc = false, key_next = false, reply = false;
  const uint8_t *key = NULL;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (in_str) {
      if (esc) {
        esc = false;
      } else if (c == '\\') {
        esc = true;
      } else if (c == '"') {
        in_str = false;
        if (key) {
          size_t len = (size_t)(p + i - key);
          if (is_key(key, len, "event") || is_key(key, len, "QMP")) return false;
          if (is_key(key, len, "return") || is_key(key, len, "error")) reply = true;
          key = NULL;
        }
      }
      continue;
    }
    if (c == '"') {
      in_str = true;
      if (key_next) key = p + i + 1, key_next = false;
    } else if (c == '{' || c == '[') {
      if (++depth == 1) {
        if (c != '{') return false;
        key_next = true;
      }
    } else if (c == '}' || c == ']') {
      depth--;
    } else if (c == ',' && depth == 1) {
      key_next = true;
    }
  }
  return reply && depth == 0;
}

/* ---- queues ------------------------------------------------------------ */

static void close_fds(const int *fds, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) close(fds[i]);
}

static void drop_queue(queue *q) {
  for (chunk *c = q->head, *next; c; c = next) {
    next = c->next;
    close_fds(c->fds, c->nfds);
    free(c);
  }
  *q = (queue){0};
}

/* Queues data (and takes over fds) for side s; len 0 queues its shutdown. */
static bool enqueue(vasp_lane *l, int s, const uint8_t *data, size_t len, const int *fds,
                    uint32_t nfds) {
  if (l->dead[s]) return close_fds(fds, nfds), true;
  chunk *c = malloc(sizeof *c + len);
  if (!c) return close_fds(fds, nfds), false;
  *c = (chunk){.len = len, .nfds = nfds};
  if (len) memcpy(c->data, data, len);
  if (nfds) memcpy(c->fds, fds, nfds * sizeof *fds);
  queue *q = &l->out[s];
  if (q->tail) q->tail->next = c;
  else q->head = c;
  q->tail = c;
  q->bytes += len;
  return true;
}

/* Nothing more goes to side s: what was queued for it is dropped. */
static void kill_side(vasp_lane *l, int s) {
  l->dead[s] = true;
  drop_queue(&l->out[s]);
  shutdown(l->fd[s], SHUT_RDWR);
}

/* Sends what is queued for side s, as far as it takes it without waiting. */
static void flush(vasp_lane *l, int s) {
  queue *q = &l->out[s];
  while (q->head) {
    chunk *c = q->head;
    if (c->len == 0) {
      shutdown(l->fd[s], SHUT_WR);
    } else {
      ssize_t n = vasp_send_fds(l->fd[s], c->data + c->off, c->len - c->off, c->fds, c->nfds,
                                MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        return kill_side(l, s);
      }
      /* The descriptors went with the first byte. */
      close_fds(c->fds, c->nfds);
      c->nfds = 0;
      c->off += (size_t)n;
      q->bytes -= (size_t)n;
      if (c->off < c->len) continue;
    }
    q->head = c->next;
    if (!q->head) q->tail = NULL;
    free(c);
  }
}

/* ---- routing ----------------------------------------------------------- */

/* Hands bytes from libvirt (EC) or QEMU (EU) to the engine, counted. */
static bool to_engine(vasp_lane *l, int s, const uint8_t *data, size_t len, const int *fds,
                      uint32_t nfds) {
  if (s == EC) l->to_engine_client += len;
  else l->to_engine_upstream += len;
  return enqueue(l, s, data, len, fds, nfds);
}

static int take(vasp_lane *l, int s);

/* Whether the engine holds nothing of the connection: it has taken in every
 * byte handed to it and reported itself idle since. Then what it sent before
 * that report is moved into the queues first, ahead of what the lane adds. */
static bool engine_idle(vasp_lane *l) {
  pthread_mutex_lock(&l->mu);
  bool idle = l->idle_known && l->idle_client == l->to_engine_client &&
              l->idle_upstream == l->to_engine_upstream;
  pthread_mutex_unlock(&l->mu);
  if (!idle) return false;
  for (int s = EC; s <= EU; s++) {
    while (!l->eof[s] && take(l, s) > 0) {
    }
  }
  return true;
}

/* QEMU's bytes held since a passed query, from `from` on, go to the engine. */
static bool release_line(vasp_lane *l, size_t from) {
  bool ok = from >= l->line_len || to_engine(l, EU, l->line + from, l->line_len - from, NULL, 0);
  l->line_len = 0;
  l->fast_out = false;
  return ok;
}

const char *vasp_fd_kind(int32_t fd) {
  char path[64], link[PATH_MAX];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n <= 0) return "other";
  link[n] = '\0';
  return strncmp(link, "socket:", 7) == 0 ? "socket"
         : strncmp(link, "pipe:", 5) == 0 ? "pipe"
         : link[0] == '/'                 ? "file"
                                          : "other";
}

/* Notes for the engine what a getfd or closefd the lane passes does to QEMU's named
 * descriptors; false when there is no room (then the engine takes the command). */
static bool note_fd(vasp_lane *l, const char *fdname, const int *fds, uint32_t nfds) {
  char note[FDNAME_MAX + 32];
  int n = nfds ? snprintf(note, sizeof note, "getfd %s %s\n", fdname, vasp_fd_kind(fds[0]))
               : snprintf(note, sizeof note, "closefd %s\n", fdname);
  pthread_mutex_lock(&l->mu);
  bool room = l->notes_len + (size_t)n <= sizeof l->notes;
  if (room) {
    memcpy(l->notes + l->notes_len, note, (size_t)n);
    l->notes_len += (size_t)n;
  }
  pthread_mutex_unlock(&l->mu);
  return room;
}

static bool from_client(vasp_lane *l, const uint8_t *data, size_t len, const int *fds,
                        uint32_t nfds) {
  char fdname[FDNAME_MAX + 1];
  fd_op op = passable(l->names, data, len, fdname);
  /* getfd brings one descriptor, every other command none. */
  if (op != NOT_PASSABLE && nfds == (op == GETFD ? 1u : 0u) && engine_idle(l) &&
      (op == OTHER || note_fd(l, fdname, fds, nfds))) {
    l->fast_out = true;
    atomic_fetch_add(&l->fast, 1);
    return enqueue(l, UP, data, len, fds, nfds);
  }
  return to_engine(l, EC, data, len, fds, nfds);
}

static bool from_upstream(vasp_lane *l, const uint8_t *data, size_t len, const int *fds,
                          uint32_t nfds) {
  if (!l->fast_out) return to_engine(l, EU, data, len, fds, nfds);
  if (nfds || l->line_len + len > LINE_CAP) {
    return release_line(l, 0) && to_engine(l, EU, data, len, fds, nfds);
  }
  if (l->line_len + len > l->line_cap) {
    size_t cap = l->line_cap ? l->line_cap : 4096;
    while (cap < l->line_len + len) cap *= 2;
    uint8_t *grown = realloc(l->line, cap);
    if (!grown) return false;
    l->line = grown;
    l->line_cap = cap;
  }
  memcpy(l->line + l->line_len, data, len);
  l->line_len += len;
  size_t start = 0;
  for (uint8_t *nl; l->fast_out && (nl = memchr(l->line + start, '\n', l->line_len - start));) {
    size_t end = (size_t)(nl - l->line) + 1;
    const uint8_t *line = l->line + start;
    size_t n = end - start;
    start = end;
    if (!is_reply(line, n)) {
      /* An event: the engine reports it and sends it on. */
      if (!to_engine(l, EU, line, n, NULL, 0)) return false;
      continue;
    }
    /* The reply, straight to libvirt, unless the engine is sending an event
     * ahead of it: then it goes the engine's way too, in order. */
    bool ok = engine_idle(l) ? enqueue(l, CL, line, n, NULL, 0)
                             : to_engine(l, EU, line, n, NULL, 0);
    return release_line(l, start) && ok;
  }
  memmove(l->line, l->line + start, l->line_len - start);
  l->line_len -= start;
  return true;
}

/* The end of side s's input. */
static bool ended(vasp_lane *l, int s) {
  l->eof[s] = true;
  switch (s) {
  case CL:
    return to_engine(l, EC, NULL, 0, NULL, 0);
  case UP:
    return release_line(l, 0) && to_engine(l, EU, NULL, 0, NULL, 0);
  case EC:
    return enqueue(l, CL, NULL, 0, NULL, 0);
  default:
    return enqueue(l, UP, NULL, 0, NULL, 0);
  }
}

/* Reads what side s has, without waiting, and routes it. Returns the bytes
 * read, 0 at its end, -1 when nothing had come (or on a failure, which ends
 * the lane). */
static int take(vasp_lane *l, int s) {
  uint8_t *buf = s >= EC ? l->engine_buf : l->buf;
  int fds[VASP_SOCK_MAX_FDS];
  uint32_t nfds = 0;
  ssize_t n = vasp_recv_fds(l->fd[s], buf, CHUNK, MSG_DONTWAIT, fds, VASP_SOCK_MAX_FDS, &nfds);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -1;
  bool ok;
  if (n <= 0) {
    close_fds(fds, nfds);
    ok = ended(l, s);
    n = 0;
  } else if (s == CL) {
    ok = from_client(l, buf, (size_t)n, fds, nfds);
  } else if (s == UP) {
    ok = from_upstream(l, buf, (size_t)n, fds, nfds);
  } else {
    ok = enqueue(l, s == EC ? CL : UP, buf, (size_t)n, fds, nfds);
  }
  if (!ok) {
    /* Out of memory: the connection ends, closed. */
    for (int i = 0; i < NSIDES; i++) l->eof[i] = true, kill_side(l, i);
    return -1;
  }
  return (int)n;
}

/* Whether side s is read: not at its end, and what it feeds has room. A
 * query the lane passed holds libvirt's next message until its reply. */
static bool wants_input(const vasp_lane *l, int s) {
  if (l->eof[s]) return false;
  switch (s) {
  case CL:
    return !l->fast_out && l->out[EC].bytes < QUEUE_CAP && l->out[UP].bytes < QUEUE_CAP;
  case UP:
    return l->out[EU].bytes < QUEUE_CAP && l->out[CL].bytes < QUEUE_CAP;
  case EC:
    return l->out[CL].bytes < QUEUE_CAP;
  default:
    return l->out[UP].bytes < QUEUE_CAP;
  }
}

static void lane_unref(vasp_lane *l) {
  if (atomic_fetch_sub(&l->refs, 1) != 1) return;
  pthread_mutex_destroy(&l->mu);
  free(l->names);
  free(l);
}

static void *lane_main(void *arg) {
  vasp_lane *l = arg;
  /* Until the engine has closed both its ends and what it sent last is out. */
  while (!(l->eof[EC] && l->eof[EU] && !l->out[CL].head && !l->out[UP].head)) {
    struct pollfd p[NSIDES];
    for (int s = 0; s < NSIDES; s++) {
      short events = (short)((wants_input(l, s) ? POLLIN : 0) | (l->out[s].head ? POLLOUT : 0));
      p[s] = (struct pollfd){.fd = events ? l->fd[s] : -1, .events = events};
    }
    int rc;
    do rc = poll(p, NSIDES, -1);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) break;
    /* The engine's ends first: what it sent goes ahead of what arrives now. */
    static const int order[NSIDES] = {EC, EU, UP, CL};
    for (int i = 0; i < NSIDES; i++) {
      int s = order[i];
      if ((p[s].revents & (POLLIN | POLLHUP | POLLERR)) && wants_input(l, s)) take(l, s);
    }
    for (int s = 0; s < NSIDES; s++) {
      if (l->out[s].head) flush(l, s);
    }
  }
  for (int s = 0; s < NSIDES; s++) {
    drop_queue(&l->out[s]);
    close(l->fd[s]);
  }
  free(l->line);
  lane_unref(l);
  return NULL;
}

int vasp_lane_open(vasp_sock *client, vasp_sock *upstream, const char *names, vasp_lane **out,
                   vasp_sock **out_client, vasp_sock **out_upstream) {
  if (!out || !out_client || !out_upstream) return vasp_fail(NULL, VASP_E_ARG, "out is NULL");
  *out = NULL;
  *out_client = *out_upstream = NULL;
  if (!client || !upstream || !names) {
    return vasp_fail(NULL, VASP_E_ARG, "a lane needs both sockets and the passable commands");
  }
  vasp_lane *l = calloc(1, sizeof *l);
  size_t n = strlen(names);
  char *list = malloc(n + 3);
  if (!l || !list) {
    free(l);
    free(list);
    return vasp_fail(NULL, VASP_E_NOMEM, "cannot allocate a lane");
  }
  list[0] = '\n';
  memcpy(list + 1, names, n);
  memcpy(list + 1 + n, "\n", 2);
  l->names = list;
  atomic_init(&l->refs, 2);
  atomic_init(&l->fast, 0);
  pthread_mutex_init(&l->mu, NULL);
  int pc[2] = {-1, -1}, pu[2] = {-1, -1};
  vasp_sock *ec = NULL, *eu = NULL;
  int rc = VASP_OK;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pc) != 0 ||
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pu) != 0) {
    rc = vasp_fail(NULL, VASP_E_IO, "cannot create the lane's sockets: %s", strerror(errno));
  } else if ((rc = vasp_sock_wrap(pc[1], &ec)) == VASP_OK) {
    pc[1] = -1;
    if ((rc = vasp_sock_wrap(pu[1], &eu)) == VASP_OK) pu[1] = -1;
  }
  pthread_t thread;
  pthread_attr_t attr;
  if (rc == VASP_OK) {
    l->fd[CL] = vasp_sock_fd(client);
    l->fd[UP] = vasp_sock_fd(upstream);
    l->fd[EC] = pc[0];
    l->fd[EU] = pu[0];
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&thread, &attr, lane_main, l);
    pthread_attr_destroy(&attr);
    if (e != 0) rc = vasp_fail(NULL, VASP_E_IO, "cannot start the lane: %s", strerror(e));
  }
  if (rc != VASP_OK) {
    for (int i = 0; i < 2; i++) {
      if (pc[i] >= 0) close(pc[i]);
      if (pu[i] >= 0) close(pu[i]);
    }
    vasp_sock_close(ec);
    vasp_sock_close(eu);
    pthread_mutex_destroy(&l->mu);
    free(l->names);
    free(l);
    return rc;
  }
  /* The lane's thread owns libvirt's and QEMU's descriptors now. */
  vasp_sock_forget(client);
  vasp_sock_forget(upstream);
  *out = l;
  *out_client = ec;
  *out_upstream = eu;
  return VASP_OK;
}

int vasp_lane_idle(vasp_lane *l, uint64_t client_bytes, uint64_t upstream_bytes) {
  if (!l) return vasp_fail(NULL, VASP_E_ARG, "lane is NULL");
  pthread_mutex_lock(&l->mu);
  l->idle_client = client_bytes;
  l->idle_upstream = upstream_bytes;
  l->idle_known = true;
  pthread_mutex_unlock(&l->mu);
  return VASP_OK;
}

int vasp_lane_notes(vasp_lane *l, char *buf, size_t cap, size_t *out_len) {
  if (!l || !buf || !out_len) return vasp_fail(NULL, VASP_E_ARG, "notes need a lane and a buffer");
  pthread_mutex_lock(&l->mu);
  size_t n = l->notes_len;
  if (n <= cap) {
    memcpy(buf, l->notes, n);
    l->notes_len = 0;
  }
  pthread_mutex_unlock(&l->mu);
  if (n > cap) return vasp_fail(NULL, VASP_E_ARG, "notes need %zu bytes of room", n);
  *out_len = n;
  return VASP_OK;
}

uint64_t vasp_lane_passed(vasp_lane *l) {
  return l ? atomic_load(&l->fast) : 0;
}

void vasp_lane_free(vasp_lane *l) {
  if (l) lane_unref(l);
}
