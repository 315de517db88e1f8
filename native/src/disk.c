/* Streamed file measurement: a file's identity (device, inode, size, mtime,
 * ctime, to the nanosecond) and its digests, in constant memory, for disk
 * images of any size and for the boot files vBoot extends. */
#include "_asp.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One read: 1 MiB was the fastest of 64 KiB to 1 MiB here (bench/disk_bench.ts).
 * Reading and hashing stay on one thread: a reader thread filling a ring of
 * buffers made each byte cost more CPU (the hash then reads the copy from
 * another core's cache), and mmap(2) windows, MAP_POPULATE or not, were slower
 * than read(2) on this kind of machine (page-table work per 4 KiB page). */
#define STREAM_CHUNK ((size_t)1 << 20)

static void fill_id(const struct stat *st, vasp_file_id *id) {
  memset(id, 0, sizeof *id);
  id->dev = (uint64_t)st->st_dev;
  id->ino = (uint64_t)st->st_ino;
  id->size = (uint64_t)st->st_size;
  id->mtime_sec = (int64_t)st->st_mtim.tv_sec;
  id->mtime_nsec = (int64_t)st->st_mtim.tv_nsec;
  id->ctime_sec = (int64_t)st->st_ctim.tv_sec;
  id->ctime_nsec = (int64_t)st->st_ctim.tv_nsec;
}

static bool same_id(const vasp_file_id *a, const vasp_file_id *b) {
  return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec &&
         a->ctime_sec == b->ctime_sec && a->ctime_nsec == b->ctime_nsec;
}

int vasp_file_stat(const char *path, vasp_file_id *out) {
  if (!path || !out) return vasp_fail(NULL, VASP_E_ARG, "path or out is NULL");
  struct stat st;
  if (stat(path, &st) != 0)
    return vasp_fail(NULL, VASP_E_IO, "cannot stat %s: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode)) return vasp_fail(NULL, VASP_E_IO, "%s is not a regular file", path);
  fill_id(&st, out);
  return VASP_OK;
}

/* Streams fd through the digests of the banks in `mask`; digest[alg] is
 * written for each. */
static int stream(vasp_err *err, int fd, const char *path, uint32_t mask,
                  uint8_t digest[VASP_NUM_BANKS][VASP_DIGEST_LEN], uint64_t *read_total) {
  EVP_MD_CTX *ctx[VASP_NUM_BANKS] = {NULL, NULL};
  uint8_t *buf = malloc(STREAM_CHUNK);
  int rc = buf ? VASP_OK : vasp_fail(err, VASP_E_NOMEM, "cannot allocate a read buffer");
  for (uint32_t alg = 0; rc == VASP_OK && alg < VASP_NUM_BANKS; alg++) {
    if (!(mask & (1u << alg))) continue;
    ctx[alg] = EVP_MD_CTX_new();
    if (!ctx[alg] || EVP_DigestInit_ex(ctx[alg], vasp_md(alg), NULL) != 1)
      rc = vasp_fail_ssl(err, VASP_E_CRYPTO, "cannot start digests of %s", path);
  }
  *read_total = 0;
  while (rc == VASP_OK) {
    ssize_t n = read(fd, buf, STREAM_CHUNK);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = vasp_fail(err, VASP_E_IO, "cannot read %s: %s", path, strerror(errno));
      break;
    }
    *read_total += (uint64_t)n;
    for (uint32_t alg = 0; rc == VASP_OK && alg < VASP_NUM_BANKS; alg++) {
      if (!ctx[alg]) continue;
      unsigned int out_len = 0;
      if (n ? EVP_DigestUpdate(ctx[alg], buf, (size_t)n) != 1
            : EVP_DigestFinal_ex(ctx[alg], digest[alg], &out_len) != 1)
        rc = vasp_fail_ssl(err, VASP_E_CRYPTO, "cannot digest %s", path);
    }
    if (n == 0) break;
  }
  free(buf);
  for (uint32_t alg = 0; alg < VASP_NUM_BANKS; alg++) EVP_MD_CTX_free(ctx[alg]);
  return rc;
}

/* Opens a regular file, streams it, and checks that it did not change while
 * it was read (its identity before and after, and the bytes read). */
int vasp_digest_path(vasp_err *err, const char *path, uint32_t mask,
                     uint8_t digest[VASP_NUM_BANKS][VASP_DIGEST_LEN], vasp_file_id *id) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return vasp_fail(err, VASP_E_IO, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return vasp_fail(err, VASP_E_IO, "%s is not a regular file", path);
  }
  fill_id(&st, id);
  (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  uint64_t total = 0;
  int rc = stream(err, fd, path, mask, digest, &total);
  if (rc == VASP_OK) {
    vasp_file_id after;
    if (fstat(fd, &st) != 0) {
      rc = vasp_fail(err, VASP_E_IO, "cannot stat %s: %s", path, strerror(errno));
    } else {
      fill_id(&st, &after);
      if (!same_id(id, &after) || total != id->size)
        rc = vasp_fail(err, VASP_E_IO, "%s changed while it was measured", path);
    }
  }
  close(fd);
  return rc;
}

int vasp_file_digest(const char *path, uint8_t *sha256_out, uint8_t *sm3_out, vasp_file_id *id_out,
                     char *msg_out, size_t msg_len) {
  if (msg_out && msg_len) msg_out[0] = '\0';
  if (!path || !sha256_out || !id_out)
    return vasp_fail(NULL, VASP_E_ARG, "path, sha256_out or id_out is NULL");
  vasp_err err;
  vasp_clear(&err);
  uint8_t digest[VASP_NUM_BANKS][VASP_DIGEST_LEN];
  uint32_t mask = (1u << VASP_ALG_SHA256) | (sm3_out ? 1u << VASP_ALG_SM3 : 0u);
  int rc = vasp_digest_path(&err, path, mask, digest, id_out);
  if (rc != VASP_OK) {
    if (msg_out && msg_len) snprintf(msg_out, msg_len, "%s", err.msg);
    return vasp_fail(NULL, rc, "%s", err.msg);
  }
  memcpy(sha256_out, digest[VASP_ALG_SHA256], VASP_DIGEST_LEN);
  if (sm3_out) memcpy(sm3_out, digest[VASP_ALG_SM3], VASP_DIGEST_LEN);
  return VASP_OK;
}

int vasp_instance_extend_digests(vasp_instance *inst, uint32_t reg, const uint8_t *sha256,
                                 const uint8_t *sm3, const char *description) {
  if (!inst) return vasp_fail(NULL, VASP_E_ARG, "inst is NULL");
  vasp_clear(&inst->err);
  if (!sha256 || !sm3) return vasp_fail(&inst->err, VASP_E_ARG, "sha256 or sm3 is NULL");
  uint8_t digest[VASP_NUM_BANKS][VASP_DIGEST_LEN];
  memcpy(digest[VASP_ALG_SHA256], sha256, VASP_DIGEST_LEN);
  memcpy(digest[VASP_ALG_SM3], sm3, VASP_DIGEST_LEN);
  return vasp_regs_extend_digests(&inst->regs, &inst->err, reg, digest, description);
}
