#include "_internal.h"

#include <openssl/evp.h>
#include <pthread.h>

/* Fetched once: an implicit fetch per call costs a provider lookup. The
 * fetched methods live until the process exits. */
static EVP_MD *sha256_md, *sm3_md;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void fetch_mds(void) {
  sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
  sm3_md = EVP_MD_fetch(NULL, "SM3", NULL);
}

const EVP_MD *vasp_md(uint32_t alg) {
  pthread_once(&md_once, fetch_mds);
  switch (alg) {
    case VASP_ALG_SHA256: return sha256_md;
    case VASP_ALG_SM3: return sm3_md;
    default: return NULL;
  }
}

bool vasp_digest(uint32_t alg, const uint8_t *data, size_t len, uint8_t *out) {
  const EVP_MD *md = vasp_md(alg);
  unsigned int out_len = 0;
  return md && EVP_Digest(data, len, out, &out_len, md, NULL) == 1 &&
         out_len == VASP_DIGEST_LEN;
}

int vasp_hash(uint32_t alg, const uint8_t *data, size_t len, uint8_t *out) {
  vasp_clear(NULL);
  if (alg > VASP_ALG_SM3) return vasp_fail(NULL, VASP_E_ARG, "unknown hash algorithm %u", alg);
  if (!out || (!data && len)) return vasp_fail(NULL, VASP_E_ARG, "NULL buffer");
  if (!vasp_digest(alg, data, len, out))
    return vasp_fail_ssl(NULL, VASP_E_CRYPTO, "digest failed");
  return VASP_OK;
}

int vasp_hash_batch(uint32_t alg, const vasp_mem_region *regions, size_t n,
                    uint8_t *out) {
  vasp_clear(NULL);
  if (alg > VASP_ALG_SM3) return vasp_fail(NULL, VASP_E_ARG, "unknown hash algorithm %u", alg);
  if ((!regions || !out) && n) return vasp_fail(NULL, VASP_E_ARG, "NULL buffer");
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = (const uint8_t *)(uintptr_t)regions[i].ptr;
    if (!p && regions[i].len)
      return vasp_fail(NULL, VASP_E_ARG, "region %zu has a NULL address", i);
    if (!vasp_digest(alg, p, regions[i].len, out + i * VASP_DIGEST_LEN))
      return vasp_fail_ssl(NULL, VASP_E_CRYPTO, "digest of region %zu failed", i);
  }
  return VASP_OK;
}
