/* Private to libvasp: the ASP and instance handles, and what the ASP,
 * instance, state, certificate and export files share. */
#ifndef VASP_ASP_H
#define VASP_ASP_H

#include "_buf.h"
#include "_internal.h"
#include "_regs.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#define VASP_KEY_LEN 32u       /* AES-256 */
#define VASP_NONCE_LEN 12u     /* AES-GCM */
#define VASP_TAG_LEN 16u       /* AES-GCM */
#define VASP_ASP_ID_LEN 32u    /* SHA-256 of the EK SubjectPublicKeyInfo */
#define VASP_UUID_LEN 36u      /* canonical text form */
#define VASP_INST_ID_HEX 32u   /* 16 random bytes as lowercase hex */
#define VASP_COUNTER_NAME_MAX 64u
#define VASP_SIG_LEN 64u       /* P-256 r || s */
#define VASP_ECDH_LEN 32u      /* P-256 shared secret (x coordinate) */
#define VASP_EC_POINT_LEN 65u  /* P-256 public key, uncompressed: 04 || x || y */

/* Limits on what the state may hold, so neither a caller nor a forged file
 * can make it grow without bound. */
#define VASP_MAX_COUNTERS 4096u
#define VASP_MAX_VMS 65536u
#define VASP_MAX_SNAPSHOTS 1024u    /* per VM */
#define VASP_MAX_DESTROYED 1048576u

typedef struct vasp_bytes {
  uint8_t *p;
  size_t len;
} vasp_bytes;

typedef struct vasp_counter {
  char name[VASP_COUNTER_NAME_MAX + 1];
  uint64_t value;
} vasp_counter;

/* Anti-rollback record of one VM: the newest export counter handed out and
 * the counters registered as snapshots. */
typedef struct vasp_vm_record {
  char uuid[VASP_UUID_LEN + 1]; /* lowercase */
  uint64_t newest;
  uint64_t *snapshots;
  size_t n_snapshots;
} vasp_vm_record;

/* Everything in the state besides keys and certificates. Arrays keep
 * insertion order, so undoing the latest insertion is dropping the last. */
typedef struct vasp_ledger {
  vasp_counter *counters;
  size_t n_counters;
  vasp_vm_record *vms;
  size_t n_vms;
  char (*destroyed)[VASP_INST_ID_HEX + 1];
  size_t n_destroyed;
} vasp_ledger;

struct vasp_asp {
  vasp_err err; /* first: vasp_errmsg reads it */
  int lock_fd;
  char *dir, *state_path, *secret_path;
  uint8_t state_key[VASP_KEY_LEN]; /* HKDF of the host secret */
  uint8_t state_key_id[16];        /* lets load tell "other secret" from "corrupt" */
  EVP_PKEY *ek, *ak;
  X509 *ak_cert;
  uint8_t storage_key[VASP_KEY_LEN];
  vasp_bytes ca_der, ek_der, ak_der;
  uint8_t id[VASP_ASP_ID_LEN];
  /* Transport key: ECDH P-256, drawn on every open and never persisted, so a
   * migration blob opens only in the boot it was sealed to. */
  EVP_PKEY *tk;
  vasp_bytes tk_der;
  uint8_t tk_id[VASP_DIGEST_LEN]; /* SHA-256 of its SubjectPublicKeyInfo */
  vasp_regs regs; /* not persisted: every open is a boot */
  vasp_ledger ledger;
};

struct vasp_instance {
  vasp_err err; /* first: vasp_errmsg reads it */
  vasp_asp *asp;
  EVP_PKEY *key;
  vasp_bytes cert_der;
  char vm_uuid[VASP_UUID_LEN + 1];
  char id[VASP_INST_ID_HEX + 1];
  uint8_t config_digest[VASP_DIGEST_LEN];
  vasp_regs regs;
};

/* instance.c: issues the instance's certificate under this ASP's AK (its key,
 * VM and configuration digest in the binding extension) into inst->cert_der,
 * which must be empty. */
int vasp_instance_certify(vasp_instance *inst);

/* validate.c */
/* Copies a canonical UUID (8-4-4-4-12 hex, either case) lowercased to out. */
bool vasp_uuid_normalize(const char *in, char out[VASP_UUID_LEN + 1]);
/* As vasp_uuid_normalize for a caller's argument: VASP_E_ARG on err naming it when it is not
 * a canonical UUID (or NULL), VASP_OK otherwise. */
int vasp_vm_uuid_arg(vasp_err *err, const char *in, char out[VASP_UUID_LEN + 1]);
bool vasp_counter_name_ok(const char *name);
/* 32 lowercase hex characters, then NUL. */
bool vasp_inst_id_ok(const char *s);

/* keys.c: EC keys and their private DER. */
EVP_PKEY *vasp_ec_generate(void);
/* Appends the private key as a u32-length-prefixed DER ECPrivateKey (the
 * temporary DER is wiped); false on failure. */
bool vasp_key_write(EVP_PKEY *key, vasp_wbuf *w);
/* An EC private key from exactly len bytes of DER; NULL otherwise. */
EVP_PKEY *vasp_key_parse(const uint8_t *der, size_t len);
/* DER of a certificate in a malloc'd buffer (vasp_free-able). */
bool vasp_cert_to_der(X509 *cert, vasp_bytes *out);
/* SHA-256 of the key's SubjectPublicKeyInfo DER. */
bool vasp_spki_sha256(EVP_PKEY *key, uint8_t out[VASP_DIGEST_LEN]);
/* Wipes and frees; b is empty afterwards. */
void vasp_bytes_free(vasp_bytes *b);
/* A malloc'd copy (at least one byte allocated, so an empty copy is not NULL). */
bool vasp_bytes_dup(vasp_bytes *b, const uint8_t *p, size_t len);

/* cert.c */
typedef struct vasp_cert_spec {
  const char *cn;
  EVP_PKEY *subject_key;
  X509 *issuer;  /* NULL: self-signed */
  EVP_PKEY *issuer_key;
  long days;
  const char *basic_constraints; /* X509v3 config syntax */
  const char *key_usage;
  const char *subject_alt_name; /* NULL for none */
  X509_EXTENSION *extra;        /* NULL for none; borrowed */
} vasp_cert_spec;
int vasp_cert_issue(vasp_err *err, const vasp_cert_spec *spec, X509 **out);
/* The binding extension of an instance certificate (docs/quote-format.md). */
int vasp_binding_extension(vasp_err *err, const char *vm_uuid, const char *inst_id,
                           const uint8_t config_digest[VASP_DIGEST_LEN],
                           X509_EXTENSION **out);

/* provision.c: a fresh key hierarchy on first open; a fresh transport key
 * and its certificate from the AK on every open. */
int vasp_asp_provision(vasp_asp *asp);
int vasp_asp_transport_key(vasp_asp *asp);

/* kdf.c */
/* HKDF-SHA256; no salt (salt_len 0) is HKDF's default salt. */
bool vasp_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                      const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len);
/* ECDH of priv with peer's public key (checked to be on the curve); out is
 * wiped on failure. */
bool vasp_ecdh(EVP_PKEY *priv, EVP_PKEY *peer, uint8_t out[VASP_ECDH_LEN]);
/* The uncompressed public point of a P-256 key. */
bool vasp_ec_public_point(EVP_PKEY *key, uint8_t out[VASP_EC_POINT_LEN]);
/* A P-256 public key from an uncompressed point; NULL when it is not one. */
EVP_PKEY *vasp_ec_from_point(const uint8_t point[VASP_EC_POINT_LEN]);
/* Whether key is an EC key on P-256. */
bool vasp_is_p256(EVP_PKEY *key);

/* aead.c: AES-256-GCM. aad is aad1 || aad2 (either may be empty). */
bool vasp_aead_seal(const uint8_t key[VASP_KEY_LEN], const uint8_t nonce[VASP_NONCE_LEN],
                    const uint8_t *aad1, size_t aad1_len, const uint8_t *aad2,
                    size_t aad2_len, const uint8_t *in, size_t len, uint8_t *out,
                    uint8_t tag[VASP_TAG_LEN]);
/* 1: authentic; 0: authentication failed; -1: OpenSSL error. */
int vasp_aead_open(const uint8_t key[VASP_KEY_LEN], const uint8_t nonce[VASP_NONCE_LEN],
                   const uint8_t *aad1, size_t aad1_len, const uint8_t *aad2,
                   size_t aad2_len, const uint8_t *in, size_t len,
                   const uint8_t tag[VASP_TAG_LEN], uint8_t *out);

/* sign.c: ECDSA P-256 over the SHA-256 of domain || msg (either may be empty),
 * as raw r || s (IEEE P1363); false on OpenSSL failure. */
bool vasp_sign_p1363(EVP_PKEY *key, const uint8_t *domain, size_t domain_len,
                     const uint8_t *msg, size_t len, uint8_t out[VASP_SIG_LEN]);
/* Whether sig (r || s) is key's signature of domain || msg, as above. */
bool vasp_verify_p1363(EVP_PKEY *key, const uint8_t *domain, size_t domain_len,
                       const uint8_t *msg, size_t len, const uint8_t sig[VASP_SIG_LEN]);

/* quote.c: the quote both the ASP and the instances give. */
int vasp_quote_make(vasp_err *err, EVP_PKEY *key, const vasp_regs *regs, uint32_t alg,
                    uint32_t reg_mask, const uint8_t *nonce, size_t nonce_len,
                    uint8_t **out, size_t *out_len);

/* state.c */
/* Loads the state, or provisions and writes it when there is none. */
int vasp_state_open(vasp_asp *asp);
/* Writes the state atomically. Callers change the ledger first and undo the
 * change when this fails with *written false (the file is unchanged). When
 * it fails with *written true, the new file is in place but its directory
 * could not be synced: the change must be kept, since undoing it in memory
 * would hand out again a value the file already holds. written may be NULL. */
int vasp_state_save(vasp_asp *asp, vasp_err *err, bool *written);
/* Reads and decrypts the state file without locking the directory or
 * creating anything (a reader beside a running server); asp has its paths. */
int vasp_state_peek(vasp_asp *asp);

/* ledger.c. The add functions append (so undo drops the last element) and
 * return NULL/false when out of memory or at the limit. */
vasp_counter *vasp_ledger_counter(vasp_ledger *l, const char *name);
vasp_counter *vasp_ledger_add_counter(vasp_ledger *l, const char *name);
vasp_vm_record *vasp_ledger_vm(vasp_ledger *l, const char *uuid);
vasp_vm_record *vasp_ledger_add_vm(vasp_ledger *l, const char *uuid);
void vasp_ledger_drop_last_vm(vasp_ledger *l);
/* Index of a registered snapshot, -1 when not registered. */
ptrdiff_t vasp_vm_snapshot_index(const vasp_vm_record *vm, uint64_t counter);
bool vasp_vm_add_snapshot(vasp_vm_record *vm, uint64_t counter);
bool vasp_ledger_destroyed(const vasp_ledger *l, const char *inst_id);
bool vasp_ledger_add_destroyed(vasp_ledger *l, const char *inst_id);
void vasp_ledger_write(const vasp_ledger *l, vasp_wbuf *w);
bool vasp_ledger_parse(vasp_ledger *l, vasp_rbuf *r);
void vasp_ledger_free(vasp_ledger *l);

/* fsio.c */
char *vasp_path_join(const char *dir, const char *name);
int vasp_mkdirs(vasp_err *err, const char *dir);
/* Exclusive, non-blocking flock on dir/asp.lock, held through *fd. */
int vasp_lock_dir(vasp_err *err, const char *dir, int *fd);
/* Reads the whole regular file open on fd; VASP_E_STATE when it is larger
 * than max (our files never are), VASP_E_IO when it cannot be read. */
int vasp_read_fd(vasp_err *err, int fd, const char *path, size_t max, vasp_bytes *out);
/* As vasp_read_fd by path; *missing set (and VASP_E_IO returned) when the
 * file does not exist. */
int vasp_read_file(vasp_err *err, const char *path, size_t max, vasp_bytes *out,
                   bool *missing);
/* Temp file in the same directory, write, fsync, rename, fsync directory.
 * *replaced (may be NULL) tells whether the rename happened, so a failure
 * after it (the directory sync) can be told from one that left path as it
 * was. */
int vasp_write_atomic(vasp_err *err, const char *path, const uint8_t *data, size_t len,
                      unsigned mode, bool *replaced);
/* Creates path (O_EXCL, mode), writes, fsyncs it and its directory; removes
 * it again when the write fails. */
int vasp_write_new_file(vasp_err *err, const char *path, const uint8_t *data, size_t len,
                        unsigned mode);
/* fsync of the directory holding path. */
int vasp_sync_parent(vasp_err *err, const char *path);

/* disk.c: streams the regular file at path through the digests of the banks
 * in mask (bit 1 << alg), writing digest[alg] for each and the identity the
 * file had while read to *id; VASP_E_IO when it cannot be read, is not a
 * regular file, or changed while it was read. Constant memory, any size. */
int vasp_digest_path(vasp_err *err, const char *path, uint32_t mask,
                     uint8_t digest[VASP_NUM_BANKS][VASP_DIGEST_LEN], vasp_file_id *id);

/* instance.c: a new instance handle around parsed parts (import uses it). */
vasp_instance *vasp_instance_alloc(vasp_asp *asp);
void vasp_instance_free(vasp_instance *inst);
/* The handle-taking constructors (create, import) report on the ASP and on
 * the thread's slot, so either place the caller looks finds the message. */
int vasp_fail_ctor(vasp_asp *asp, int rc);

#endif
