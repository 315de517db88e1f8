/* The ASP's persisted state: reopen, counters, refusal of bad state files,
 * the host secret and the directory lock. */
#include "_asp_fixture.h"

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The three certificates of an ASP, DER. */
typedef struct certs {
  uint8_t *der[3];
  size_t len[3];
} certs;

static bool get_certs(vasp_asp *a, certs *c) {
  memset(c, 0, sizeof *c);
  for (uint32_t k = 0; k < 3; k++)
    if (vasp_asp_cert(a, k, &c->der[k], &c->len[k]) != VASP_OK) return false;
  return true;
}

static bool same_certs(const certs *a, const certs *b) {
  for (int k = 0; k < 3; k++)
    if (a->len[k] != b->len[k] || memcmp(a->der[k], b->der[k], a->len[k]) != 0) return false;
  return true;
}

static void free_certs(certs *c) {
  for (int k = 0; k < 3; k++) vasp_free(c->der[k]);
}

TEST(asp_state_survives_close_and_reopen_with_registers_back_at_zero) {
  const char *dir = test_tmpdir();
  vasp_asp *a = fx_open(dir);
  CHECK(a);
  uint64_t v = 0;
  certs before, after;
  bool got = get_certs(a, &before);
  int ext = vasp_asp_extend(a, 3, (const uint8_t *)"x", 1, "x");
  int inc1 = vasp_asp_counter_increment(a, "boot", &v);
  int inc2 = vasp_asp_counter_increment(a, "boot", &v);
  vasp_asp_close(a);

  vasp_asp *b = fx_open(dir);
  bool got_after = b && get_certs(b, &after);
  uint8_t reg[32] = {1}, zero[32] = {0};
  int read = b ? vasp_asp_read(b, VASP_ALG_SHA256, 3, reg) : -1;
  uint64_t kept = 0;
  int counter = b ? vasp_asp_counter_read(b, "boot", &kept) : -1;
  vasp_asp_close(b);
  bool same = got && got_after && same_certs(&before, &after);
  free_certs(&before);
  if (got_after) free_certs(&after);
  CHECK(ext == VASP_OK && inc1 == VASP_OK && inc2 == VASP_OK && v == 2);
  CHECK(same);
  CHECK(read == VASP_OK && memcmp(reg, zero, 32) == 0);
  CHECK(counter == VASP_OK && kept == 2);
}

TEST(asp_writes_its_manufacturer_ca_to_a_public_pem_file) {
  const char *dir = test_tmpdir();
  vasp_asp *a = fx_open(dir);
  CHECK(a);
  X509 *ca = fx_asp_cert(a, VASP_CERT_CA);
  vasp_asp_close(a);
  CHECK(ca);
  FILE *f = fopen(fx_path(dir, "manufacturer-ca.pem"), "r");
  X509 *pem = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
  if (f) fclose(f);
  bool same = pem && X509_cmp(ca, pem) == 0;
  X509_free(pem);
  X509_free(ca);
  CHECK(same);
}

TEST(asp_counters_never_go_back_across_reopen) {
  const char *dir = test_tmpdir();
  uint64_t last = 0;
  for (int boot = 0; boot < 3; boot++) {
    vasp_asp *a = fx_open(dir);
    CHECK(a);
    uint64_t v = 0;
    int rc = vasp_asp_counter_increment(a, "tenant-1:epoch", &v);
    vasp_asp_close(a);
    CHECK(rc == VASP_OK && v == last + 1);
    last = v;
  }
  CHECK(last == 3);
}

TEST(asp_counter_read_of_a_missing_counter_is_not_found_and_bad_names_are_refused) {
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  uint64_t v = 7;
  int missing = vasp_asp_counter_read(a, "nope", &v);
  bool named = strstr(vasp_errmsg(a), "\"nope\"") != NULL;
  int spaced = vasp_asp_counter_increment(a, "has space", &v);
  bool bad_named = strstr(vasp_errmsg(a), "has space") != NULL;
  char long_name[66];
  memset(long_name, 'a', 65);
  long_name[65] = '\0';
  int too_long = vasp_asp_counter_increment(a, long_name, &v);
  int empty = vasp_asp_counter_increment(a, "", &v);
  int null_name = vasp_asp_counter_increment(a, NULL, &v);
  int null_value = vasp_asp_counter_increment(a, "ok", NULL);
  vasp_asp_close(a);
  CHECK(missing == VASP_E_NOT_FOUND && named && v == 7);
  CHECK(spaced == VASP_E_ARG && bad_named);
  CHECK(too_long == VASP_E_ARG && empty == VASP_E_ARG && null_name == VASP_E_ARG);
  CHECK(null_value == VASP_E_ARG);
}

TEST(asp_counter_increment_that_cannot_be_persisted_leaves_the_value_unchanged) {
  const char *dir = test_tmpdir();
  vasp_asp *a = fx_open(dir);
  CHECK(a);
  uint64_t v = 0;
  CHECK_RC(vasp_asp_counter_increment(a, "c", &v), VASP_OK, a);
  /* A non-empty directory where the state file was makes the rename fail,
   * also for root. */
  const char *state = fx_path(dir, "asp.state");
  char moved[512];
  snprintf(moved, sizeof moved, "%s.moved", state);
  bool blocked = rename(state, moved) == 0 && mkdir(state, 0700) == 0 &&
                 fx_write(fx_path(state, "x"), "x", 1, 0600);
  int inc = vasp_asp_counter_increment(a, "c", &v);
  int created = vasp_asp_counter_increment(a, "new", &v);
  uint64_t after = 0;
  int read = vasp_asp_counter_read(a, "c", &after);
  int read_new = vasp_asp_counter_read(a, "new", &after);
  unlink(fx_path(state, "x"));
  rmdir(state);
  rename(moved, state);
  uint64_t read_c = 0;
  int read_again = vasp_asp_counter_read(a, "c", &read_c);
  vasp_asp_close(a);
  CHECK(blocked);
  CHECK(inc == VASP_E_IO && created == VASP_E_IO);
  CHECK(read == VASP_OK && read_again == VASP_OK && read_c == 1 && v == 1);
  CHECK(read_new == VASP_E_NOT_FOUND);
}

/* Opens dir expecting VASP_E_STATE with `want` in the message, and checks
 * that the state file is left byte-identical. */
static bool refused_untouched(const char *dir, const char *want) {
  uint8_t *before;
  size_t len;
  if (!fx_read(fx_path(dir, "asp.state"), &before, &len)) return false;
  vasp_asp_opts opts = {.state_dir = dir};
  vasp_asp *a = (vasp_asp *)1;
  int rc = vasp_asp_open(&opts, &a);
  bool ok = rc == VASP_E_STATE && a == NULL && strstr(vasp_errmsg(NULL), want) != NULL &&
            strstr(vasp_errmsg(NULL), dir) != NULL;
  if (!ok) fprintf(stderr, "    open: rc %d, message \"%s\"\n", rc, vasp_errmsg(NULL));
  ok = fx_same(fx_path(dir, "asp.state"), before, len) && ok;
  free(before);
  if (rc == VASP_OK) vasp_asp_close(a);
  return ok;
}

static bool make_state(const char *dir) {
  vasp_asp *a = fx_open(dir);
  vasp_asp_close(a);
  return a != NULL;
}

/* Two state directories inside the test's own: "<tmp>/a" and "<tmp>/b". */
typedef struct two_dirs {
  char a[512], b[512];
} two_dirs;

static two_dirs make_two_dirs(void) {
  const char *root = test_tmpdir();
  two_dirs d;
  snprintf(d.a, sizeof d.a, "%s/a", root);
  snprintf(d.b, sizeof d.b, "%s/b", root);
  return d;
}

/* Copies the state file of directory `from` into directory `to`. */
static bool copy_state(const char *from, const char *to) {
  uint8_t *s;
  size_t len;
  if (!fx_read(fx_path(from, "asp.state"), &s, &len)) return false;
  bool written = fx_write(fx_path(to, "asp.state"), s, len, 0600);
  free(s);
  return written;
}

TEST(asp_refuses_a_state_file_with_one_flipped_byte_and_leaves_it_untouched) {
  const char *dir = test_tmpdir();
  CHECK(make_state(dir));
  uint8_t *s;
  size_t len;
  CHECK(fx_read(fx_path(dir, "asp.state"), &s, &len));
  s[len / 2] ^= 0x01;
  bool written = fx_write(fx_path(dir, "asp.state"), s, len, 0600);
  free(s);
  CHECK(written);
  CHECK(refused_untouched(dir, "is corrupt"));
}

TEST(asp_refuses_a_truncated_state_file_and_leaves_it_untouched) {
  const char *dir = test_tmpdir();
  CHECK(make_state(dir));
  uint8_t *s;
  size_t len;
  CHECK(fx_read(fx_path(dir, "asp.state"), &s, &len));
  bool written = fx_write(fx_path(dir, "asp.state"), s, len / 2, 0600);
  CHECK(written && refused_untouched(dir, "is truncated"));
  written = fx_write(fx_path(dir, "asp.state"), s, 4, 0600);
  CHECK(written && refused_untouched(dir, "is truncated"));
  written = fx_write(fx_path(dir, "asp.state"), "", 0, 0600);
  free(s);
  CHECK(written && refused_untouched(dir, "is truncated"));
}

TEST(asp_refuses_a_file_that_is_not_a_state_file) {
  const char *dir = test_tmpdir();
  CHECK(make_state(dir));
  static const char junk[] = "{\"this\": \"is not a vASP state file\"}";
  CHECK(fx_write(fx_path(dir, "asp.state"), junk, sizeof junk, 0600));
  CHECK(refused_untouched(dir, "not a vASP state file"));
}

TEST(asp_refuses_foreign_state_without_its_secret_and_never_makes_a_new_secret) {
  two_dirs d = make_two_dirs();
  CHECK(make_state(d.a));
  CHECK(mkdir(d.b, 0700) == 0);
  CHECK(copy_state(d.a, d.b));
  CHECK(refused_untouched(d.b, "is missing"));
  CHECK(access(fx_path(d.b, "host.secret"), F_OK) != 0);
}

TEST(asp_refuses_foreign_state_under_another_host_secret) {
  two_dirs d = make_two_dirs();
  CHECK(make_state(d.a) && make_state(d.b));
  CHECK(copy_state(d.a, d.b));
  CHECK(refused_untouched(d.b, "was not sealed with this host secret"));
}

TEST(asp_refuses_a_host_secret_readable_by_group_or_others) {
  const char *dir = test_tmpdir();
  CHECK(make_state(dir));
  const char *secret = fx_path(dir, "host.secret");
  struct stat st;
  CHECK(stat(secret, &st) == 0 && (st.st_mode & 0777) == 0600);
  CHECK(chmod(secret, 0640) == 0);
  CHECK(refused_untouched(dir, "group or others"));
  CHECK(chmod(secret, 0604) == 0);
  CHECK(refused_untouched(dir, "group or others"));
  CHECK(chmod(secret, 0600) == 0);
  vasp_asp *a = fx_open(dir);
  CHECK(a);
  vasp_asp_close(a);
}

TEST(asp_refuses_a_short_host_secret) {
  const char *dir = test_tmpdir();
  CHECK(make_state(dir));
  uint8_t short_secret[31];
  RAND_bytes(short_secret, sizeof short_secret);
  CHECK(fx_write(fx_path(dir, "host.secret"), short_secret, sizeof short_secret, 0600));
  CHECK(refused_untouched(dir, "at least 32"));
}

TEST(asp_uses_an_explicit_secret_path_and_creates_state_dir_0700) {
  const char *root = test_tmpdir();
  char dir[512], secret[512];
  snprintf(dir, sizeof dir, "%s/nested/state", root);
  snprintf(secret, sizeof secret, "%s/my.secret", root);
  vasp_asp_opts opts = {.state_dir = dir, .secret_path = secret};
  vasp_asp *a = NULL;
  CHECK_RC(vasp_asp_open(&opts, &a), VASP_OK, NULL);
  vasp_asp_close(a);
  struct stat st_dir, st_secret;
  CHECK(stat(dir, &st_dir) == 0 && (st_dir.st_mode & 0777) == 0700);
  CHECK(stat(secret, &st_secret) == 0 && (st_secret.st_mode & 0777) == 0600);
  CHECK(st_secret.st_size == 32);
  CHECK(access(fx_path(dir, "host.secret"), F_OK) != 0);
  /* Without the explicit path the default secret is missing: refused. */
  CHECK(refused_untouched(dir, "is missing"));
}

TEST(asp_second_open_of_a_directory_in_use_is_refused_also_from_another_process) {
  const char *dir = test_tmpdir();
  vasp_asp *a = fx_open(dir);
  CHECK(a);
  vasp_asp_opts opts = {.state_dir = dir};
  vasp_asp *b = (vasp_asp *)1;
  int same_process = vasp_asp_open(&opts, &b);
  bool message = strstr(vasp_errmsg(NULL), "is in use") != NULL && b == NULL;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    vasp_asp *c = NULL;
    int rc = vasp_asp_open(&opts, &c);
    _exit(rc == VASP_E_IO && c == NULL ? 0 : 1);
  }
  int status = -1;
  waitpid(pid, &status, 0);
  vasp_asp_close(a);
  CHECK(same_process == VASP_E_IO && message);
  CHECK(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  /* Closing releases the directory. */
  b = fx_open(dir);
  CHECK(b);
  vasp_asp_close(b);
}

TEST(asp_open_refuses_missing_arguments) {
  vasp_asp *a = (vasp_asp *)1;
  vasp_asp_opts none = {0};
  CHECK_RC(vasp_asp_open(&none, &a), VASP_E_ARG, NULL);
  CHECK(a == NULL);
  CHECK_RC(vasp_asp_open(NULL, &a), VASP_E_ARG, NULL);
  vasp_asp_opts opts = {.state_dir = "/tmp"};
  CHECK_RC(vasp_asp_open(&opts, NULL), VASP_E_ARG, NULL);
  vasp_asp_close(NULL);
}
