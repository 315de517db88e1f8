/* Private to the export, import and migration files: the blob layouts
 * (docs/quote-format.md) and what the local and migration paths share. */
#ifndef VASP_EXPORT_H
#define VASP_EXPORT_H

#include "_asp.h"

#define EXPORT_MAGIC "VASPEX01"
#define EXPORT_VERSION 1u
#define CONTENT_VERSION 1u
/* magic | version | asp_id | vm_uuid | instance_id | counter | flags */
#define HEADER_LEN (8u + 2u + VASP_ASP_ID_LEN + VASP_UUID_LEN + VASP_INST_ID_HEX + 8u + 4u)
#define OFF_ASP_ID 10u
#define OFF_UUID (OFF_ASP_ID + VASP_ASP_ID_LEN)
#define OFF_ID (OFF_UUID + VASP_UUID_LEN)
#define OFF_COUNTER (OFF_ID + VASP_INST_ID_HEX)
#define OFF_FLAGS (OFF_COUNTER + 8u)
#define KEY_DER_MAX 4096u
#define CERT_DER_MAX 16384u

/* The migration blob: magic | version | source asp_id | recipient key id |
 * vm_uuid | instance_id | counter | ephemeral public key = header; then
 * nonce | ciphertext | tag | signature. */
#define MIGRATE_MAGIC "VASPMG01"
#define MIGRATE_VERSION 1u
/* The HKDF info prefix and the signature's domain. */
#define MIGRATE_DOMAIN "vASP migration v1"
#define MIGRATE_DOMAIN_LEN 17u
#define MG_OFF_SOURCE 10u
#define MG_OFF_RECIPIENT (MG_OFF_SOURCE + VASP_ASP_ID_LEN)
#define MG_OFF_UUID (MG_OFF_RECIPIENT + VASP_DIGEST_LEN)
#define MG_OFF_ID (MG_OFF_UUID + VASP_UUID_LEN)
#define MG_OFF_COUNTER (MG_OFF_ID + VASP_INST_ID_HEX)
#define MG_OFF_EPHEMERAL (MG_OFF_COUNTER + 8u)
#define MG_HEADER_LEN (MG_OFF_EPHEMERAL + VASP_EC_POINT_LEN)
#define MG_MIN_LEN (MG_HEADER_LEN + VASP_NONCE_LEN + VASP_TAG_LEN + VASP_SIG_LEN)

static inline uint64_t vasp_le(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* export.c */
/* Appends what every export blob encrypts: the instance's key, certificate,
 * configuration digest and registers. */
bool vasp_export_content_write(const vasp_instance *inst, vasp_wbuf *w);
/* Writes the blob for `counter` to *blob (left wiped on failure). */
typedef int (*vasp_export_sealer)(vasp_instance *inst, uint64_t counter, void *ctx,
                                  vasp_wbuf *blob);
/* The most a migration may move a VM's counter past its newest here: a
 * destination cannot use the source's counter up. */
#define VASP_MAX_COUNTER_SKIP ((uint64_t)1 << 32)
/* An export: takes the VM's next counter (past `after` too), seals with
 * `seal`, records and persists the counter (and the snapshot), and only then
 * hands the blob out. Messages on inst->err. */
int vasp_export_run(vasp_instance *inst, bool snapshot, uint64_t after, vasp_export_sealer seal,
                    void *ctx, uint8_t **out, size_t *out_len, uint64_t *counter);
/* Records `counter` as the newest of VM vm_uuid (and as a snapshot) in the
 * ledger of asp and persists it; on failure the ledger is as before, unless
 * the file already holds it (see vasp_state_save). */
int vasp_export_record(vasp_asp *asp, vasp_err *err, const char *vm_uuid, uint64_t counter,
                       bool snapshot);

/* migrate_export.c */
/* The AES key of a migration blob: HKDF-SHA256 with IKM = ECDH(priv, peer),
 * salt = the header's recipient key id, info = MIGRATE_DOMAIN || header
 * (MG_HEADER_LEN bytes); wiped on failure. */
bool vasp_migrate_key(EVP_PKEY *priv, EVP_PKEY *peer, const uint8_t *header,
                      uint8_t key[VASP_KEY_LEN]);
/* Appends the migration blob of plain[0..len) (exported content) to the
 * empty *blob: sealed to tk (whose key id is tk_id) and signed by source's
 * AK; *blob is wiped on failure. */
int vasp_migrate_seal(vasp_err *err, vasp_asp *source, EVP_PKEY *tk,
                      const uint8_t tk_id[VASP_DIGEST_LEN], const char *vm_uuid,
                      const char *inst_id, uint64_t counter, const uint8_t *plain, size_t len,
                      vasp_wbuf *blob);

/* import.c */
/* Fills inst's key, certificate, configuration digest and registers from
 * decrypted content; false with r->why. */
bool vasp_export_content_parse(vasp_instance *inst, vasp_rbuf *r);

#endif
