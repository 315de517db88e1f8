/* The state file "<state_dir>/asp.state": the host secret it is sealed
 * under, its encryption, serialisation and atomic replacement. Layout in
 * docs/asp.md. */
#include "_asp.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAGIC "VASPST01"
#define STATE_VERSION 1u
#define CONTENT_VERSION 1u
#define KEY_ID_LEN 16u
/* magic | u16 version | key id | u32 body length; all of it is the AAD. */
#define HEADER_LEN (8u + 2u + KEY_ID_LEN + 4u)
#define STATE_MAX ((size_t)64 << 20)
#define SECRET_MIN 32u
#define SECRET_MAX 4096u
#define SECRET_NEW 32u
#define KEY_DER_MAX 4096u
#define CERT_DER_MAX 16384u

static bool hkdf(const uint8_t *secret, size_t len, const char *info, uint8_t *out,
                 size_t out_len) {
  return vasp_hkdf_sha256(secret, len, NULL, 0, (const uint8_t *)info, strlen(info), out,
                          out_len);
}

static int derive_keys(vasp_asp *asp, const uint8_t *secret, size_t len) {
  if (!hkdf(secret, len, "vasp-asp-state-v1", asp->state_key, sizeof asp->state_key) ||
      !hkdf(secret, len, "vasp-asp-state-key-id-v1", asp->state_key_id,
            sizeof asp->state_key_id))
    return vasp_fail_ssl(&asp->err, VASP_E_CRYPTO, "cannot derive the state key from %s",
                         asp->secret_path);
  return VASP_OK;
}

static int create_secret(vasp_asp *asp) {
  uint8_t secret[SECRET_NEW];
  if (RAND_priv_bytes(secret, sizeof secret) != 1)
    return vasp_fail_ssl(&asp->err, VASP_E_CRYPTO, "cannot draw a host secret");
  int rc = vasp_write_new_file(&asp->err, asp->secret_path, secret, sizeof secret, 0600);
  if (rc == VASP_OK) rc = derive_keys(asp, secret, sizeof secret);
  vasp_wipe(secret, sizeof secret);
  return rc;
}

/* may_create: only when there is no state yet, since a new secret can never
 * open an existing state file. */
static int load_secret(vasp_asp *asp, bool may_create) {
  const char *path = asp->secret_path;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    if (may_create) return create_secret(asp);
    return vasp_fail(&asp->err, VASP_E_STATE,
                     "host secret %s is missing; the state file %s was sealed with it",
                     path, asp->state_path);
  }
  if (fd < 0)
    return vasp_fail(&asp->err, VASP_E_IO, "cannot open host secret %s: %s", path,
                     strerror(errno));
  struct stat st;
  int rc = VASP_OK;
  vasp_bytes secret = {0};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    rc = vasp_fail(&asp->err, VASP_E_STATE, "host secret %s is not a regular file", path);
  else if (st.st_mode & 077)
    rc = vasp_fail(&asp->err, VASP_E_STATE,
                   "host secret %s is accessible by group or others (mode %04o); "
                   "it must be mode 0600",
                   path, (unsigned)(st.st_mode & 0777));
  else if ((rc = vasp_read_fd(&asp->err, fd, path, SECRET_MAX, &secret)) == VASP_OK &&
           secret.len < SECRET_MIN)
    rc = vasp_fail(&asp->err, VASP_E_STATE,
                   "host secret %s has %zu bytes; at least %u are needed", path, secret.len,
                   SECRET_MIN);
  close(fd);
  if (rc == VASP_OK) rc = derive_keys(asp, secret.p, secret.len);
  vasp_bytes_free(&secret);
  return rc;
}

int vasp_state_save(vasp_asp *asp, vasp_err *err, bool *written) {
  if (written) *written = false;
  vasp_wbuf plain = {0}, file = {0};
  vasp_wb_u16(&plain, CONTENT_VERSION);
  if (!vasp_key_write(asp->ek, &plain) || !vasp_key_write(asp->ak, &plain)) {
    vasp_wb_free(&plain);
    return vasp_fail_ssl(err, VASP_E_CRYPTO, "cannot encode the ASP keys");
  }
  vasp_wb_put(&plain, asp->storage_key, sizeof asp->storage_key);
  vasp_wb_blob(&plain, asp->ca_der.p, asp->ca_der.len);
  vasp_wb_blob(&plain, asp->ek_der.p, asp->ek_der.len);
  vasp_wb_blob(&plain, asp->ak_der.p, asp->ak_der.len);
  vasp_ledger_write(&asp->ledger, &plain);

  vasp_wb_put(&file, STATE_MAGIC, 8);
  vasp_wb_u16(&file, STATE_VERSION);
  vasp_wb_put(&file, asp->state_key_id, KEY_ID_LEN);
  vasp_wb_u32(&file, (uint32_t)plain.len);
  int rc = VASP_OK;
  if (!plain.failed && plain.len > STATE_MAX - HEADER_LEN - VASP_NONCE_LEN - VASP_TAG_LEN) {
    /* Loading refuses anything larger, so it must never be written. */
    rc = vasp_fail(err, VASP_E_ARG, "state for %s would exceed %zu bytes", asp->state_path,
                   STATE_MAX);
  } else if (plain.failed ||
             !vasp_wb_reserve(&file, VASP_NONCE_LEN + plain.len + VASP_TAG_LEN)) {
    rc = vasp_fail(err, VASP_E_NOMEM, "cannot encode the state for %s", asp->state_path);
  } else {
    uint8_t *nonce = file.p + HEADER_LEN, *ct = nonce + VASP_NONCE_LEN;
    if (RAND_bytes(nonce, VASP_NONCE_LEN) != 1 ||
        !vasp_aead_seal(asp->state_key, nonce, file.p, HEADER_LEN, NULL, 0, plain.p, plain.len,
                        ct, ct + plain.len))
      rc = vasp_fail_ssl(err, VASP_E_CRYPTO, "cannot encrypt the state for %s",
                         asp->state_path);
    else
      rc = vasp_write_atomic(err, asp->state_path, file.p, file.len, 0600, written);
  }
  vasp_wb_free(&plain);
  vasp_wb_free(&file);
  return rc;
}

static X509 *parse_cert(const vasp_bytes *der) {
  const unsigned char *p = der->p;
  X509 *x = d2i_X509(NULL, &p, (long)der->len);
  if (x && p != der->p + der->len) {
    X509_free(x);
    return NULL;
  }
  return x;
}

/* Decodes the plaintext into asp; returns why not, NULL when fine. */
static const char *decode(vasp_asp *asp, const uint8_t *plain, size_t len, vasp_rbuf *r) {
  vasp_rb_init(r, plain, len);
  uint16_t version = 0;
  const uint8_t *ek = NULL, *ak = NULL, *der[3] = {0};
  size_t ek_len = 0, ak_len = 0, der_len[3] = {0};
  vasp_rb_u16(r, &version);
  if (vasp_rb_ok(r) && version != CONTENT_VERSION) return "unknown content version";
  vasp_rb_blob(r, &ek, &ek_len, KEY_DER_MAX);
  vasp_rb_blob(r, &ak, &ak_len, KEY_DER_MAX);
  vasp_rb_get(r, asp->storage_key, sizeof asp->storage_key);
  for (int i = 0; i < 3; i++) vasp_rb_blob(r, &der[i], &der_len[i], CERT_DER_MAX);
  if (!vasp_rb_ok(r) || !vasp_ledger_parse(&asp->ledger, r) || !vasp_rb_end(r)) return r->why;

  asp->ek = vasp_key_parse(ek, ek_len);
  asp->ak = vasp_key_parse(ak, ak_len);
  if (!asp->ek || !asp->ak) return "a private key does not parse";
  if (!vasp_bytes_dup(&asp->ca_der, der[0], der_len[0]) ||
      !vasp_bytes_dup(&asp->ek_der, der[1], der_len[1]) ||
      !vasp_bytes_dup(&asp->ak_der, der[2], der_len[2]))
    return "out of memory for the certificates";
  X509 *ca = parse_cert(&asp->ca_der), *ek_cert = parse_cert(&asp->ek_der);
  asp->ak_cert = parse_cert(&asp->ak_der);
  bool match = ca && ek_cert && asp->ak_cert && X509_check_private_key(ek_cert, asp->ek) == 1 &&
               X509_check_private_key(asp->ak_cert, asp->ak) == 1;
  X509_free(ca);
  X509_free(ek_cert);
  if (!match) return "a certificate does not parse or does not match its key";
  if (!vasp_spki_sha256(asp->ek, asp->id)) return "cannot hash the endorsement key";
  return NULL;
}

static uint64_t le(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* Checks the header and decrypts; on failure the reason is recorded. */
static int load(vasp_asp *asp, const vasp_bytes *file) {
  const char *path = asp->state_path;
  const uint8_t *p = file->p;
  size_t len = file->len;
  if (len >= 8 && memcmp(p, STATE_MAGIC, 8) != 0)
    return vasp_fail(&asp->err, VASP_E_STATE, "state file %s is corrupt: not a vASP state file",
                     path);
  if (len < HEADER_LEN + VASP_NONCE_LEN + VASP_TAG_LEN)
    return vasp_fail(&asp->err, VASP_E_STATE, "state file %s is truncated (%zu bytes)", path,
                     len);
  unsigned version = (unsigned)le(p + 8, 2);
  if (version != STATE_VERSION)
    return vasp_fail(&asp->err, VASP_E_STATE,
                     "state file %s has version %u; this library reads version %u", path,
                     version, STATE_VERSION);
  if (CRYPTO_memcmp(p + 10, asp->state_key_id, KEY_ID_LEN) != 0)
    return vasp_fail(&asp->err, VASP_E_STATE,
                     "state file %s was not sealed with this host secret (%s)", path,
                     asp->secret_path);
  size_t body = (size_t)le(p + 10 + KEY_ID_LEN, 4);
  size_t want = HEADER_LEN + VASP_NONCE_LEN + body + VASP_TAG_LEN;
  if (len < want)
    return vasp_fail(&asp->err, VASP_E_STATE, "state file %s is truncated (%zu of %zu bytes)",
                     path, len, want);
  if (len > want)
    return vasp_fail(&asp->err, VASP_E_STATE,
                     "state file %s is corrupt: %zu bytes follow its end", path, len - want);

  uint8_t *plain = malloc(body ? body : 1);
  if (!plain) return vasp_fail(&asp->err, VASP_E_NOMEM, "cannot allocate %zu bytes", body);
  const uint8_t *nonce = p + HEADER_LEN, *ct = nonce + VASP_NONCE_LEN;
  int rc = VASP_OK;
  int auth = vasp_aead_open(asp->state_key, nonce, p, HEADER_LEN, NULL, 0, ct, body, ct + body,
                            plain);
  vasp_rbuf r;
  const char *why;
  if (auth < 0)
    rc = vasp_fail_ssl(&asp->err, VASP_E_CRYPTO, "cannot decrypt state file %s", path);
  else if (auth == 0)
    rc = vasp_fail(&asp->err, VASP_E_STATE,
                   "state file %s is corrupt: it fails authentication (altered)", path);
  else if ((why = decode(asp, plain, body, &r)) != NULL)
    rc = vasp_fail(&asp->err, VASP_E_STATE, "state file %s is corrupt: %s", path, why);
  vasp_wipe(plain, body);
  free(plain);
  return rc;
}

int vasp_state_open(vasp_asp *asp) {
  vasp_bytes file = {0};
  bool missing = false;
  int rc = vasp_read_file(&asp->err, asp->state_path, STATE_MAX, &file, &missing);
  if (rc && !missing) {
    if (rc == VASP_E_STATE)
      vasp_fail(&asp->err, rc, "state file %s is corrupt: larger than %zu bytes",
                asp->state_path, STATE_MAX);
    return rc;
  }
  if (missing) {
    rc = load_secret(asp, true);
    if (rc == VASP_OK) rc = vasp_asp_provision(asp);
    if (rc == VASP_OK) rc = vasp_state_save(asp, &asp->err, NULL);
    return rc;
  }
  rc = load_secret(asp, false);
  if (rc == VASP_OK) rc = load(asp, &file);
  vasp_bytes_free(&file);
  return rc;
}

int vasp_state_peek(vasp_asp *asp) {
  vasp_bytes file = {0};
  bool missing = false;
  int rc = vasp_read_file(&asp->err, asp->state_path, STATE_MAX, &file, &missing);
  if (rc) {
    if (missing)
      return vasp_fail(&asp->err, VASP_E_NOT_FOUND, "there is no ASP state file %s",
                       asp->state_path);
    if (rc == VASP_E_STATE)
      vasp_fail(&asp->err, rc, "state file %s is corrupt: larger than %zu bytes",
                asp->state_path, STATE_MAX);
    return rc;
  }
  rc = load_secret(asp, false);
  if (rc == VASP_OK) rc = load(asp, &file);
  vasp_bytes_free(&file);
  return rc;
}
