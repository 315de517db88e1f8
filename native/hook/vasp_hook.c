/* vASP hook for libvirt's QEMU driver: installed as /etc/libvirt/hooks/qemu.d/vasp (mode 0755)
 * by tools/install.sh. See deploy/libvirt/README.md and docs/hooks.md.
 *
 * libvirt runs it as `vasp <domain> <operation> <sub-operation> <extra>` with the domain XML on
 * stdin. For the operations libvirt lets a hook veto (prepare/start, restore, incoming migrate)
 * it asks the vASP decision server and exits non-zero on a deny, and also when no valid answer
 * comes in time (fail closed); libvirt then refuses the operation and shows what this hook
 * printed on stderr. Every other operation is reported and never fails: a failing `started`
 * aborts a start that was allowed, a failing `reconnect` makes libvirtd kill a running VM when
 * it restarts. Nothing goes to stdout: for migrate and restore libvirt would take it as a new
 * domain XML.
 *
 * A compiled program, not a script: libvirt runs it three times a start, and a shell script
 * with curl cost about 20 ms of process start-ups a call (docs/hooks.md). It needs only libc. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* tools/install.sh recognises an installed vASP hook by this text. */
__attribute__((used)) static const char MARK[] = "vASP hook for libvirt";

/* How long a note that a restore or incoming migration was allowed stays valid. */
#define INCOMING_TTL 60

/* ---- growable strings ---------------------------------------------------- */

typedef struct {
  char *p;
  size_t len, cap;
} str;

static void die_nomem(void) {
  fputs("vasp: out of memory\n", stderr);
  exit(1);
}

static void put_n(str *s, const char *p, size_t n) {
  if (s->len + n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 256;
    while (cap < s->len + n + 1) cap *= 2;
    char *grown = realloc(s->p, cap);
    if (!grown) die_nomem();
    s->p = grown;
    s->cap = cap;
  }
  memcpy(s->p + s->len, p, n);
  s->len += n;
  s->p[s->len] = '\0';
}

static void put(str *s, const char *p) {
  put_n(s, p, strlen(p));
}

__attribute__((format(printf, 2, 3))) static void putf(str *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) die_nomem();
  char *buf = malloc((size_t)n + 1);
  if (!buf) die_nomem();
  va_start(ap, fmt);
  vsnprintf(buf, (size_t)n + 1, fmt, ap);
  va_end(ap);
  put_n(s, buf, (size_t)n);
  free(buf);
}

/* A JSON string's content: quotes, backslashes and control characters escaped. */
static void put_json(str *s, const char *v) {
  for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
    if (*c == '"' || *c == '\\') putf(s, "\\%c", *c);
    else if (*c == '\n') put(s, "\\n");
    else if (*c < 0x20) putf(s, "\\u%04x", *c);
    else put_n(s, (const char *)c, 1);
  }
}

static void put_base64(str *s, const unsigned char *in, size_t n) {
  static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                 (i + 2 < n ? in[i + 2] : 0);
    char out[4] = {A[v >> 18 & 63], A[v >> 12 & 63], i + 1 < n ? A[v >> 6 & 63] : '=',
                   i + 2 < n ? A[v & 63] : '='};
    put_n(s, out, 4);
  }
}

/* ---- settings and the call ----------------------------------------------- */

static struct {
  const char *socket, *break_glass, *pending, *run_dir;
  double timeout; /* seconds */
} cfg;

static const char *domain, *op, *sub, *extra;
static const char *operation, *phase;
static bool blocking;
static char uuid[64];
static str xml_b64;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("vasp: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* A decision refused: the reason on stderr for libvirt, exit 1. A report never fails. */
__attribute__((format(printf, 1, 2), noreturn)) static void deny(const char *fmt, ...) {
  if (!blocking) exit(0);
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "vasp: %s of domain \"%s\" denied: ", operation, domain);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

/* Environment first, then /etc/vasp/hook.conf (key=value lines), then defaults. */
static void configure(void) {
  static char c_socket[4096], c_timeout[64], c_break_glass[4096], c_pending[4096],
      c_run_dir[4096];
  struct {
    const char *key;
    char *value;
    size_t size;
  } keys[] = {{"socket", c_socket, sizeof c_socket},
              {"timeout", c_timeout, sizeof c_timeout},
              {"break_glass", c_break_glass, sizeof c_break_glass},
              {"pending", c_pending, sizeof c_pending},
              {"run_dir", c_run_dir, sizeof c_run_dir}};
  const char *conf = env("VASP_HOOK_CONF");
  FILE *f = fopen(conf ? conf : "/etc/vasp/hook.conf", "re");
  char line[4200];
  while (f && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    char *eq = strchr(line, '=');
    if (!eq) continue;
    *eq = '\0';
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
      if (strcmp(line, keys[i].key) == 0) snprintf(keys[i].value, keys[i].size, "%s", eq + 1);
    }
  }
  if (f) fclose(f);
  static char default_socket[4200];
  const char *state = env("VASP_STATE_DIR");
  snprintf(default_socket, sizeof default_socket, "%s/hook.sock", state ? state : "/var/lib/vasp");
#define SETTING(env_name, file_value, fallback) \
  (env(env_name) ? env(env_name) : *(file_value) ? (file_value) : (fallback))
  cfg.socket = SETTING("VASP_SOCKET", c_socket, default_socket);
  cfg.break_glass = SETTING("VASP_BREAK_GLASS", c_break_glass, "/etc/vasp/break-glass");
  cfg.pending = SETTING("VASP_HOOK_PENDING", c_pending, "/var/lib/vasp/hook-pending.jsonl");
  cfg.run_dir = SETTING("VASP_HOOK_RUN_DIR", c_run_dir, "/run/vasp-hook");
  const char *timeout = SETTING("VASP_HOOK_TIMEOUT", c_timeout, "5");
#undef SETTING
  char *end;
  cfg.timeout = strtod(timeout, &end);
  if (*end || !(cfg.timeout > 0)) cfg.timeout = 5;
}

/* ---- the domain XML ------------------------------------------------------ */

static void replace_all(char *s, const char *from, const char *to) {
  size_t nf = strlen(from), nt = strlen(to); /* nt <= nf */
  char *w = s;
  for (const char *r = s; *r;) {
    if (strncmp(r, from, nf) == 0) {
      memcpy(w, to, nt);
      w += nt;
      r += nf;
    } else {
      *w++ = *r++;
    }
  }
  *w = '\0';
}

/* The text of the first <tag>…</tag> on one line with no '<' inside (libvirt writes <name>
 * and <uuid> before any other child of <domain>), into out; false when there is none. */
static bool element(const char *xml, size_t len, const char *tag, char *out, size_t size) {
  char open[16], close[16];
  snprintf(open, sizeof open, "<%s>", tag);
  snprintf(close, sizeof close, "</%s>", tag);
  size_t no = strlen(open);
  for (const char *p = xml; (p = memmem(p, len - (size_t)(p - xml), open, no));) {
    const char *text = p + no, *end = text;
    while (end < xml + len && *end != '<' && *end != '\n') end++;
    if (end < xml + len && strncmp(end, close, strlen(close)) == 0) {
      snprintf(out, size, "%.*s", (int)(end - text), text);
      return true;
    }
    p = text;
  }
  *out = '\0';
  return false;
}

/* Whether s has the shape: 'x' a hex digit, '#' a digit, '1' '2' '3' '5' a digit up to that
 * one, anything else itself. */
static bool shaped(const char *s, const char *shape) {
  if (strlen(s) != strlen(shape)) return false;
  for (size_t i = 0; shape[i]; i++) {
    char c = s[i], want = shape[i];
    bool digit = c >= '0' && c <= '9';
    bool ok = want == 'x'   ? digit || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
              : want == '#' ? digit
              : strchr("1235", want) ? digit && c <= want
                                     : c == want;
    if (!ok) return false;
  }
  return true;
}

/* Reads the XML from stdin (kept byte for byte, a missing final newline added), checks that
 * it names this domain with a valid UUID, and keeps its base64. */
static void read_domain(void) {
  str xml = {0};
  char buf[65536];
  for (ssize_t n; (n = read(0, buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      deny("cannot read the domain XML: %s", strerror(errno));
    }
    put_n(&xml, buf, (size_t)n);
  }
  if (xml.len == 0 || xml.p[xml.len - 1] != '\n') put(&xml, "\n");
  put_base64(&xml_b64, (const unsigned char *)xml.p, xml.len);
  static char name[4096];
  element(xml.p, xml.len, "uuid", uuid, sizeof uuid);
  element(xml.p, xml.len, "name", name, sizeof name);
  /* XML escapes undone, &amp; last. */
  static const char *const escapes[][2] = {{"&lt;", "<"},   {"&gt;", ">"}, {"&quot;", "\""},
                                           {"&apos;", "'"}, {"&#13;", "\r"}, {"&amp;", "&"}};
  for (size_t i = 0; i < sizeof escapes / sizeof *escapes; i++) {
    replace_all(name, escapes[i][0], escapes[i][1]);
  }
  free(xml.p);
  if (!shaped(uuid, "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")) {
    deny("the domain XML has no valid <uuid> (\"%s\")", uuid);
  }
  if (strcmp(name, domain) != 0) deny("the domain XML names \"%s\", not \"%s\"", name, domain);
}

/* ---- HTTP over the server's Unix socket ----------------------------------- */

typedef struct {
  int status;     /* the HTTP status; 0 when no answer came */
  bool connected; /* a server took the connection */
  str body;
  char error[256]; /* why there is no usable answer */
} answer;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits for fd to be ready for events until the deadline; false on a timeout. */
static bool wait_for(int fd, short events, double deadline) {
  for (;;) {
    double left = deadline - now_s();
    if (left <= 0) return false;
    struct pollfd p = {.fd = fd, .events = events};
    int rc = poll(&p, 1, (int)(left * 1000) + 1);
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return true; /* the call that follows says what is wrong */
  }
}

/* The body of a chunked answer, decoded in place; false when malformed. */
static bool dechunk(str *b) {
  size_t r = 0, w = 0;
  for (;;) {
    char *end;
    unsigned long n = strtoul(b->p + r, &end, 16);
    char *eol = strstr(b->p + r, "\r\n");
    if (end == b->p + r || !eol) return false;
    r = (size_t)(eol - b->p) + 2;
    if (n == 0) break;
    if (n > b->len - r) return false;
    memmove(b->p + w, b->p + r, n);
    w += n;
    r += n + 2;
    if (r > b->len) return false;
  }
  b->len = w;
  b->p[w] = '\0';
  return true;
}

/* POSTs body to route and reads the whole answer (Connection: close). */
static void post(const char *route, const str *body, answer *a) {
  *a = (answer){0};
  double deadline = now_s() + cfg.timeout;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(cfg.socket) >= sizeof addr.sun_path) {
    snprintf(a->error, sizeof a->error, "socket path too long");
    return;
  }
  strcpy(addr.sun_path, cfg.socket);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  /* A full backlog (EAGAIN: a Unix socket does not connect in the background) is a server
   * that is there but slow to accept: tried again until the deadline. */
  int rc;
  while (fd >= 0 && (rc = connect(fd, (struct sockaddr *)&addr, sizeof addr)) != 0 &&
         (errno == EAGAIN || errno == EINTR)) {
    if (now_s() >= deadline) {
      snprintf(a->error, sizeof a->error, "timed out after %g s connecting", cfg.timeout);
      close(fd);
      return;
    }
    poll(NULL, 0, 1);
  }
  if (fd < 0 || rc != 0) {
    snprintf(a->error, sizeof a->error, "cannot connect: %s", strerror(errno));
    if (fd >= 0) close(fd);
    return;
  }
  str req = {0};
  putf(&req,
       "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
       "Content-Length: %zu\r\nConnection: close\r\n\r\n",
       route, body->len);
  put_n(&req, body->p, body->len);
  /* A server may answer (413) and close before it has read all: then the answer is read. */
  for (size_t at = 0; at < req.len;) {
    ssize_t n = send(fd, req.p + at, req.len - at, MSG_NOSIGNAL);
    if (n > 0) {
      at += (size_t)n;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_for(fd, POLLOUT, deadline)) {
        snprintf(a->error, sizeof a->error, "timed out after %g s sending", cfg.timeout);
        free(req.p);
        close(fd);
        return;
      }
    } else if (n < 0 && errno != EINTR) {
      break;
    }
  }
  free(req.p);
  a->connected = true;
  str in = {0};
  char buf[16384];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      put_n(&in, buf, (size_t)n);
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait_for(fd, POLLIN, deadline)) {
        snprintf(a->error, sizeof a->error, "timed out after %g s waiting for the answer",
                 cfg.timeout);
        if (in.len == 0) a->connected = false; /* no answer at all, as a slow connect */
        free(in.p);
        close(fd);
        return;
      }
    } else if (errno != EINTR) {
      if (in.len == 0) {
        snprintf(a->error, sizeof a->error, "connection lost: %s", strerror(errno));
        close(fd);
        return;
      }
      break;
    }
  }
  close(fd);
  char *head_end = in.p ? strstr(in.p, "\r\n\r\n") : NULL;
  int status = 0;
  if (!head_end || sscanf(in.p, "HTTP/1.%*d %d", &status) != 1) {
    snprintf(a->error, sizeof a->error, in.len ? "malformed answer" : "empty answer");
    free(in.p);
    return;
  }
  *head_end = '\0';
  bool chunked = false;
  for (char *h = strstr(in.p, "\r\n"); h; h = strstr(h + 2, "\r\n")) {
    char *line_end = strstr(h + 2, "\r\n");
    if (line_end) *line_end = '\0'; /* this header line alone */
    if (strncasecmp(h + 2, "transfer-encoding:", 18) == 0 && strstr(h + 20, "chunked")) {
      chunked = true;
    }
    if (line_end) *line_end = '\r';
  }
  put_n(&a->body, head_end + 4, in.len - (size_t)(head_end + 4 - in.p));
  free(in.p);
  if (chunked && !dechunk(&a->body)) {
    snprintf(a->error, sizeof a->error, "malformed chunked answer");
    return;
  }
  a->status = status;
}

/* ---- reports that could not be sent ------------------------------------- */

static void keep_pending(const str *line) {
  int fd = open(cfg.pending, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && write(fd, line->p, line->len) == (ssize_t)line->len &&
            write(fd, "\n", 1) == 1;
  if (fd >= 0) close(fd);
  if (!ok) say("cannot write %s", cfg.pending);
}

/* Sends the reports that could not be sent before (break-glass uses, undelivered events). */
static void flush_pending(void) {
  struct stat st;
  if (stat(cfg.pending, &st) != 0 || st.st_size == 0) return;
  char sending[4200];
  snprintf(sending, sizeof sending, "%s.%ld", cfg.pending, (long)getpid());
  if (rename(cfg.pending, sending) != 0) return;
  FILE *f = fopen(sending, "re");
  if (!f) return;
  char *line = NULL;
  size_t cap = 0;
  for (ssize_t n; (n = getline(&line, &cap, f)) > 0;) {
    str item = {0};
    put_n(&item, line, (size_t)n - (line[n - 1] == '\n'));
    if (item.len) {
      answer a;
      post("/v1/events", &item, &a);
      if (a.status != 200) keep_pending(&item);
      free(a.body.p);
    }
    free(item.p);
  }
  free(line);
  fclose(f);
  unlink(sending);
}

/* ---- the request --------------------------------------------------------- */

/* {"operation":…,"vm":…,"source":…,"phase":…,"details":{… extra}, without the final '}'. */
static void request(str *s, const char *source, const char *details_extra) {
  putf(s, "{\"operation\":\"%s\",\"vm\":{\"uuid\":\"%s\",\"name\":\"", operation, uuid);
  put_json(s, domain);
  putf(s, "\"},\"source\":\"%s\",\"phase\":\"%s\",\"details\":{\"libvirt\":{\"operation\":\"",
       source, phase);
  put_json(s, op);
  put(s, "\",\"sub_operation\":\"");
  put_json(s, sub);
  put(s, "\",\"extra\":\"");
  put_json(s, extra);
  put(s, "\"},\"domain_xml_b64\":\"");
  put_n(s, xml_b64.p, xml_b64.len);
  putf(s, "\"%s}", details_extra);
}

/* libvirt restores a VM (and takes in a migrating one) as restore (migrate) → prepare → start
 * → started. The restore or migrate call is the decision; an allowed one leaves a note, valid
 * for a minute, by which the prepare and start that follow are not asked again (they are not
 * a boot: no vBoot, and the VM's recorded state is `saved`, from which nothing starts), and
 * started is reported as the end of the restore (migration). stopped or release drops it. */
static char note_path[4200];

/* The operation of a fresh note, or NULL. */
static const char *incoming_op(void) {
  FILE *f = fopen(note_path, "re");
  if (!f) return NULL;
  long long at = 0;
  char what[32] = "";
  int got = fscanf(f, "%lld %31s", &at, what);
  fclose(f);
  if (got != 2) return NULL;
  long long now = (long long)time(NULL);
  if (now - at > INCOMING_TTL || at - now > 5) return NULL;
  if (strcmp(what, "restore") == 0) return "restore";
  if (strcmp(what, "migrate-in") == 0) return "migrate-in";
  return NULL;
}

/* mkdir -p */
static bool make_dirs(const char *path) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s", path);
  for (char *slash = dir + 1; (slash = strchr(slash, '/')); slash++) {
    *slash = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) return false;
    *slash = '/';
  }
  return mkdir(dir, 0700) == 0 || errno == EEXIST;
}

static void leave_note(void) {
  FILE *f = NULL;
  if (make_dirs(cfg.run_dir) && (f = fopen(note_path, "we"))) {
    fprintf(f, "%lld %s\n", (long long)time(NULL), operation);
    if (fclose(f) == 0) return;
  }
  say("cannot write %s: the prepare and start of this %s will be asked again", note_path,
      operation);
}

/* ---- the answer to a decision ------------------------------------------- */

/* A JSON string's content from p (after its opening quote): \" \\ \/ undone, \n as a space,
 * other escapes kept as written; NULL when it does not end. */
static char *json_text(const char *p) {
  str out = {0};
  put(&out, "");
  for (; *p && *p != '"'; p++) {
    if (*p != '\\') {
      put_n(&out, p, 1);
      continue;
    }
    switch (*++p) {
    case '\0':
      return free(out.p), NULL;
    case 'n':
      put(&out, " ");
      break;
    case '"':
    case '\\':
    case '/':
      put_n(&out, p, 1);
      break;
    default:
      put_n(&out, p - 1, 2);
    }
  }
  if (*p != '"') return free(out.p), NULL;
  return out.p;
}

/* After "key" and blanks and a colon and blanks: where the value starts, or NULL. */
static const char *member(const char *p, const char *key) {
  size_t n = strlen(key);
  if (strncmp(p, key, n) != 0) return NULL;
  p += n;
  p += strspn(p, " \t");
  if (*p != ':') return NULL;
  p++;
  return p + strspn(p, " \t");
}

typedef enum { ALLOW, DENY, NONE } verdict;

/* Reads a 200 answer: exactly one "allow" member, a "decision_id", and the reasons'
 * "message"s; anything else is malformed (*why says so). */
static verdict judge(const answer *a, char **id, str *reasons, str *why) {
  const char *body = a->body.p ? a->body.p : "";
  if (a->status != 200) {
    putf(why, "status %d: %.300s", a->status, body);
    return NONE;
  }
  int count = 0;
  bool allow = false;
  *id = NULL;
  for (const char *p = body; (p = strchr(p, '"')); p++) {
    const char *v;
    if ((v = member(p, "\"allow\""))) {
      if (strncmp(v, "true", 4) == 0) count++, allow = true;
      else if (strncmp(v, "false", 5) == 0) count++, allow = false;
    } else if (!*id && (v = member(p, "\"decision_id\"")) && *v == '"') {
      *id = json_text(v + 1);
      if (*id && (!**id || strpbrk(*id, "\"\\"))) free(*id), *id = NULL;
    } else if ((v = member(p, "\"message\"")) && *v == '"') {
      char *m = json_text(v + 1);
      if (m) putf(reasons, "  - %s\n", m), free(m);
    }
  }
  if (count != 1 || !*id) {
    putf(why, "malformed answer: %.300s", body);
    return NONE;
  }
  return allow ? ALLOW : DENY;
}

/* ---- break-glass --------------------------------------------------------- */

static void mode_string(mode_t m, char out[11]) {
  out[0] = S_ISREG(m) ? '-' : S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : S_ISFIFO(m) ? 'p' : '?';
  static const char rwx[] = "rwxrwxrwx";
  for (int i = 0; i < 9; i++) out[1 + i] = (m & (0400 >> i)) ? rwx[i] : '-';
  out[10] = '\0';
}

/* No decision from an engine that is not there: fail closed unless an entry for this VM that
 * has not yet expired is in the break-glass file, a regular file owned by root, not writable
 * by its group or others (a file anyone else could write would let them start any VM while
 * the engine is down). */
static void break_glass(const char *why) {
  struct stat st;
  if (lstat(cfg.break_glass, &st) == 0) {
    char mode[11];
    mode_string(st.st_mode, mode);
    if (!S_ISREG(st.st_mode)) {
      deny("no decision (%s); break-glass file %s is not a regular file (%s), not used; failing "
           "closed", why, cfg.break_glass, mode);
    }
    if (st.st_uid != 0) {
      deny("no decision (%s); break-glass file %s is owned by uid %u, not root, not used; "
           "failing closed", why, cfg.break_glass, (unsigned)st.st_uid);
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
      deny("no decision (%s); break-glass file %s is writable by group or others (%s), not "
           "used; failing closed", why, cfg.break_glass, mode);
    }
  }
  FILE *f = fopen(cfg.break_glass, "re");
  if (!f) deny("no decision (%s); failing closed", why);
  char now[32];
  time_t t = time(NULL);
  strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
  char line[4200], who[4200], until[64], entry[4300] = "";
  while (fgets(line, sizeof line, f)) {
    /* Blank lines and comments skipped; `NAME|UUID|* UNTIL`, UNTIL in UTC, still to come. */
    if (sscanf(line, "%4199s %63s", who, until) != 2 || who[0] == '#') continue;
    if (!shaped(until, "####-1#-3#T2#:5#:5#Z")) continue;
    if ((strcmp(who, domain) == 0 || strcmp(who, uuid) == 0 || strcmp(who, "*") == 0) &&
        strcmp(until, now) > 0) {
      snprintf(entry, sizeof entry, "%s %s", who, until);
      break;
    }
  }
  fclose(f);
  if (!*entry) deny("no decision (%s); failing closed", why);
  say("no decision (%s); let through by break-glass entry \"%s\" in %s", why, entry,
      cfg.break_glass);
  str extra_members = {0}, body = {0};
  put(&extra_members, ",\"break_glass\":{\"entry\":\"");
  put_json(&extra_members, entry);
  put(&extra_members, "\",\"file\":\"");
  put_json(&extra_members, cfg.break_glass);
  putf(&extra_members, "\",\"at\":\"%s\",\"no_decision\":\"", now);
  put_json(&extra_members, why);
  put(&extra_members, "\"}");
  request(&body, "break-glass", extra_members.p);
  put(&body, ",\"outcome\":\"completed\"}");
  keep_pending(&body);
  exit(0);
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv) {
  umask(077);
  domain = argc > 1 ? argv[1] : "";
  op = argc > 2 ? argv[2] : "";
  sub = argc > 3 ? argv[3] : "";
  extra = argc > 4 ? argv[4] : "";
  if (!strcmp(op, "prepare") || !strcmp(op, "start")) {
    blocking = true, operation = "start", phase = op;
  } else if (!strcmp(op, "restore")) {
    blocking = true, operation = "restore", phase = "begin";
  } else if (!strcmp(op, "migrate")) {
    blocking = true, operation = "migrate-in", phase = "begin";
  } else if (!strcmp(op, "started") || !strcmp(op, "reconnect") || !strcmp(op, "attach")) {
    operation = "start", phase = op;
  } else if (!strcmp(op, "stopped") || !strcmp(op, "release")) {
    operation = "shutdown", phase = op;
  } else {
    return 0; /* an operation vASP has no life-cycle step for */
  }
  configure();
  read_domain();

  snprintf(note_path, sizeof note_path, "%s/%s.incoming", cfg.run_dir, uuid);
  if (!strcmp(op, "prepare") || !strcmp(op, "start")) {
    if (incoming_op()) return 0;
  } else if (!strcmp(op, "started")) {
    const char *what = incoming_op();
    if (what) operation = what;
    unlink(note_path);
  } else if (!strcmp(op, "stopped") || !strcmp(op, "release")) {
    unlink(note_path);
  }

  str body = {0};
  request(&body, "libvirt-hook", "");
  answer a;
  if (!blocking) {
    put(&body, ",\"outcome\":\"completed\"}");
    post("/v1/events", &body, &a);
    if (a.status == 200) {
      flush_pending();
    } else {
      if (a.status) say("could not report %s of \"%s\" (status %d); kept in %s", op, domain,
                        a.status, cfg.pending);
      else say("could not report %s of \"%s\" (%s); kept in %s", op, domain, a.error,
               cfg.pending);
      keep_pending(&body);
    }
    return 0;
  }

  /* A decision. Only a connection that could not be made, or no answer in time, is "no
   * server", where break-glass may apply. Anything else — any HTTP status (a 413 for a large
   * body, any 4xx, a 5xx), a malformed answer, a connection the server cut — came from a
   * running engine and is a denial that break-glass never overrides. */
  put(&body, "}");
  post("/v1/decide", &body, &a);
  char *id = NULL;
  str reasons = {0}, why = {0};
  verdict v = NONE;
  if (a.status) v = judge(&a, &id, &reasons, &why);
  else if (a.connected) putf(&why, "no usable answer from %s: %s", cfg.socket, a.error);
  else putf(&why, "no answer from %s: %s", cfg.socket, a.error);
  if (v == ALLOW) {
    if (!strcmp(operation, "restore") || !strcmp(operation, "migrate-in")) leave_note();
    flush_pending();
    return 0;
  }
  if (v == DENY) {
    flush_pending();
    say("%s (%s) of domain \"%s\" denied by policy (decision %s):", operation, phase, domain,
        id);
    fputs(reasons.len ? reasons.p : "  - (no reason given)\n", stderr);
    return 1;
  }
  if (a.connected) {
    deny("no decision (%s); the engine answered, so break-glass does not apply; failing closed",
         why.p);
  }
  break_glass(why.p);
}
