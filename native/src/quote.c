/* Quotes: selected registers and a nonce, signed (layout in vasp.h and
 * docs/quote-format.md). Shared by the ASP (attestation key) and the
 * instances (instance key). */
#include "_asp.h"

#define QUOTE_MAGIC "VASPQT01"
#define NONCE_MAX 64u

int vasp_quote_make(vasp_err *err, EVP_PKEY *key, const vasp_regs *regs, uint32_t alg,
                    uint32_t reg_mask, const uint8_t *nonce, size_t nonce_len,
                    uint8_t **out, size_t *out_len) {
  if (alg >= VASP_NUM_BANKS) return vasp_fail(err, VASP_E_ARG, "unknown bank %u", alg);
  if (reg_mask == 0 || reg_mask >> VASP_NUM_REGS)
    return vasp_fail(err, VASP_E_ARG,
                     "register mask 0x%x selects no register or one past %u", reg_mask,
                     VASP_NUM_REGS - 1);
  if (!nonce || nonce_len == 0 || nonce_len > NONCE_MAX)
    return vasp_fail(err, VASP_E_ARG, "nonce of %zu bytes%s; 1..%u bytes are allowed",
                     nonce_len, nonce ? "" : " (NULL)", NONCE_MAX);
  if (!out || !out_len) return vasp_fail(err, VASP_E_ARG, "out or out_len is NULL");

  vasp_wbuf w = {0};
  vasp_wb_put(&w, QUOTE_MAGIC, 8);
  vasp_wb_u16(&w, (uint16_t)alg);
  vasp_wb_u16(&w, (uint16_t)nonce_len);
  vasp_wb_u32(&w, reg_mask);
  vasp_wb_put(&w, nonce, nonce_len);
  for (uint32_t reg = 0; reg < VASP_NUM_REGS; reg++)
    if (reg_mask & (1u << reg)) vasp_wb_put(&w, regs->bank[alg][reg], VASP_DIGEST_LEN);
  size_t msg_len = w.len;
  uint8_t *sig = vasp_wb_reserve(&w, VASP_SIG_LEN);
  if (!sig) {
    vasp_wb_free(&w);
    return vasp_fail(err, VASP_E_NOMEM, "cannot build the quote");
  }
  if (!vasp_sign_p1363(key, NULL, 0, w.p, msg_len, sig)) {
    vasp_wb_free(&w);
    return vasp_fail_ssl(err, VASP_E_CRYPTO, "cannot sign the quote");
  }
  *out = vasp_wb_take(&w, out_len);
  return VASP_OK;
}
