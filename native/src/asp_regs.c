/* The ASP's own registers: extend, active file measurement, read, event
 * log and quote. */
#include "_asp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK ((size_t)1 << 16)

int vasp_asp_extend(vasp_asp *asp, uint32_t reg, const uint8_t *data, size_t len,
                    const char *description) {
  if (!asp) return vasp_fail(NULL, VASP_E_ARG, "asp is NULL");
  vasp_clear(&asp->err);
  return vasp_regs_extend(&asp->regs, &asp->err, reg, data, len, description);
}

/* Streams the file through one digest per bank. */
static int digest_file(vasp_err *err, const char *path,
                       uint8_t digest[VASP_NUM_BANKS][VASP_DIGEST_LEN]) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return vasp_fail(err, VASP_E_IO, "cannot open %s: %s", path, strerror(errno));
  /* A FIFO or a device such as /dev/zero could block or never end. */
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return vasp_fail(err, VASP_E_IO, "%s is not a regular file", path);
  }
  EVP_MD_CTX *ctx[VASP_NUM_BANKS] = {EVP_MD_CTX_new(), EVP_MD_CTX_new()};
  uint8_t *buf = malloc(READ_CHUNK);
  int rc = VASP_OK;
  bool ok = ctx[0] && ctx[1] && buf;
  for (uint32_t alg = 0; ok && alg < VASP_NUM_BANKS; alg++)
    ok = EVP_DigestInit_ex(ctx[alg], vasp_md(alg), NULL) == 1;
  if (!ok) rc = vasp_fail_ssl(err, VASP_E_CRYPTO, "cannot start digests of %s", path);
  while (rc == VASP_OK) {
    ssize_t n = read(fd, buf, READ_CHUNK);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = vasp_fail(err, VASP_E_IO, "cannot read %s: %s", path, strerror(errno));
      break;
    }
    for (uint32_t alg = 0; rc == VASP_OK && alg < VASP_NUM_BANKS; alg++) {
      unsigned int out_len = 0;
      if (n ? EVP_DigestUpdate(ctx[alg], buf, (size_t)n) != 1
            : EVP_DigestFinal_ex(ctx[alg], digest[alg], &out_len) != 1)
        rc = vasp_fail_ssl(err, VASP_E_CRYPTO, "cannot digest %s", path);
    }
    if (n == 0) break;
  }
  free(buf);
  EVP_MD_CTX_free(ctx[0]);
  EVP_MD_CTX_free(ctx[1]);
  close(fd);
  return rc;
}

int vasp_asp_measure_file(vasp_asp *asp, uint32_t reg, const char *path,
                          const char *description, uint8_t *digest_out) {
  if (!asp) return vasp_fail(NULL, VASP_E_ARG, "asp is NULL");
  vasp_clear(&asp->err);
  if (!path || !digest_out)
    return vasp_fail(&asp->err, VASP_E_ARG, "path or digest_out is NULL");
  /* Checked before the file is read, so a bad call costs no I/O. */
  int rc = vasp_regs_check_extend(&asp->err, reg, description);
  if (rc) return rc;
  uint8_t digest[VASP_NUM_BANKS][VASP_DIGEST_LEN];
  rc = digest_file(&asp->err, path, digest);
  if (rc == VASP_OK) rc = vasp_regs_extend_digests(&asp->regs, &asp->err, reg, digest, description);
  if (rc == VASP_OK) memcpy(digest_out, digest[VASP_ALG_SHA256], VASP_DIGEST_LEN);
  return rc;
}

int vasp_asp_read(vasp_asp *asp, uint32_t alg, uint32_t reg, uint8_t *out) {
  if (!asp) return vasp_fail(NULL, VASP_E_ARG, "asp is NULL");
  vasp_clear(&asp->err);
  return vasp_regs_read(&asp->regs, &asp->err, alg, reg, out);
}

int vasp_asp_event_log(vasp_asp *asp, uint8_t **out, size_t *out_len) {
  if (!asp) return vasp_fail(NULL, VASP_E_ARG, "asp is NULL");
  vasp_clear(&asp->err);
  return vasp_regs_log_json(&asp->regs, &asp->err, out, out_len);
}

int vasp_asp_quote(vasp_asp *asp, uint32_t alg, uint32_t reg_mask, const uint8_t *nonce,
                   size_t nonce_len, uint8_t **out, size_t *out_len) {
  if (!asp) return vasp_fail(NULL, VASP_E_ARG, "asp is NULL");
  vasp_clear(&asp->err);
  return vasp_quote_make(&asp->err, asp->ak, &asp->regs, alg, reg_mask, nonce, nonce_len, out,
                         out_len);
}
