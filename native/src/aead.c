/* AES-256-GCM with a 12-byte nonce and a 16-byte tag. */
#include "_asp.h"

#include <openssl/err.h>

/* EVP takes int lengths. */
#define CHUNK ((size_t)1 << 30)

static bool feed_aad(EVP_CIPHER_CTX *ctx, const uint8_t *aad, size_t len) {
  int n;
  for (size_t off = 0; off < len; off += CHUNK) {
    size_t part = len - off < CHUNK ? len - off : CHUNK;
    if (EVP_CipherUpdate(ctx, NULL, &n, aad + off, (int)part) != 1) return false;
  }
  return true;
}

static bool feed(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t len, uint8_t *out) {
  int n;
  for (size_t off = 0; off < len; off += CHUNK) {
    size_t part = len - off < CHUNK ? len - off : CHUNK;
    /* GCM is a stream mode: every byte in gives one byte out at once. */
    if (EVP_CipherUpdate(ctx, out + off, &n, in + off, (int)part) != 1 || (size_t)n != part)
      return false;
  }
  return true;
}

static EVP_CIPHER_CTX *start(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad1,
                             size_t aad1_len, const uint8_t *aad2, size_t aad2_len, int enc) {
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce, enc) == 1 &&
      feed_aad(ctx, aad1, aad1_len) && feed_aad(ctx, aad2, aad2_len))
    return ctx;
  EVP_CIPHER_CTX_free(ctx);
  return NULL;
}

bool vasp_aead_seal(const uint8_t key[VASP_KEY_LEN], const uint8_t nonce[VASP_NONCE_LEN],
                    const uint8_t *aad1, size_t aad1_len, const uint8_t *aad2,
                    size_t aad2_len, const uint8_t *in, size_t len, uint8_t *out,
                    uint8_t tag[VASP_TAG_LEN]) {
  EVP_CIPHER_CTX *ctx = start(key, nonce, aad1, aad1_len, aad2, aad2_len, 1);
  int n;
  bool ok = ctx && feed(ctx, in, len, out) && EVP_EncryptFinal_ex(ctx, out + len, &n) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, VASP_TAG_LEN, tag) == 1;
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

int vasp_aead_open(const uint8_t key[VASP_KEY_LEN], const uint8_t nonce[VASP_NONCE_LEN],
                   const uint8_t *aad1, size_t aad1_len, const uint8_t *aad2,
                   size_t aad2_len, const uint8_t *in, size_t len,
                   const uint8_t tag[VASP_TAG_LEN], uint8_t *out) {
  EVP_CIPHER_CTX *ctx = start(key, nonce, aad1, aad1_len, aad2, aad2_len, 0);
  int n, result = -1;
  if (ctx && feed(ctx, in, len, out) &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, VASP_TAG_LEN, (void *)tag) == 1)
    result = EVP_DecryptFinal_ex(ctx, out + len, &n) == 1 ? 1 : 0;
  EVP_CIPHER_CTX_free(ctx);
  /* A failed tag check queues no error worth keeping. */
  if (result == 0) ERR_clear_error();
  if (result != 1) vasp_wipe(out, len);
  return result;
}
