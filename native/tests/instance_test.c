/* vASP instances: certificate and binding, registers and quotes, export and
 * import with every refusal, destroy. */
#include "_asp_fixture.h"

#include <openssl/x509v3.h>
#include <stdlib.h>

#define VM "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
#define VM_UPPER "6F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9"
#define OTHER_VM "0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"
#define BINDING_OID "2.25.115277701154737049670922511128754870117.1"
/* Export blob offsets (docs/quote-format.md). */
#define OFF_ASP_ID 10
#define OFF_COUNTER 110
#define HEADER_LEN 122

static const uint8_t config[32] = "config digest of the VM 6f1e2d3";

static vasp_instance *make(vasp_asp *a, const char *vm) {
  vasp_instance *inst = NULL;
  if (vasp_instance_create(a, vm, config, &inst) != VASP_OK)
    fprintf(stderr, "    create: %s\n", vasp_errmsg(a));
  return inst;
}

/* Exports, returning the blob (vasp_free) and its counter. */
static uint8_t *export_blob(vasp_instance *inst, uint32_t flags, size_t *len, uint64_t *counter) {
  uint8_t *blob = NULL;
  if (vasp_instance_export(inst, flags, &blob, len, counter) != VASP_OK)
    fprintf(stderr, "    export: %s\n", vasp_errmsg(inst));
  return blob;
}

/* Imports, closing any instance it got; returns the code. */
static int import_rc(vasp_asp *a, const char *vm, const uint8_t *blob, size_t len,
                     uint32_t flags) {
  vasp_instance *inst = (vasp_instance *)1;
  int rc = vasp_instance_import(a, vm, blob, len, flags, &inst);
  if ((rc == VASP_OK) != (inst != NULL)) return -1;
  vasp_instance_close(inst);
  return rc;
}

/* The binding extension, decoded: VM UUID, instance ID, config digest. */
static bool binding(X509 *x, char *uuid, char *id, uint8_t *digest, int *critical) {
  ASN1_OBJECT *oid = OBJ_txt2obj(BINDING_OID, 1);
  int at = oid ? X509_get_ext_by_OBJ(x, oid, -1) : -1;
  ASN1_OBJECT_free(oid);
  if (at < 0) return false;
  X509_EXTENSION *ext = X509_get_ext(x, at);
  *critical = X509_EXTENSION_get_critical(ext);
  const ASN1_OCTET_STRING *value = X509_EXTENSION_get_data(ext);
  const unsigned char *p = ASN1_STRING_get0_data(value);
  STACK_OF(ASN1_TYPE) *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, ASN1_STRING_length(value));
  bool ok = seq && sk_ASN1_TYPE_num(seq) == 3 &&
            ASN1_TYPE_get(sk_ASN1_TYPE_value(seq, 0)) == V_ASN1_UTF8STRING &&
            ASN1_TYPE_get(sk_ASN1_TYPE_value(seq, 1)) == V_ASN1_UTF8STRING &&
            ASN1_TYPE_get(sk_ASN1_TYPE_value(seq, 2)) == V_ASN1_OCTET_STRING;
  for (int i = 0; ok && i < 3; i++) {
    const ASN1_STRING *s = sk_ASN1_TYPE_value(seq, i)->value.asn1_string;
    size_t n = (size_t)ASN1_STRING_length(s);
    char *dst = i == 0 ? uuid : i == 1 ? id : (char *)digest;
    size_t max = i == 0 ? 36 : 32;
    ok = n == max;
    if (ok) memcpy(dst, ASN1_STRING_get0_data(s), n);
    if (ok && i < 2) dst[n] = '\0';
  }
  sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
  return ok;
}

TEST(instance_certificate_chains_to_the_ca_and_carries_the_binding) {
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  vasp_instance *inst = make(a, VM_UPPER);
  char id[33] = "";
  uint8_t *der = NULL;
  size_t len = 0;
  int rc_id = inst ? vasp_instance_id(inst, id) : -1;
  int rc_cert = inst ? vasp_instance_cert(inst, &der, &len) : -1;
  X509 *ca = fx_asp_cert(a, VASP_CERT_CA), *ek = fx_asp_cert(a, VASP_CERT_EK),
       *ak = fx_asp_cert(a, VASP_CERT_AK), *leaf = rc_cert == VASP_OK ? fx_x509(der, len) : NULL;
  vasp_instance_close(inst);
  vasp_asp_close(a);
  bool got = rc_id == VASP_OK && ca && ek && ak && leaf;
  bool verified = got && fx_verify_chain(ca, leaf, (X509 *[]){ek, ak}, 2);

  char uuid[37] = "", bound_id[33] = "", cn[80] = "", want_cn[80];
  uint8_t digest[32] = {0};
  int critical = -1;
  bool bound = got && binding(leaf, uuid, bound_id, digest, &critical);
  bool id_hex = strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32;
  if (got)
    X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof cn);
  snprintf(want_cn, sizeof want_cn, "vASP instance %s", id);
  GENERAL_NAMES *san = got ? X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL) : NULL;
  const GENERAL_NAME *uri = san && sk_GENERAL_NAME_num(san) == 1 ? sk_GENERAL_NAME_value(san, 0)
                                                                 : NULL;
  bool san_ok = uri && uri->type == GEN_URI &&
                strcmp((const char *)ASN1_STRING_get0_data(uri->d.uniformResourceIdentifier),
                       "urn:uuid:" VM) == 0;
  GENERAL_NAMES_free(san);
  bool leaf_profile = got && !X509_check_ca(leaf) &&
                      X509_get_key_usage(leaf) == KU_DIGITAL_SIGNATURE;
  X509_free(ca);
  X509_free(ek);
  X509_free(ak);
  X509_free(leaf);
  CHECK(got && verified);
  CHECK(bound && critical == 0);
  CHECK(strcmp(uuid, VM) == 0 && strcmp(bound_id, id) == 0 && id_hex);
  CHECK(memcmp(digest, config, 32) == 0);
  CHECK(strcmp(cn, want_cn) == 0 && san_ok && leaf_profile);
}

TEST(instance_registers_and_quote_verify_with_the_instance_key) {
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  vasp_instance *inst = make(a, VM);
  CHECK(inst);
  uint8_t want[32] = {0}, got[32], nonce[32] = "tenant nonce", *q = NULL, *der = NULL;
  size_t len = 0, der_len = 0;
  int ext = vasp_instance_extend(inst, 8, (const uint8_t *)"vmlinuz", 7, "kernel");
  fx_extend(VASP_ALG_SHA256, want, "vmlinuz", 7);
  int read = vasp_instance_read(inst, VASP_ALG_SHA256, 8, got);
  int quote = vasp_instance_quote(inst, VASP_ALG_SHA256, 1u << 8, nonce, sizeof nonce, &q, &len);
  int bad_mask = vasp_instance_quote(inst, VASP_ALG_SHA256, 0, nonce, 8, &q, &len);
  int bad_reg = vasp_instance_extend(inst, 24, NULL, 0, "x");
  vasp_instance_cert(inst, &der, &der_len);
  X509 *leaf = fx_x509(der, der_len);
  uint8_t asp_reg[32], zero[32] = {0};
  vasp_asp_read(a, VASP_ALG_SHA256, 8, asp_reg); /* the ASP's own bank is separate */
  vasp_instance_close(inst);
  vasp_asp_close(a);
  fx_quote p;
  bool parsed = quote == VASP_OK && fx_parse_quote(q, len, &p);
  bool verifies = parsed && leaf && p.n_regs == 1 && !memcmp(p.regs, got, 32) &&
                  fx_verify_p1363(X509_get0_pubkey(leaf), q, p.msg_len, p.sig);
  vasp_free(q);
  X509_free(leaf);
  CHECK(ext == VASP_OK && read == VASP_OK && memcmp(got, want, 32) == 0);
  CHECK(verifies);
  CHECK(bad_mask == VASP_E_ARG && bad_reg == VASP_E_ARG);
  CHECK(memcmp(asp_reg, zero, 32) == 0);
}

/* Everything observable about an instance, for before/after comparisons. */
typedef struct snapshot {
  char id[33];
  uint8_t *cert, *log;
  size_t cert_len, log_len;
  uint8_t regs[2][24][32];
} snapshot;

static bool observe(vasp_instance *inst, snapshot *s) {
  memset(s, 0, sizeof *s);
  bool ok = vasp_instance_id(inst, s->id) == VASP_OK &&
            vasp_instance_cert(inst, &s->cert, &s->cert_len) == VASP_OK &&
            vasp_instance_event_log(inst, &s->log, &s->log_len) == VASP_OK;
  for (uint32_t alg = 0; ok && alg < 2; alg++)
    for (uint32_t r = 0; ok && r < 24; r++)
      ok = vasp_instance_read(inst, alg, r, s->regs[alg][r]) == VASP_OK;
  return ok;
}

static bool same_snapshot(const snapshot *a, const snapshot *b) {
  return !strcmp(a->id, b->id) && a->cert_len == b->cert_len &&
         !memcmp(a->cert, b->cert, a->cert_len) && a->log_len == b->log_len &&
         !memcmp(a->log, b->log, a->log_len) && !memcmp(a->regs, b->regs, sizeof a->regs);
}

static void drop(snapshot *s) {
  vasp_free(s->cert);
  vasp_free(s->log);
}

TEST(instance_export_and_import_round_trip_keeps_registers_log_id_and_certificate) {
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  vasp_instance *inst = make(a, VM);
  CHECK(inst);
  vasp_instance_extend(inst, 0, (const uint8_t *)"fw", 2, "firmware \"OVMF\"");
  vasp_instance_extend(inst, 9, (const uint8_t *)"cmd", 3, "cmdline");
  vasp_instance_extend(inst, 0, NULL, 0, "separator");
  snapshot before, after;
  bool seen = observe(inst, &before);
  size_t len = 0;
  uint64_t counter = 0;
  uint8_t *blob = export_blob(inst, 0, &len, &counter);
  vasp_instance_close(inst);
  vasp_instance *back = NULL;
  int rc = blob ? vasp_instance_import(a, VM_UPPER, blob, len, 0, &back) : -1;
  if (rc) fprintf(stderr, "    import: %s\n", vasp_errmsg(a));
  bool seen_after = rc == VASP_OK && observe(back, &after);
  /* The imported instance still quotes with the certified key. */
  uint8_t *q = NULL;
  size_t q_len = 0;
  int quote = back ? vasp_instance_quote(back, 1, 1, (const uint8_t *)"n", 1, &q, &q_len) : -1;
  uint8_t *der = NULL;
  size_t der_len = 0;
  X509 *leaf = back && vasp_instance_cert(back, &der, &der_len) == VASP_OK ? fx_x509(der, der_len)
                                                                           : NULL;
  fx_quote p;
  bool verifies = quote == VASP_OK && leaf && fx_parse_quote(q, q_len, &p) &&
                  fx_verify_p1363(X509_get0_pubkey(leaf), q, p.msg_len, p.sig);
  vasp_free(q);
  X509_free(leaf);
  bool same = seen && seen_after && same_snapshot(&before, &after);
  drop(&before);
  if (seen_after) drop(&after);
  vasp_instance_close(back);
  vasp_free(blob);
  vasp_asp_close(a);
  CHECK(blob && counter == 1 && len > HEADER_LEN + 28);
  CHECK(rc == VASP_OK && same);
  CHECK(verifies);
}

TEST(instance_import_refuses_tampered_truncated_and_foreign_blobs_with_their_codes) {
  const char *root = test_tmpdir();
  vasp_asp *a = fx_open(root), *b = fx_open(fx_path(root, "b"));
  CHECK(a && b);
  vasp_instance *inst = make(a, VM);
  size_t len = 0;
  uint64_t counter = 0;
  uint8_t *blob = inst ? export_blob(inst, 0, &len, &counter) : NULL;
  vasp_instance_close(inst);
  int foreign = blob ? import_rc(b, VM, blob, len, 0) : -1;
  bool foreign_said = strstr(vasp_errmsg(b), "another ASP") != NULL;
  int other_vm = blob ? import_rc(a, OTHER_VM, blob, len, 0) : -1;
  bool other_said = strstr(vasp_errmsg(a), "blob is for VM " VM ", not " OTHER_VM) != NULL;
  bool thread_said = strstr(vasp_errmsg(NULL), "not " OTHER_VM) != NULL;
  int truncated = blob ? import_rc(a, VM, blob, HEADER_LEN, 0) : -1;
  bool truncated_said = strstr(vasp_errmsg(a), "not a vASP export blob") != NULL;
  int altered = -1, counter_changed = -1, asp_changed = -1;
  bool altered_said = false;
  if (blob) {
    blob[len - 40] ^= 0x04;
    altered = import_rc(a, VM, blob, len, 0);
    altered_said = strstr(vasp_errmsg(a), "blob was altered") != NULL;
    blob[len - 40] ^= 0x04;
    blob[OFF_COUNTER] ^= 0x02; /* the header is authenticated too */
    counter_changed = import_rc(a, VM, blob, len, 0);
    blob[OFF_COUNTER] ^= 0x02;
    blob[OFF_ASP_ID] ^= 0x80;
    asp_changed = import_rc(a, VM, blob, len, 0);
    blob[OFF_ASP_ID] ^= 0x80;
  }
  int intact = blob ? import_rc(a, VM, blob, len, 0) : -1;
  int bad_uuid = blob ? import_rc(a, "6f1e2d3c4b5a49788695a4b3c2d1e0f9", blob, len, 0) : -1;
  int bad_flags = blob ? import_rc(a, VM, blob, len, 2) : -1;
  int null_blob = import_rc(a, VM, NULL, 10, 0);
  vasp_free(blob);
  vasp_asp_close(a);
  vasp_asp_close(b);
  CHECK(blob);
  CHECK(foreign == VASP_E_AUTH && foreign_said);
  CHECK(other_vm == VASP_E_BINDING && other_said && thread_said);
  CHECK(truncated == VASP_E_AUTH && truncated_said);
  CHECK(altered == VASP_E_AUTH && altered_said && counter_changed == VASP_E_AUTH);
  CHECK(asp_changed == VASP_E_AUTH);
  CHECK(intact == VASP_OK);
  CHECK(bad_uuid == VASP_E_ARG && bad_flags == VASP_E_ARG && null_blob == VASP_E_ARG);
}

TEST(instance_import_refuses_an_older_blob_unless_it_is_a_registered_snapshot) {
  const char *dir = test_tmpdir();
  vasp_asp *a = fx_open(dir);
  CHECK(a);
  vasp_instance *inst = make(a, VM);
  CHECK(inst);
  size_t len1 = 0, len2 = 0, len3 = 0;
  uint64_t c1 = 0, c2 = 0, c3 = 0;
  uint8_t *old = export_blob(inst, 0, &len1, &c1);
  uint8_t *snap = export_blob(inst, VASP_SNAPSHOT, &len2, &c2);
  uint8_t *newest = export_blob(inst, 0, &len3, &c3);
  vasp_instance_close(inst);
  bool exported = old && snap && newest && c1 == 1 && c2 == 2 && c3 == 3;
  int older = exported ? import_rc(a, VM, old, len1, 0) : -1;
  bool said = strstr(vasp_errmsg(a), "blob counter 1 is older than the newest export 3") != NULL;
  int older_flagged = exported ? import_rc(a, VM, old, len1, VASP_SNAPSHOT) : -1;
  int snap_plain = exported ? import_rc(a, VM, snap, len2, 0) : -1;
  int snap_flagged = exported ? import_rc(a, VM, snap, len2, VASP_SNAPSHOT) : -1;
  int latest = exported ? import_rc(a, VM, newest, len3, 0) : -1;
  vasp_asp_close(a);
  /* The counters and the registration persist across a restart. */
  a = fx_open(dir);
  int older_again = a && exported ? import_rc(a, VM, old, len1, 0) : -1;
  int snap_again = a && exported ? import_rc(a, VM, snap, len2, VASP_SNAPSHOT) : -1;
  int forget = a ? vasp_asp_snapshot_forget(a, VM_UPPER, 2) : -1;
  int snap_forgotten = a && exported ? import_rc(a, VM, snap, len2, VASP_SNAPSHOT) : -1;
  int forget_again = a ? vasp_asp_snapshot_forget(a, VM, 2) : -1;
  bool forget_said = a && strstr(vasp_errmsg(a), VM) != NULL;
  int forget_bad = a ? vasp_asp_snapshot_forget(a, "nope", 2) : -1;
  vasp_asp_close(a);
  vasp_free(old);
  vasp_free(snap);
  vasp_free(newest);
  CHECK(exported);
  CHECK(older == VASP_E_ROLLBACK && said && older_flagged == VASP_E_ROLLBACK);
  CHECK(snap_plain == VASP_E_ROLLBACK && snap_flagged == VASP_OK && latest == VASP_OK);
  CHECK(older_again == VASP_E_ROLLBACK && snap_again == VASP_OK);
  CHECK(forget == VASP_OK && snap_forgotten == VASP_E_ROLLBACK);
  CHECK(forget_again == VASP_E_NOT_FOUND && forget_said && forget_bad == VASP_E_ARG);
}

TEST(instance_export_counters_are_per_vm) {
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  vasp_instance *x = make(a, VM), *y = make(a, OTHER_VM);
  size_t len = 0;
  uint64_t cx1 = 0, cx2 = 0, cy = 0;
  uint8_t *b1 = x ? export_blob(x, 0, &len, &cx1) : NULL;
  vasp_free(b1);
  uint8_t *b2 = x ? export_blob(x, 0, &len, &cx2) : NULL;
  vasp_free(b2);
  uint8_t *b3 = y ? export_blob(y, 0, &len, &cy) : NULL;
  vasp_free(b3);
  int bad_flags = x ? vasp_instance_export(x, 4, &b1, &len, &cx1) : -1;
  int null_out = x ? vasp_instance_export(x, 0, NULL, &len, &cx1) : -1;
  vasp_instance_close(x);
  vasp_instance_close(y);
  vasp_asp_close(a);
  CHECK(b1 && b2 && b3 && cx2 == 2 && cy == 1);
  CHECK(bad_flags == VASP_E_ARG && null_out == VASP_E_ARG);
}

TEST(instance_destroy_makes_its_blobs_unimportable_also_after_a_restart) {
  const char *dir = test_tmpdir();
  vasp_asp *a = fx_open(dir);
  CHECK(a);
  vasp_instance *inst = make(a, VM);
  CHECK(inst);
  char id[33] = "";
  vasp_instance_id(inst, id);
  size_t len = 0;
  uint64_t counter = 0;
  uint8_t *blob = export_blob(inst, 0, &len, &counter);
  int destroyed = vasp_instance_destroy(inst);
  int refused = blob ? import_rc(a, VM, blob, len, 0) : -1;
  bool said = strstr(vasp_errmsg(a), id) != NULL && id[0];
  vasp_asp_close(a);
  a = fx_open(dir);
  int refused_again = a && blob ? import_rc(a, VM, blob, len, 0) : -1;
  /* An unrelated instance of the same VM is unaffected. */
  vasp_instance *fresh = a ? make(a, VM) : NULL;
  uint8_t *blob2 = fresh ? export_blob(fresh, 0, &len, &counter) : NULL;
  vasp_instance_close(fresh);
  int other = blob2 ? import_rc(a, VM, blob2, len, 0) : -1;
  vasp_free(blob);
  vasp_free(blob2);
  vasp_asp_close(a);
  CHECK(blob && destroyed == VASP_OK);
  CHECK(refused == VASP_E_DESTROYED && said);
  CHECK(refused_again == VASP_E_DESTROYED);
  CHECK(other == VASP_OK && counter == 2);
}

TEST(instance_create_refuses_malformed_uuids_and_null_arguments) {
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  const char *bad[] = {"",
                       "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f",
                       "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9a",
                       "6f1e2d3c4b5a-4978-8695-a4b3c2d1e0f9-",
                       "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0fg",
                       "{6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0}"};
  int bad_rc = VASP_E_ARG;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    vasp_instance *inst = (vasp_instance *)1;
    int rc = vasp_instance_create(a, bad[i], config, &inst);
    if (rc != VASP_E_ARG || inst != NULL) bad_rc = rc;
  }
  bool named = strstr(vasp_errmsg(a), "{6f1e2d3c") != NULL;
  vasp_instance *inst = (vasp_instance *)1;
  int null_uuid = vasp_instance_create(a, NULL, config, &inst);
  int null_digest = vasp_instance_create(a, VM, NULL, &inst);
  int null_asp = vasp_instance_create(NULL, VM, config, &inst);
  int null_out = vasp_instance_create(a, VM, config, NULL);
  vasp_asp_close(a);
  CHECK(bad_rc == VASP_E_ARG && named);
  CHECK(null_uuid == VASP_E_ARG && null_digest == VASP_E_ARG && null_asp == VASP_E_ARG);
  CHECK(null_out == VASP_E_ARG && inst == NULL);
}

TEST(instance_calls_on_a_null_handle_give_arg_errors) {
  uint8_t buf[32], *out;
  size_t len;
  uint64_t counter;
  char id[33];
  vasp_instance *inst;
  CHECK_RC(vasp_instance_id(NULL, id), VASP_E_ARG, NULL);
  CHECK_RC(vasp_instance_cert(NULL, &out, &len), VASP_E_ARG, NULL);
  CHECK_RC(vasp_instance_extend(NULL, 0, buf, 1, "d"), VASP_E_ARG, NULL);
  CHECK_RC(vasp_instance_read(NULL, 0, 0, buf), VASP_E_ARG, NULL);
  CHECK_RC(vasp_instance_event_log(NULL, &out, &len), VASP_E_ARG, NULL);
  CHECK_RC(vasp_instance_quote(NULL, 0, 1, buf, 8, &out, &len), VASP_E_ARG, NULL);
  CHECK_RC(vasp_instance_export(NULL, 0, &out, &len, &counter), VASP_E_ARG, NULL);
  CHECK_RC(vasp_instance_import(NULL, VM, buf, 32, 0, &inst), VASP_E_ARG, NULL);
  CHECK_RC(vasp_instance_import(NULL, VM, buf, 32, 0, NULL), VASP_E_ARG, NULL);
  CHECK_RC(vasp_instance_destroy(NULL), VASP_E_ARG, NULL);
  vasp_instance_close(NULL);
}
