/* Faults injected into the state writer (src/_fault.h): a failed directory
 * sync after the rename must not hand a counter value out twice, and a
 * reader beside a running ASP sees only persisted counters. */
#include "_asp_fixture.h"
#include "_fault.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fails the next `dir_failures` directory syncs, or file syncs, with EIO. */
static int dir_failures, file_failures;
static int failing_fsync(int fd, bool is_dir) {
  int *left = is_dir ? &dir_failures : &file_failures;
  if (*left > 0) {
    (*left)--;
    errno = EIO;
    return -1;
  }
  return fsync(fd);
}

static void inject(int dirs, int files) {
  dir_failures = dirs;
  file_failures = files;
  vasp_test_fsync = failing_fsync;
}

static void heal(void) { vasp_test_fsync = NULL; }

static bool peek(const char *dir, const char *name, uint64_t *value) {
  vasp_asp_opts opts = {.state_dir = dir};
  return vasp_asp_counter_peek(&opts, name, value) == VASP_OK;
}

TEST(asp_counter_whose_directory_sync_fails_after_the_rename_is_never_handed_out_again) {
  const char *dir = test_tmpdir();
  vasp_asp *a = fx_open(dir);
  CHECK(a);
  uint64_t v = 0, failed_value = 0, in_file = 0, next = 0, reopened = 0;
  CHECK_RC(vasp_asp_counter_increment(a, "c", &v), VASP_OK, a);
  inject(1, 0);
  int rc = vasp_asp_counter_increment(a, "c", &failed_value);
  heal();
  bool peeked = peek(dir, "c", &in_file);
  int again = vasp_asp_counter_increment(a, "c", &next);
  vasp_asp_close(a);
  vasp_asp *b = fx_open(dir);
  int after = b ? vasp_asp_counter_read(b, "c", &reopened) : -1;
  vasp_asp_close(b);
  CHECK(rc == VASP_E_IO && failed_value == 0);
  /* The rename happened: the file holds 2, so 2 is used up. */
  CHECK(peeked && in_file == 2);
  CHECK(again == VASP_OK && next == 3);
  CHECK(after == VASP_OK && reopened == 3);
}

TEST(asp_counter_created_by_an_increment_whose_directory_sync_fails_stays_created) {
  const char *dir = test_tmpdir();
  vasp_asp *a = fx_open(dir);
  CHECK(a);
  uint64_t v = 0, read = 0;
  inject(1, 0);
  int rc = vasp_asp_counter_increment(a, "fresh", &v);
  heal();
  int r = vasp_asp_counter_read(a, "fresh", &read);
  int again = vasp_asp_counter_increment(a, "fresh", &v);
  vasp_asp_close(a);
  CHECK(rc == VASP_E_IO);
  CHECK(r == VASP_OK && read == 1);
  CHECK(again == VASP_OK && v == 2);
}

TEST(asp_counter_whose_file_sync_fails_before_the_rename_is_undone_in_memory_and_on_disk) {
  const char *dir = test_tmpdir();
  vasp_asp *a = fx_open(dir);
  CHECK(a);
  uint64_t v = 0, in_file = 0, read = 0;
  CHECK_RC(vasp_asp_counter_increment(a, "c", &v), VASP_OK, a);
  inject(0, 1);
  int rc = vasp_asp_counter_increment(a, "c", &v);
  heal();
  int r = vasp_asp_counter_read(a, "c", &read);
  bool peeked = peek(dir, "c", &in_file);
  int again = vasp_asp_counter_increment(a, "c", &v);
  vasp_asp_close(a);
  CHECK(rc == VASP_E_IO && v == 2);
  CHECK(r == VASP_OK && read == 1 && peeked && in_file == 1);
  CHECK(again == VASP_OK);
}

TEST(asp_export_whose_directory_sync_fails_uses_its_counter_up) {
  const char *dir = test_tmpdir();
  vasp_asp *a = fx_open(dir);
  CHECK(a);
  static const char vm[] = "6f1c1a3e-6a7b-4c2d-9e8f-0a1b2c3d4e5f";
  uint8_t digest[32] = {0};
  vasp_instance *inst = NULL;
  CHECK_RC(vasp_instance_create(a, vm, digest, &inst), VASP_OK, a);
  uint8_t *blob = NULL, *blob2 = NULL;
  size_t len = 0, len2 = 0;
  uint64_t counter = 0, counter2 = 0;
  inject(1, 0);
  int rc = vasp_instance_export(inst, 0, &blob, &len, &counter);
  heal();
  int again = vasp_instance_export(inst, 0, &blob2, &len2, &counter2);
  vasp_free(blob2);
  vasp_instance_close(inst);
  vasp_asp_close(a);
  CHECK(rc == VASP_E_IO && blob == NULL);
  CHECK(again == VASP_OK && counter2 == 2);
}

TEST(asp_counter_peek_reads_beside_an_open_asp_and_creates_nothing) {
  const char *dir = test_tmpdir();
  vasp_asp *a = fx_open(dir);
  CHECK(a);
  uint64_t v = 0, seen = 0, missing = 0;
  CHECK_RC(vasp_asp_counter_increment(a, "audit.checkpoints", &v), VASP_OK, a);
  CHECK_RC(vasp_asp_counter_increment(a, "audit.checkpoints", &v), VASP_OK, a);
  vasp_asp_opts opts = {.state_dir = dir};
  int rc = vasp_asp_counter_peek(&opts, "audit.checkpoints", &seen);
  int none = vasp_asp_counter_peek(&opts, "other", &missing);
  bool none_named = strstr(vasp_errmsg(NULL), "other") != NULL;
  vasp_asp_close(a);
  CHECK(rc == VASP_OK && seen == 2);
  CHECK(none == VASP_E_NOT_FOUND && none_named);

  char empty[512];
  snprintf(empty, sizeof empty, "%s/empty", dir);
  CHECK(mkdir(empty, 0700) == 0);
  vasp_asp_opts bare = {.state_dir = empty};
  int absent = vasp_asp_counter_peek(&bare, "audit.checkpoints", &seen);
  struct stat st;
  bool created = stat(fx_path(empty, "host.secret"), &st) == 0 ||
                 stat(fx_path(empty, "asp.lock"), &st) == 0;
  CHECK(absent == VASP_E_NOT_FOUND && !created);
  CHECK_RC(vasp_asp_counter_peek(NULL, "x", &seen), VASP_E_ARG, NULL);
  CHECK_RC(vasp_asp_counter_peek(&opts, "bad name", &seen), VASP_E_ARG, NULL);
  CHECK_RC(vasp_asp_counter_peek(&opts, "x", NULL), VASP_E_ARG, NULL);
}

TEST(asp_counter_peek_refuses_a_state_file_under_another_secret) {
  const char *dir = test_tmpdir();
  vasp_asp *a = fx_open(dir);
  CHECK(a);
  uint64_t v = 0;
  CHECK_RC(vasp_asp_counter_increment(a, "c", &v), VASP_OK, a);
  vasp_asp_close(a);
  uint8_t other[32];
  memset(other, 7, sizeof other);
  CHECK(fx_write(fx_path(dir, "other.secret"), other, sizeof other, 0600));
  vasp_asp_opts opts = {.state_dir = dir, .secret_path = fx_path(dir, "other.secret")};
  CHECK_RC(vasp_asp_counter_peek(&opts, "c", &v), VASP_E_STATE, NULL);
}
