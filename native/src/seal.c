/* Seal and unseal under the ASP storage key. Blob (docs/quote-format.md):
 *   "VASPSL01" | nonce (12) | ciphertext | tag (16)
 * with AAD = "VASPSL01" || caller's aad: the magic keeps a sealed blob from
 * ever passing as an export blob, which uses the same key. */
#include "_asp.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define SEAL_MAGIC "VASPSL01"
#define SEAL_OVERHEAD (8u + VASP_NONCE_LEN + VASP_TAG_LEN)
#define SEAL_MAX ((size_t)1 << 30)

static int check_args(vasp_asp *asp, const uint8_t *data, size_t len, size_t max,
                      const uint8_t *aad, size_t aad_len, uint8_t **out, size_t *out_len) {
  if (!asp) return vasp_fail(NULL, VASP_E_ARG, "asp is NULL");
  vasp_clear(&asp->err);
  if (!data && len) return vasp_fail(&asp->err, VASP_E_ARG, "data is NULL with length %zu", len);
  if (!aad && aad_len)
    return vasp_fail(&asp->err, VASP_E_ARG, "aad is NULL with length %zu", aad_len);
  if (!out || !out_len) return vasp_fail(&asp->err, VASP_E_ARG, "out or out_len is NULL");
  if (len > max || aad_len > SEAL_MAX)
    return vasp_fail(&asp->err, VASP_E_ARG, "%zu bytes of data (at most %zu) or %zu of aad "
                     "(at most %zu)", len, max, aad_len, SEAL_MAX);
  return VASP_OK;
}

int vasp_asp_seal(vasp_asp *asp, const uint8_t *data, size_t len, const uint8_t *aad,
                  size_t aad_len, uint8_t **out, size_t *out_len) {
  int rc = check_args(asp, data, len, SEAL_MAX, aad, aad_len, out, out_len);
  if (rc) return rc;
  uint8_t *blob = malloc(SEAL_OVERHEAD + len);
  if (!blob) return vasp_fail(&asp->err, VASP_E_NOMEM, "cannot allocate the sealed blob");
  uint8_t *nonce = blob + 8, *ct = nonce + VASP_NONCE_LEN;
  memcpy(blob, SEAL_MAGIC, 8);
  if (RAND_bytes(nonce, VASP_NONCE_LEN) != 1 ||
      !vasp_aead_seal(asp->storage_key, nonce, blob, 8, aad, aad_len, data, len, ct, ct + len)) {
    free(blob);
    return vasp_fail_ssl(&asp->err, VASP_E_CRYPTO, "cannot seal");
  }
  *out = blob;
  *out_len = SEAL_OVERHEAD + len;
  return VASP_OK;
}

int vasp_asp_unseal(vasp_asp *asp, const uint8_t *blob, size_t len, const uint8_t *aad,
                    size_t aad_len, uint8_t **out, size_t *out_len) {
  int rc = check_args(asp, blob, len, SEAL_MAX + SEAL_OVERHEAD, aad, aad_len, out, out_len);
  if (rc) return rc;
  if (len < SEAL_OVERHEAD || memcmp(blob, SEAL_MAGIC, 8) != 0)
    return vasp_fail(&asp->err, VASP_E_AUTH, "not a sealed blob (%zu bytes)", len);
  size_t n = len - SEAL_OVERHEAD;
  uint8_t *plain = malloc(n ? n : 1);
  if (!plain) return vasp_fail(&asp->err, VASP_E_NOMEM, "cannot allocate %zu bytes", n);
  const uint8_t *nonce = blob + 8, *ct = nonce + VASP_NONCE_LEN;
  int auth =
      vasp_aead_open(asp->storage_key, nonce, blob, 8, aad, aad_len, ct, n, ct + n, plain);
  if (auth != 1) {
    free(plain);
    return auth < 0 ? vasp_fail_ssl(&asp->err, VASP_E_CRYPTO, "cannot unseal")
                    : vasp_fail(&asp->err, VASP_E_AUTH,
                                "sealed blob was altered, sealed by another ASP, or its aad "
                                "does not match");
  }
  *out = plain;
  *out_len = n;
  return VASP_OK;
}
