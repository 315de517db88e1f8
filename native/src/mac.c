/* Keyed change detection: GMAC (AES-256-GCM over the data as additional
 * authenticated data, fixed IV, no plaintext) of guest regions and of caller
 * memory under one key drawn at random when the library first needs it.
 *
 * The key lives only in this file's static memory: no call returns it, no
 * file holds it, and it dies with the process, so every server start has a
 * new one. With a fixed IV the tags are deterministic — equal bytes give
 * equal tags for the life of the process — which is what change detection
 * needs. Reusing the IV would be fatal if tags were shown to an adversary
 * (two tags reveal a polynomial in the hash key H); they never leave the
 * host, and the guest, which controls the bytes, never sees them. Then two
 * different inputs of at most L 16-byte blocks collide with probability at
 * most (L + 1) / 2^128 over the key (GHASH is almost-XOR-universal). See
 * docs/introspection.md, "Keyed change detection". */
#include "_guest.h"

#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>

#define MAC_KEY_LEN 32u
#define MAX_REGIONS 65536u

static uint8_t mac_key[MAC_KEY_LEN];
static EVP_MAC *gmac;
static bool key_ready;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void draw_key(void) {
  gmac = EVP_MAC_fetch(NULL, "GMAC", NULL);
  key_ready = gmac && RAND_priv_bytes(mac_key, sizeof mac_key) == 1;
}

typedef struct mac_ctx {
  EVP_MAC_CTX *ctx;
  bool failed;
} mac_ctx;

static int mac_open(mac_ctx *m, vasp_err *err) {
  pthread_once(&key_once, draw_key);
  m->ctx = NULL;
  m->failed = false;
  if (!key_ready) return vasp_fail_ssl(err, VASP_E_CRYPTO, "cannot set up the GMAC key");
  m->ctx = EVP_MAC_CTX_new(gmac);
  if (!m->ctx) return vasp_fail(err, VASP_E_NOMEM, "out of memory for a MAC context");
  return VASP_OK;
}

static int mac_init(mac_ctx *m, vasp_err *err) {
  /* The IV is fixed (all zero): deterministic tags, see the top of the file. */
  static const uint8_t iv[12] = {0};
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, "AES-256-GCM", 0),
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_IV, (void *)iv, sizeof iv),
      OSSL_PARAM_construct_end(),
  };
  m->failed = false;
  if (EVP_MAC_init(m->ctx, mac_key, sizeof mac_key, params) != 1)
    return vasp_fail_ssl(err, VASP_E_CRYPTO, "MAC init failed");
  return VASP_OK;
}

static int mac_piece(void *ctx, const uint8_t *p, size_t len) {
  mac_ctx *m = ctx;
  if (EVP_MAC_update(m->ctx, p, len) == 1) return VASP_OK;
  m->failed = true;
  return VASP_E_CRYPTO;
}

static int mac_final(mac_ctx *m, uint8_t *tag, vasp_err *err) {
  size_t out = 0;
  if (EVP_MAC_final(m->ctx, tag, &out, VASP_MAC_LEN) != 1 || out != VASP_MAC_LEN)
    return vasp_fail_ssl(err, VASP_E_CRYPTO, "MAC final failed");
  return VASP_OK;
}

static int mac_region(struct vasp_guest *g, void *ctx, uint64_t cr3, uint32_t paging,
                      const vasp_guest_region *r, uint8_t *tag, vasp_err *err) {
  mac_ctx *m = ctx;
  int rc = mac_init(m, err);
  if (rc) return rc;
  rc = r->flags & VASP_REGION_VIRT
           ? guest_virt_pieces(g, cr3, paging, r->addr, r->len, mac_piece, m, err)
           : guest_phys_pieces(g, r->addr, r->len, mac_piece, m, err);
  if (m->failed) return vasp_fail_ssl(err, VASP_E_CRYPTO, "MAC update failed");
  return rc ? rc : mac_final(m, tag, err);
}

int vasp_guest_mac(vasp_guest *g, uint64_t cr3, uint32_t paging,
                   const vasp_guest_region *regions, size_t n, uint8_t *tags,
                   int32_t *status) {
  int rc = guest_batch_check(g, paging, regions, n, tags, status);
  if (rc || n == 0) return rc;
  mac_ctx m;
  rc = mac_open(&m, &g->err);
  if (rc) return rc;
  rc = guest_batch(g, cr3, paging, regions, n, tags, VASP_MAC_LEN, status, mac_region, &m);
  EVP_MAC_CTX_free(m.ctx);
  return rc;
}

int vasp_mac_batch(const vasp_mem_region *regions, size_t n, uint8_t *tags) {
  vasp_clear(NULL);
  if ((!regions || !tags) && n) return vasp_fail(NULL, VASP_E_ARG, "NULL buffer");
  if (n > MAX_REGIONS)
    return vasp_fail(NULL, VASP_E_ARG, "%zu regions exceed the limit of %u per call", n,
                     MAX_REGIONS);
  for (size_t i = 0; i < n; i++)
    if (!regions[i].ptr && regions[i].len)
      return vasp_fail(NULL, VASP_E_ARG, "region %zu has a NULL address", i);
  if (n == 0) return VASP_OK;
  mac_ctx m;
  int rc = mac_open(&m, NULL);
  for (size_t i = 0; rc == VASP_OK && i < n; i++) {
    const uint8_t *p = (const uint8_t *)(uintptr_t)regions[i].ptr;
    rc = mac_init(&m, NULL);
    if (rc == VASP_OK && regions[i].len) rc = mac_piece(&m, p, (size_t)regions[i].len);
    if (m.failed) rc = vasp_fail_ssl(NULL, VASP_E_CRYPTO, "MAC of region %zu failed", i);
    if (rc == VASP_OK) rc = mac_final(&m, tags + i * VASP_MAC_LEN, NULL);
  }
  EVP_MAC_CTX_free(m.ctx);
  return rc;
}
