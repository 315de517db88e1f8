/* The ASP's own registers: extend, active file measurement, read, event
 * log and quote. */
#include "_asp.h"

#include <string.h>

int vasp_asp_extend(vasp_asp *asp, uint32_t reg, const uint8_t *data, size_t len,
                    const char *description) {
  if (!asp) return vasp_fail(NULL, VASP_E_ARG, "asp is NULL");
  vasp_clear(&asp->err);
  return vasp_regs_extend(&asp->regs, &asp->err, reg, data, len, description);
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
  vasp_file_id id;
  rc = vasp_digest_path(&asp->err, path, (1u << VASP_NUM_BANKS) - 1, digest, &id);
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
