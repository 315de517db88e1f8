#include "_test.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Writes n bytes of a pattern to dir/name; returns the path (static). */
static const char *pattern_file(const char *dir, const char *name, size_t n) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  for (size_t i = 0; f && i < n; i++) fputc((int)(i * 31u % 251u), f);
  if (f) fclose(f);
  return path;
}

TEST(file_digest_streams_a_file_larger_than_one_read_to_its_sha256_and_sm3) {
  const char *dir = test_tmpdir();
  size_t n = (3u << 20) + 12345u; /* several reads, the last one short */
  const char *path = pattern_file(dir, "img", n);
  uint8_t *whole = malloc(n);
  CHECK(whole);
  for (size_t i = 0; i < n; i++) whole[i] = (uint8_t)(i * 31u % 251u);
  uint8_t want[32], want_sm3[32], got[32], got_sm3[32];
  vasp_file_id id;
  char msg[256];
  CHECK_RC(vasp_hash(VASP_ALG_SHA256, whole, n, want), VASP_OK, NULL);
  CHECK_RC(vasp_hash(VASP_ALG_SM3, whole, n, want_sm3), VASP_OK, NULL);
  free(whole);
  CHECK_RC(vasp_file_digest(path, got, got_sm3, &id, msg, sizeof msg), VASP_OK, NULL);
  CHECK(memcmp(got, want, 32) == 0);
  CHECK(memcmp(got_sm3, want_sm3, 32) == 0);
  CHECK(id.size == n);
  /* Without SM3, the same SHA-256; the identity is stat's. */
  vasp_file_id id2;
  CHECK_RC(vasp_file_digest(path, got, NULL, &id2, NULL, 0), VASP_OK, NULL);
  CHECK(memcmp(got, want, 32) == 0);
  vasp_file_id st;
  CHECK_RC(vasp_file_stat(path, &st), VASP_OK, NULL);
  CHECK(memcmp(&st, &id, sizeof st) == 0 && memcmp(&id2, &id, sizeof id) == 0);
}

TEST(file_identity_changes_when_the_file_is_rewritten_with_its_size_and_mtime_put_back) {
  const char *dir = test_tmpdir();
  const char *path = pattern_file(dir, "img", 4096);
  vasp_file_id before, after;
  CHECK_RC(vasp_file_stat(path, &before), VASP_OK, NULL);
  /* Files are stamped from the coarse clock: let it pass the creation stamp first. */
  for (;;) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (now.tv_sec > before.ctime_sec ||
        (now.tv_sec == before.ctime_sec && now.tv_nsec > before.ctime_nsec))
      break;
    usleep(1000);
  }
  int fd = open(path, O_WRONLY);
  CHECK(fd >= 0);
  CHECK(pwrite(fd, "x", 1, 100) == 1);
  struct timespec times[2] = {{0, UTIME_OMIT}, {before.mtime_sec, before.mtime_nsec}};
  CHECK(futimens(fd, times) == 0);
  close(fd);
  CHECK_RC(vasp_file_stat(path, &after), VASP_OK, NULL);
  CHECK(after.size == before.size && after.mtime_sec == before.mtime_sec &&
        after.mtime_nsec == before.mtime_nsec);
  CHECK(after.ctime_sec != before.ctime_sec || after.ctime_nsec != before.ctime_nsec);
}

TEST(file_digest_refuses_what_is_not_a_regular_file_with_its_message) {
  const char *dir = test_tmpdir();
  uint8_t d[32];
  vasp_file_id id;
  char msg[256];
  CHECK_RC(vasp_file_digest(dir, d, NULL, &id, msg, sizeof msg), VASP_E_IO, NULL);
  CHECK(strstr(msg, "is not a regular file") != NULL);
  CHECK_MSG(NULL, "is not a regular file");
  char missing[512];
  snprintf(missing, sizeof missing, "%s/none", dir);
  CHECK_RC(vasp_file_digest(missing, d, NULL, &id, msg, sizeof msg), VASP_E_IO, NULL);
  CHECK(strstr(msg, "cannot open") != NULL);
  CHECK_RC(vasp_file_stat("/dev/null", &id), VASP_E_IO, NULL);
  CHECK_RC(vasp_file_digest(NULL, d, NULL, &id, NULL, 0), VASP_E_ARG, NULL);
}

TEST(instance_extend_digests_refuses_a_null_instance) {
  /* Its extension is checked against the file's digests in tests/vasp_boot_test.ts. */
  uint8_t d[32] = {0};
  CHECK_RC(vasp_instance_extend_digests(NULL, 2, d, d, "x"), VASP_E_ARG, NULL);
}
