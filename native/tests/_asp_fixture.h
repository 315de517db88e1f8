/* Helpers shared by the ASP and instance tests: opening an ASP in a
 * directory, files, certificates and independent quote verification. */
#ifndef VASP_ASP_FIXTURE_H
#define VASP_ASP_FIXTURE_H

#include "_test.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sys/types.h>

/* "<dir>/<name>" in a static ring of buffers (valid for a few calls). */
const char *fx_path(const char *dir, const char *name);
/* Opens the ASP in dir (default secret path); NULL with the message printed. */
vasp_asp *fx_open(const char *dir);

/* Whole-file read (malloc'd; free()); false when missing. */
bool fx_read(const char *path, uint8_t **data, size_t *len);
bool fx_write(const char *path, const void *data, size_t len, mode_t mode);
/* True when the file holds exactly data[0..len). */
bool fx_same(const char *path, const uint8_t *data, size_t len);

/* Parses a DER certificate the library returned (and vasp_free()s it). */
X509 *fx_x509(uint8_t *der, size_t len);
X509 *fx_asp_cert(vasp_asp *asp, uint32_t kind);
/* Whether OpenSSL verifies `leaf` through the intermediates `chain[0..n)` up to
 * the trusted `ca` (the reason printed when it does not); false for NULLs. */
bool fx_verify_chain(X509 *ca, X509 *leaf, X509 *const *chain, size_t n);

/* A parsed quote (pointers into the quote buffer). */
typedef struct fx_quote {
  uint16_t alg, nonce_len;
  uint32_t reg_mask;
  const uint8_t *nonce, *regs, *sig;
  size_t n_regs, msg_len;
} fx_quote;
/* Parses the documented layout; false when the lengths do not add up. */
bool fx_parse_quote(const uint8_t *q, size_t len, fx_quote *out);
/* ECDSA P-256 / SHA-256 verification of a raw r || s signature. */
bool fx_verify_p1363(EVP_PKEY *pub, const uint8_t *msg, size_t len, const uint8_t sig[64]);

/* TPM-style extend computed from scratch: H(old || H(data)). */
void fx_extend(uint32_t alg, uint8_t reg[32], const void *data, size_t len);

#endif
