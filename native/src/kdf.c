/* Key agreement and derivation: ECDH on P-256 and HKDF-SHA256, shared by
 * the state key and the migration blobs. */
#include "_asp.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <string.h>

bool vasp_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                      const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len) {
  EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
  EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
  OSSL_PARAM params[5], *p = params;
  *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
  *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
  /* No salt parameter at all is HKDF's default salt, which the state key was
   * always derived with. */
  if (salt_len) *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
  *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
  *p = OSSL_PARAM_construct_end();
  bool ok = ctx && EVP_KDF_derive(ctx, out, out_len, params) == 1;
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  return ok;
}

bool vasp_ecdh(EVP_PKEY *priv, EVP_PKEY *peer, uint8_t out[VASP_ECDH_LEN]) {
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
  size_t len = VASP_ECDH_LEN;
  /* set_peer checks that the peer's point is on the curve. */
  bool ok = ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
            EVP_PKEY_derive(ctx, out, &len) == 1 && len == VASP_ECDH_LEN;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) vasp_wipe(out, VASP_ECDH_LEN);
  return ok;
}

bool vasp_ec_public_point(EVP_PKEY *key, uint8_t out[VASP_EC_POINT_LEN]) {
  size_t len = 0;
  return EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out,
                                         VASP_EC_POINT_LEN, &len) == 1 &&
         len == VASP_EC_POINT_LEN && out[0] == 0x04;
}

EVP_PKEY *vasp_ec_from_point(const uint8_t point[VASP_EC_POINT_LEN]) {
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  EVP_PKEY *key = NULL;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point,
                                        VASP_EC_POINT_LEN),
      OSSL_PARAM_construct_end()};
  if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
    key = NULL;
  EVP_PKEY_CTX_free(ctx);
  return key;
}

bool vasp_is_p256(EVP_PKEY *key) {
  char group[32];
  return EVP_PKEY_is_a(key, "EC") &&
         EVP_PKEY_get_group_name(key, group, sizeof group, NULL) == 1 &&
         strcmp(group, SN_X9_62_prime256v1) == 0;
}
