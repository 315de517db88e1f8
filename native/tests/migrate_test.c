/* Migration of an instance between two ASPs: the transport key certificate,
 * the round trip, and every refusal of vasp_instance_export_to and
 * vasp_instance_import_from with its code. */
#include "_asp_fixture.h"
#include "_export.h"

#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#define VM "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
#define OTHER_VM "0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"

static const uint8_t config[32] = "config digest of a migrating VM";

/* A DER certificate the library returned, still in its buffer (vasp_free). */
typedef struct der {
  uint8_t *p;
  size_t len;
} der;

static der cert_of(vasp_asp *a, uint32_t kind) {
  der d = {0};
  if (vasp_asp_cert(a, kind, &d.p, &d.len) != VASP_OK)
    fprintf(stderr, "    cert %u: %s\n", kind, vasp_errmsg(a));
  return d;
}

static vasp_instance *make(vasp_asp *a) {
  vasp_instance *inst = NULL;
  if (vasp_instance_create(a, VM, config, &inst) != VASP_OK)
    fprintf(stderr, "    create: %s\n", vasp_errmsg(a));
  return inst;
}

/* Seals inst to the ASP `to`; the blob (vasp_free) and its counter. */
static der export_to(vasp_instance *inst, vasp_asp *to, uint64_t *counter) {
  der tk = cert_of(to, VASP_CERT_TRANSPORT), blob = {0};
  if (vasp_instance_export_to(inst, tk.p, tk.len, 0, &blob.p, &blob.len, counter) != VASP_OK)
    fprintf(stderr, "    export_to: %s\n", vasp_errmsg(inst));
  vasp_free(tk.p);
  return blob;
}

/* Imports into `a` what `from` sealed, closing any instance it got; the code. */
static int import_rc(vasp_asp *a, const char *vm, der blob, der ak) {
  vasp_instance *inst = (vasp_instance *)1;
  int rc = vasp_instance_import_from(a, vm, blob.p, blob.len, ak.p, ak.len, &inst);
  if ((rc == VASP_OK) != (inst != NULL)) return -1;
  vasp_instance_close(inst);
  return rc;
}

static bool said(const void *handle, const char *text) {
  bool found = strstr(vasp_errmsg(handle), text) != NULL;
  if (!found) fprintf(stderr, "    message \"%s\" lacks \"%s\"\n", vasp_errmsg(handle), text);
  return found;
}

/* A migration blob of inst's current content, sealed by `source` to `to`'s
 * transport key with any counter: what a source that forgot its counter, or
 * an ASP sealing to itself, would send. */
static der forge(vasp_asp *source, vasp_asp *to, vasp_instance *inst, uint64_t counter) {
  vasp_wbuf plain = {0}, blob = {0};
  vasp_err err;
  der d = {0};
  if (vasp_export_content_write(inst, &plain) &&
      vasp_migrate_seal(&err, source, to->tk, to->tk_id, inst->vm_uuid, inst->id, counter,
                        plain.p, plain.len, &blob) == VASP_OK)
    d.p = vasp_wb_take(&blob, &d.len);
  vasp_wb_free(&plain);
  return d;
}

/* Signs the blob again with source's AK after it was changed. */
static void resign(vasp_asp *source, der blob) {
  size_t at = blob.len - VASP_SIG_LEN;
  vasp_sign_p1363(source->ak, (const uint8_t *)MIGRATE_DOMAIN, MIGRATE_DOMAIN_LEN, blob.p, at,
                  blob.p + at);
}

/* Everything observable about an instance, for before/after comparisons. */
typedef struct seen {
  char id[33];
  der cert, log;
  uint8_t regs[2][24][32], config[32];
} seen;

static bool observe(vasp_instance *inst, seen *s) {
  memset(s, 0, sizeof *s);
  bool ok = vasp_instance_id(inst, s->id) == VASP_OK &&
            vasp_instance_cert(inst, &s->cert.p, &s->cert.len) == VASP_OK &&
            vasp_instance_event_log(inst, &s->log.p, &s->log.len) == VASP_OK;
  for (uint32_t alg = 0; ok && alg < 2; alg++)
    for (uint32_t r = 0; ok && r < 24; r++)
      ok = vasp_instance_read(inst, alg, r, s->regs[alg][r]) == VASP_OK;
  memcpy(s->config, inst->config_digest, 32);
  return ok;
}

static bool same_der(der a, der b) { return a.len == b.len && !memcmp(a.p, b.p, a.len); }

/* The same instance, but for its certificate, which the destination issues
 * again (reissued_by checks it). */
static bool same(const seen *a, const seen *b) {
  return !strcmp(a->id, b->id) && same_der(a->log, b->log) &&
         !memcmp(a->regs, b->regs, sizeof a->regs) && !memcmp(a->config, b->config, 32);
}

/* Whether `after`'s certificate certifies `before`'s key, issued by `ak`. */
static bool reissued_by(const seen *before, const seen *after, der ak) {
  const unsigned char *p = before->cert.p, *q = after->cert.p, *r = ak.p;
  X509 *old = d2i_X509(NULL, &p, (long)before->cert.len);
  X509 *now = d2i_X509(NULL, &q, (long)after->cert.len);
  X509 *issuer = ak.p ? d2i_X509(NULL, &r, (long)ak.len) : NULL;
  bool ok = old && now && issuer && EVP_PKEY_eq(X509_get0_pubkey(old), X509_get0_pubkey(now)) == 1 &&
            X509_verify(now, X509_get0_pubkey(issuer)) == 1 && !same_der(before->cert, after->cert);
  X509_free(old);
  X509_free(now);
  X509_free(issuer);
  return ok;
}

static void drop(seen *s) {
  vasp_free(s->cert.p);
  vasp_free(s->log.p);
}

TEST(migrate_transport_key_is_certified_by_the_ak_for_key_agreement_and_new_on_every_open) {
  const char *dir = test_tmpdir();
  vasp_asp *a = fx_open(dir);
  CHECK(a);
  der first = cert_of(a, VASP_CERT_TRANSPORT), ak_first = cert_of(a, VASP_CERT_AK);
  X509 *ca = fx_asp_cert(a, VASP_CERT_CA), *ek = fx_asp_cert(a, VASP_CERT_EK),
       *ak = fx_asp_cert(a, VASP_CERT_AK);
  char want_cn[64], id[65];
  vasp_hex(a->id, 32, id);
  snprintf(want_cn, sizeof want_cn, "vASP transport key %.16s", id);
  vasp_asp_close(a);
  a = fx_open(dir);
  der again = a ? cert_of(a, VASP_CERT_TRANSPORT) : (der){0};
  der ak_again = a ? cert_of(a, VASP_CERT_AK) : (der){0};
  vasp_asp_close(a);
  const unsigned char *p = first.p;
  X509 *tk = first.p ? d2i_X509(NULL, &p, (long)first.len) : NULL;
  bool verified = fx_verify_chain(ca, tk, (X509 *[]){ek, ak}, 2);
  char cn[80] = "";
  if (tk) X509_NAME_get_text_by_NID(X509_get_subject_name(tk), NID_commonName, cn, sizeof cn);
  int ku_at = tk ? X509_get_ext_by_NID(tk, NID_key_usage, -1) : -1;
  int bc_at = tk ? X509_get_ext_by_NID(tk, NID_basic_constraints, -1) : -1;
  bool profile = tk && X509_check_ca(tk) == 0 && X509_get_key_usage(tk) == KU_KEY_AGREEMENT &&
                 ku_at >= 0 && X509_EXTENSION_get_critical(X509_get_ext(tk, ku_at)) &&
                 bc_at >= 0 && X509_EXTENSION_get_critical(X509_get_ext(tk, bc_at)) &&
                 vasp_is_p256(X509_get0_pubkey(tk));
  bool fresh = again.p && !same_der(first, again) && same_der(ak_first, ak_again);
  X509_free(tk);
  X509_free(ca);
  X509_free(ek);
  X509_free(ak);
  vasp_free(first.p);
  vasp_free(again.p);
  vasp_free(ak_first.p);
  vasp_free(ak_again.p);
  CHECK(verified);
  CHECK(strcmp(cn, want_cn) == 0 && profile);
  CHECK(fresh);
}

TEST(migrate_round_trip_keeps_the_whole_instance_and_refuses_a_replay_also_after_a_restart) {
  const char *root = test_tmpdir();
  char dst_dir[512];
  snprintf(dst_dir, sizeof dst_dir, "%s", fx_path(root, "dst"));
  vasp_asp *src = fx_open(fx_path(root, "src")), *dst = fx_open(dst_dir);
  CHECK(src && dst);
  vasp_instance *inst = make(src);
  CHECK(inst);
  vasp_instance_extend(inst, 0, (const uint8_t *)"fw", 2, "firmware \"OVMF\"");
  vasp_instance_extend(inst, 9, (const uint8_t *)"cmd", 3, "cmdline");
  der local = {0};
  uint64_t c_local = 0, c = 0, c_next = 0;
  int exported = vasp_instance_export(inst, 0, &local.p, &local.len, &c_local);
  seen before, after;
  bool seen_before = observe(inst, &before);
  der blob = export_to(inst, dst, &c);
  der src_ak = cert_of(src, VASP_CERT_AK);
  /* The source's older blob is superseded by the transfer's counter. */
  vasp_instance *back = NULL;
  int src_old = vasp_instance_import(src, VM, local.p, local.len, 0, &back);
  vasp_instance *moved = NULL;
  int rc = vasp_instance_import_from(dst, VM, blob.p, blob.len, src_ak.p, src_ak.len, &moved);
  if (rc) fprintf(stderr, "    import_from: %s\n", vasp_errmsg(dst));
  bool seen_after = rc == VASP_OK && observe(moved, &after);
  /* It quotes with its certified key on the destination. */
  uint8_t *q = NULL;
  size_t q_len = 0;
  int quote = moved ? vasp_instance_quote(moved, 0, 1, (const uint8_t *)"n", 1, &q, &q_len) : -1;
  fx_quote fq;
  const unsigned char *p = after.cert.p;
  X509 *leaf = seen_after ? d2i_X509(NULL, &p, (long)after.cert.len) : NULL;
  bool verifies = quote == VASP_OK && leaf && fx_parse_quote(q, q_len, &fq) &&
                  fx_verify_p1363(X509_get0_pubkey(leaf), q, fq.msg_len, fq.sig);
  X509_free(leaf);
  vasp_free(q);
  der next = {0};
  int next_rc = moved ? vasp_instance_export(moved, 0, &next.p, &next.len, &c_next) : -1;
  vasp_instance_close(moved);
  int replay = import_rc(dst, VM, blob, src_ak);
  bool replay_said = said(dst, "replayed or older transfer: counter 2, newest 3");
  /* A restart keeps the record: the same blob is sealed to the old boot's
   * transport key, and one sealed to the new boot with an old counter is a
   * replay still. */
  vasp_asp_close(dst);
  dst = fx_open(dst_dir);
  int after_restart = dst ? import_rc(dst, VM, blob, src_ak) : -1;
  bool restart_said = dst && said(dst, "sealed to another ASP's transport key");
  der old = dst ? forge(src, dst, inst, c_next) : (der){0};
  int old_again = old.p ? import_rc(dst, VM, old, src_ak) : -1;
  bool old_said = dst && said(dst, "counter 3, newest 3");
  der newer = dst ? forge(src, dst, inst, c_next + 1) : (der){0};
  int newer_rc = newer.p ? import_rc(dst, VM, newer, src_ak) : -1;
  bool same_state = seen_before && seen_after && same(&before, &after);
  der dst_ak = dst ? cert_of(dst, VASP_CERT_AK) : (der){0};
  bool reissued = same_state && reissued_by(&before, &after, dst_ak);
  vasp_free(dst_ak.p);
  bool shaped = blob.len > MG_MIN_LEN && blob.p && memcmp(blob.p, "VASPMG01", 8) == 0;
  drop(&before);
  if (seen_after) drop(&after);
  vasp_instance_close(back);
  vasp_instance_close(inst);
  vasp_asp_close(src);
  vasp_asp_close(dst);
  vasp_free(local.p);
  vasp_free(blob.p);
  vasp_free(src_ak.p);
  vasp_free(next.p);
  vasp_free(old.p);
  vasp_free(newer.p);
  CHECK(exported == VASP_OK && c_local == 1 && shaped && c == 2);
  CHECK(src_old == VASP_E_ROLLBACK);
  CHECK(rc == VASP_OK && same_state && verifies && reissued);
  CHECK(next_rc == VASP_OK && c_next == 3);
  CHECK(replay == VASP_E_ROLLBACK && replay_said);
  CHECK(after_restart == VASP_E_AUTH && restart_said);
  CHECK(old_again == VASP_E_ROLLBACK && old_said);
  CHECK(newer_rc == VASP_OK);
}

/* Three ASPs: the source, the destination and a third; an instance on the
 * source and the AK certificates. */
typedef struct trio {
  vasp_asp *src, *dst, *third;
  vasp_instance *inst;
  der src_ak, third_ak;
} trio;

static bool trio_open(trio *t, const char *root) {
  memset(t, 0, sizeof *t);
  t->src = fx_open(fx_path(root, "src"));
  t->dst = fx_open(fx_path(root, "dst"));
  t->third = fx_open(fx_path(root, "third"));
  t->inst = t->src ? make(t->src) : NULL;
  if (t->src) t->src_ak = cert_of(t->src, VASP_CERT_AK);
  if (t->third) t->third_ak = cert_of(t->third, VASP_CERT_AK);
  return t->dst && t->inst && t->src_ak.p && t->third_ak.p;
}

static void trio_close(trio *t) {
  vasp_instance_close(t->inst);
  vasp_asp_close(t->src);
  vasp_asp_close(t->dst);
  vasp_asp_close(t->third);
  vasp_free(t->src_ak.p);
  vasp_free(t->third_ak.p);
}

TEST(migrate_import_refuses_blobs_for_another_recipient_vm_or_signer_and_truncated_ones) {
  trio t;
  bool opened = trio_open(&t, test_tmpdir());
  uint64_t c = 0;
  der to_third = opened ? export_to(t.inst, t.third, &c) : (der){0};
  der blob = opened ? export_to(t.inst, t.dst, &c) : (der){0};
  int third = to_third.p ? import_rc(t.dst, VM, to_third, t.src_ak) : -1;
  bool third_said = said(t.dst, "migration blob of VM " VM " is sealed to another ASP's "
                                "transport key");
  int other_vm = blob.p ? import_rc(t.dst, OTHER_VM, blob, t.src_ak) : -1;
  bool other_said = said(t.dst, "migration blob is for VM " VM ", not " OTHER_VM);
  int wrong_ak = blob.p ? import_rc(t.dst, VM, blob, t.third_ak) : -1;
  bool wrong_said = said(t.dst, "is not signed by the given source AK");
  int cut_one = blob.p ? import_rc(t.dst, VM, (der){blob.p, blob.len - 1}, t.src_ak) : -1;
  int cut_min = blob.p ? import_rc(t.dst, VM, (der){blob.p, MG_MIN_LEN - 1}, t.src_ak) : -1;
  bool cut_said = said(t.dst, "not a vASP migration blob (306 bytes)");
  int empty = blob.p ? import_rc(t.dst, VM, (der){blob.p, 0}, t.src_ak) : -1;
  int local = -1;
  if (blob.p) {
    der exported = {0};
    vasp_instance_export(t.inst, 0, &exported.p, &exported.len, &c);
    local = import_rc(t.dst, VM, exported, t.src_ak);
    vasp_free(exported.p);
  }
  /* An ASP sealing to itself (export_to refuses that; a forged blob). */
  der self = opened ? forge(t.dst, t.dst, t.inst, 100) : (der){0};
  der dst_ak = opened ? cert_of(t.dst, VASP_CERT_AK) : (der){0};
  int from_self = self.p ? import_rc(t.dst, VM, self, dst_ak) : -1;
  bool self_said = said(t.dst, "sealed by this ASP itself");
  /* Argument mistakes come first. */
  int bad_uuid = blob.p ? import_rc(t.dst, "not-a-uuid", blob, t.src_ak) : -1;
  int bad_ak = blob.p ? import_rc(t.dst, VM, blob, (der){blob.p, 10}) : -1;
  bool bad_ak_said = said(t.dst, "source AK certificate (10 bytes)");
  int null_blob = import_rc(t.dst, VM, (der){NULL, 10}, t.src_ak);
  /* After all those refusals, the blob still imports: none used its counter. */
  int intact = blob.p ? import_rc(t.dst, VM, blob, t.src_ak) : -1;
  vasp_free(to_third.p);
  vasp_free(blob.p);
  vasp_free(self.p);
  vasp_free(dst_ak.p);
  trio_close(&t);
  CHECK(opened && to_third.p && blob.p);
  CHECK(third == VASP_E_AUTH && third_said);
  CHECK(other_vm == VASP_E_BINDING && other_said);
  CHECK(wrong_ak == VASP_E_AUTH && wrong_said);
  CHECK(cut_one == VASP_E_AUTH && cut_min == VASP_E_AUTH && cut_said && empty == VASP_E_AUTH);
  CHECK(local == VASP_E_AUTH);
  CHECK(from_self == VASP_E_ARG && self_said);
  CHECK(bad_uuid == VASP_E_ARG && bad_ak == VASP_E_ARG && bad_ak_said);
  CHECK(null_blob == VASP_E_ARG);
  CHECK(intact == VASP_OK);
}

TEST(migrate_import_refuses_every_single_byte_change_and_a_resigned_one_as_altered) {
  trio t;
  bool opened = trio_open(&t, test_tmpdir());
  uint64_t c = 0;
  der blob = opened ? export_to(t.inst, t.dst, &c) : (der){0};
  size_t accepted = 0, odd = 0;
  int odd_rc = 0;
  for (size_t i = 0; blob.p && i < blob.len; i++) {
    blob.p[i] ^= 0x01;
    int rc = import_rc(t.dst, VM, blob, t.src_ak);
    blob.p[i] ^= 0x01;
    /* A flipped UUID character may still spell a UUID: another VM. */
    bool expected = rc == VASP_E_AUTH ||
                    (rc == VASP_E_BINDING && i >= MG_OFF_UUID && i < MG_OFF_ID);
    accepted += rc == VASP_OK;
    if (!expected) odd++, odd_rc = rc;
  }
  /* Behind the signature, the AEAD: a change the source's AK signed again
   * (the counter in the authenticated header, a ciphertext byte, the tag). */
  size_t at[] = {MG_OFF_COUNTER, MG_HEADER_LEN + VASP_NONCE_LEN + 5,
                 blob.len - VASP_SIG_LEN - 1};
  int altered = VASP_E_AUTH;
  bool altered_said = true;
  for (size_t k = 0; blob.p && k < sizeof at / sizeof *at; k++) {
    der copy = {malloc(blob.len), blob.len};
    memcpy(copy.p, blob.p, blob.len);
    copy.p[at[k]] ^= 0x01;
    resign(t.src, copy);
    int rc = import_rc(t.dst, VM, copy, t.src_ak);
    if (rc != VASP_E_AUTH) altered = rc;
    altered_said = altered_said && said(t.dst, "was altered");
    free(copy.p);
  }
  int intact = blob.p ? import_rc(t.dst, VM, blob, t.src_ak) : -1;
  vasp_free(blob.p);
  trio_close(&t);
  if (odd) fprintf(stderr, "    %zu flips gave an unexpected code, e.g. %d\n", odd, odd_rc);
  CHECK(opened && blob.p);
  CHECK(accepted == 0 && odd == 0);
  CHECK(altered == VASP_E_AUTH && altered_said);
  CHECK(intact == VASP_OK);
}

TEST(migrate_import_refuses_an_instance_destroyed_on_the_destination) {
  trio t;
  bool opened = trio_open(&t, test_tmpdir());
  uint64_t c1 = 0, c2 = 0;
  der first = opened ? export_to(t.inst, t.dst, &c1) : (der){0};
  vasp_instance *moved = NULL;
  int rc = first.p ? vasp_instance_import_from(t.dst, VM, first.p, first.len, t.src_ak.p,
                                               t.src_ak.len, &moved)
                   : -1;
  char id[33] = "";
  if (moved) vasp_instance_id(moved, id);
  int destroyed = moved ? vasp_instance_destroy(moved) : -1;
  der again = opened ? export_to(t.inst, t.dst, &c2) : (der){0};
  int refused = again.p ? import_rc(t.dst, VM, again, t.src_ak) : -1;
  bool named = id[0] && said(t.dst, id) && said(t.dst, "was destroyed");
  vasp_free(first.p);
  vasp_free(again.p);
  trio_close(&t);
  CHECK(rc == VASP_OK && destroyed == VASP_OK && c2 == c1 + 1);
  CHECK(refused == VASP_E_DESTROYED && named);
}

/* A self-signed certificate for key with the given key usage (NULL: none). */
static der self_signed(EVP_PKEY *key, const char *key_usage) {
  X509 *x = X509_new();
  X509_NAME *name = X509_NAME_new();
  der d = {0};
  X509V3_CTX ctx;
  bool ok = x && name && X509_set_version(x, X509_VERSION_3) == 1 &&
            ASN1_INTEGER_set(X509_get_serialNumber(x), 7) == 1 &&
            X509_gmtime_adj(X509_getm_notBefore(x), 0) && X509_gmtime_adj(X509_getm_notAfter(x), 3600) &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"t", -1,
                                       -1, 0) == 1 &&
            X509_set_subject_name(x, name) == 1 && X509_set_issuer_name(x, name) == 1 &&
            X509_set_pubkey(x, key) == 1;
  if (ok && key_usage) {
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_key_usage, key_usage);
    ok = ext && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
  }
  int n = ok && X509_sign(x, key, EVP_sha256()) > 0 ? i2d_X509(x, NULL) : 0;
  if (n > 0 && (d.p = malloc((size_t)n))) {
    uint8_t *p = d.p;
    d.len = (size_t)i2d_X509(x, &p);
  }
  X509_NAME_free(name);
  X509_free(x);
  return d;
}

TEST(migrate_export_refuses_a_certificate_that_is_no_p256_key_agreement_key) {
  trio t;
  bool opened = trio_open(&t, test_tmpdir());
  CHECK(opened);
  EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
  EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  der certs[] = {
      self_signed(rsa, "critical,keyAgreement,keyEncipherment"),
      self_signed(p384, "critical,keyAgreement"),
      self_signed(p256, "critical,digitalSignature"),
      self_signed(p256, NULL),
      t.src_ak, /* the AK: keyCertSign, digitalSignature */
  };
  const char *why[] = {"no EC P-256 key", "no EC P-256 key", "lacks keyAgreement",
                       "lacks keyAgreement", "lacks keyAgreement"};
  der good = self_signed(p256, "critical,keyAgreement"), own = cert_of(t.src, VASP_CERT_TRANSPORT);
  uint8_t *out = (uint8_t *)1;
  size_t len = 7;
  uint64_t counter = 7;
  int bad = VASP_E_ARG;
  bool bad_said = true;
  for (size_t i = 0; i < sizeof certs / sizeof *certs; i++) {
    int rc = vasp_instance_export_to(t.inst, certs[i].p, certs[i].len, 0, &out, &len, &counter);
    if (rc != VASP_E_ARG) bad = rc;
    bad_said = bad_said && certs[i].p && said(t.inst, why[i]) && said(t.inst, VM);
  }
  int own_rc = vasp_instance_export_to(t.inst, own.p, own.len, 0, &out, &len, &counter);
  bool own_said = said(t.inst, "this ASP's own");
  /* Trailing bytes after the DER, and no DER at all. */
  uint8_t *longer = malloc(good.len + 1);
  if (longer) memcpy(longer, good.p, good.len), longer[good.len] = 0;
  int trailing = vasp_instance_export_to(t.inst, longer, good.len + 1, 0, &out, &len, &counter);
  bool trailing_said = said(t.inst, "not exactly one DER certificate");
  int garbage = vasp_instance_export_to(t.inst, (const uint8_t *)"\x30\x03xyz", 5, 0, &out, &len,
                                        &counter);
  int null_cert = vasp_instance_export_to(t.inst, NULL, 10, 0, &out, &len, &counter);
  bool untouched = out == (uint8_t *)1 && len == 7 && counter == 7;
  /* None of the refusals used a counter; any P-256 key agreement key will do. */
  der ok = {0};
  int good_rc = vasp_instance_export_to(t.inst, good.p, good.len, 0, &ok.p, &ok.len, &counter);
  free(longer);
  vasp_free(ok.p);
  vasp_free(own.p);
  for (size_t i = 0; i < 4; i++) free(certs[i].p);
  free(good.p);
  EVP_PKEY_free(rsa);
  EVP_PKEY_free(p384);
  EVP_PKEY_free(p256);
  trio_close(&t);
  CHECK(bad == VASP_E_ARG && bad_said);
  CHECK(own_rc == VASP_E_ARG && own_said);
  CHECK(trailing == VASP_E_ARG && trailing_said && garbage == VASP_E_ARG);
  CHECK(null_cert == VASP_E_ARG && untouched);
  CHECK(good_rc == VASP_OK && counter == 1);
}

TEST(migrate_calls_on_a_null_handle_or_out_give_arg_errors) {
  uint8_t buf[32] = {0}, *out;
  size_t len;
  uint64_t counter;
  vasp_instance *inst = (vasp_instance *)1;
  CHECK_RC(vasp_instance_export_to(NULL, buf, 32, 0, &out, &len, &counter), VASP_E_ARG, NULL);
  CHECK_RC(vasp_instance_import_from(NULL, VM, buf, 32, buf, 32, &inst), VASP_E_ARG, NULL);
  CHECK(inst == NULL);
  CHECK_RC(vasp_instance_import_from(NULL, VM, buf, 32, buf, 32, NULL), VASP_E_ARG, NULL);
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  vasp_instance *i = make(a);
  int no_out = i ? vasp_instance_export_to(i, buf, 32, 0, NULL, &len, &counter) : -1;
  vasp_instance_close(i);
  vasp_asp_close(a);
  CHECK(no_out == VASP_E_ARG);
}

/* A destination that sealed the VM itself (an arrival whose migration then
 * failed) says how far its counter went; the next transfer goes past it, but
 * never far past the source's own. */
TEST(migrate_counter_goes_past_what_the_destination_recorded) {
  const char *root = test_tmpdir();
  vasp_asp *src = fx_open(fx_path(root, "src")), *dst = fx_open(fx_path(root, "dst"));
  CHECK(src && dst);
  vasp_instance *inst = make(src);
  CHECK(inst);
  der src_ak = cert_of(src, VASP_CERT_AK), tk = cert_of(dst, VASP_CERT_TRANSPORT);
  uint64_t unknown = 99, c1 = 0, moved_c = 0, recorded = 0, c2 = 0, far_c = 0;
  int unknown_rc = vasp_asp_vm_counter(dst, VM, &unknown);
  der first = export_to(inst, dst, &c1);
  vasp_instance *moved = NULL;
  int rc = vasp_instance_import_from(dst, VM, first.p, first.len, src_ak.p, src_ak.len, &moved);
  /* The arrival seals itself twice before its migration fails. */
  der local = {0};
  if (moved) vasp_instance_export(moved, 0, &local.p, &local.len, &moved_c);
  vasp_free(local.p);
  if (moved) vasp_instance_export(moved, 0, &local.p, &local.len, &moved_c);
  vasp_free(local.p);
  vasp_instance_close(moved);
  int seen_rc = vasp_asp_vm_counter(dst, VM, &recorded);
  der second = {0};
  int second_rc = vasp_instance_export_to(inst, tk.p, tk.len, recorded, &second.p, &second.len, &c2);
  int again = import_rc(dst, VM, second, src_ak);
  der far = {0};
  int far_rc = vasp_instance_export_to(inst, tk.p, tk.len, c2 + ((uint64_t)1 << 32) + 1, &far.p,
                                       &far.len, &far_c);
  bool far_said = said(inst, "more than 4294967296 past its newest");
  uint64_t bad = 0;
  int bad_uuid = vasp_asp_vm_counter(dst, "not-a-uuid", &bad);
  int null_out = vasp_asp_vm_counter(dst, VM, NULL);
  vasp_free(first.p);
  vasp_free(second.p);
  vasp_free(far.p);
  vasp_free(src_ak.p);
  vasp_free(tk.p);
  vasp_instance_close(inst);
  vasp_asp_close(src);
  vasp_asp_close(dst);
  CHECK(unknown_rc == VASP_OK && unknown == 0);
  CHECK(rc == VASP_OK && c1 == 1 && moved_c == 3);
  CHECK(seen_rc == VASP_OK && recorded == 3);
  CHECK(second_rc == VASP_OK && c2 == 4 && again == VASP_OK);
  CHECK(far_rc == VASP_E_ARG && far_said);
  CHECK(bad_uuid == VASP_E_ARG && null_out == VASP_E_ARG);
}
