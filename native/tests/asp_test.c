/* The ASP's registers, event log, active measurement, quotes, seal and
 * certificates. */
#include "_asp_fixture.h"

#include <openssl/x509v3.h>
#include <stdlib.h>

static void hex32(const uint8_t *d, char *out) {
  for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

TEST(asp_extend_matches_a_tpm_style_extend_computed_independently) {
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  uint8_t want[2][32] = {{0}}, got[2][32];
  int rc = VASP_OK;
  const char *items[] = {"abc", "kernel", "initrd"};
  for (int i = 0; i < 3 && rc == VASP_OK; i++) {
    rc = vasp_asp_extend(a, 7, (const uint8_t *)items[i], strlen(items[i]), items[i]);
    for (uint32_t alg = 0; alg < 2; alg++) fx_extend(alg, want[alg], items[i], strlen(items[i]));
    if (i == 0) {
      char h[65];
      vasp_asp_read(a, VASP_ALG_SHA256, 7, got[0]);
      hex32(got[0], h);
      /* sha256(32 zero bytes || sha256("abc")), computed with Python's hashlib. */
      if (strcmp(h, "589f9ffed4c477966bfb8d41f37895b08c69047df8f911d6f3b57fbe08faee8d") != 0)
        rc = -1;
    }
  }
  int r0 = vasp_asp_read(a, VASP_ALG_SHA256, 7, got[0]);
  int r1 = vasp_asp_read(a, VASP_ALG_SM3, 7, got[1]);
  uint8_t other[32], zero[32] = {0};
  int r2 = vasp_asp_read(a, VASP_ALG_SHA256, 6, other);
  vasp_asp_close(a);
  CHECK(rc == VASP_OK && r0 == VASP_OK && r1 == VASP_OK && r2 == VASP_OK);
  CHECK(memcmp(got[0], want[0], 32) == 0);
  CHECK(memcmp(got[1], want[1], 32) == 0);
  CHECK(memcmp(other, zero, 32) == 0);
}

TEST(asp_event_log_is_json_with_digests_and_escaped_descriptions) {
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  uint8_t *log = NULL;
  size_t len = 0;
  CHECK_RC(vasp_asp_event_log(a, &log, &len), VASP_OK, a);
  bool empty = len == 2 && memcmp(log, "[]", 2) == 0;
  vasp_free(log);
  CHECK(empty);
  const char *desc = "q\"b\\s\nt\x01 \xc3\xa9";
  CHECK_RC(vasp_asp_extend(a, 23, (const uint8_t *)"data", 4, desc), VASP_OK, a);
  CHECK_RC(vasp_asp_extend(a, 0, NULL, 0, ""), VASP_OK, a);
  CHECK_RC(vasp_asp_event_log(a, &log, &len), VASP_OK, a);
  vasp_asp_close(a);
  uint8_t d[4][32];
  vasp_hash(VASP_ALG_SHA256, (const uint8_t *)"data", 4, d[0]);
  vasp_hash(VASP_ALG_SM3, (const uint8_t *)"data", 4, d[1]);
  vasp_hash(VASP_ALG_SHA256, NULL, 0, d[2]);
  vasp_hash(VASP_ALG_SM3, NULL, 0, d[3]);
  char h[4][65], want[600];
  for (int i = 0; i < 4; i++) hex32(d[i], h[i]);
  snprintf(want, sizeof want,
           "[{\"reg\":23,\"sha256\":\"%s\",\"sm3\":\"%s\","
           "\"description\":\"q\\\"b\\\\s\\u000at\\u0001 \xc3\xa9\"},"
           "{\"reg\":0,\"sha256\":\"%s\",\"sm3\":\"%s\",\"description\":\"\"}]",
           h[0], h[1], h[2], h[3]);
  bool same = len == strlen(want) && memcmp(log, want, len) == 0 && log[len] == '\0';
  if (!same) fprintf(stderr, "    got  %.*s\n    want %s\n", (int)len, log, want);
  vasp_free(log);
  CHECK(same);
}

TEST(asp_extend_refuses_bad_registers_descriptions_and_buffers) {
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  const uint8_t *x = (const uint8_t *)"x";
  int reg = vasp_asp_extend(a, 24, x, 1, "d");
  bool reg_named = strstr(vasp_errmsg(a), "register 24") != NULL;
  int bad_utf8 = vasp_asp_extend(a, 1, x, 1, "bad \xc3\x28");
  int overlong = vasp_asp_extend(a, 1, x, 1, "\xc0\xaf");
  int surrogate = vasp_asp_extend(a, 1, x, 1, "\xed\xa0\x80");
  int past_max = vasp_asp_extend(a, 1, x, 1, "\xf4\x90\x80\x80");
  int cut = vasp_asp_extend(a, 1, x, 1, "\xe2\x82");
  char long_desc[1026];
  memset(long_desc, 'a', 1025);
  long_desc[1025] = '\0';
  int too_long = vasp_asp_extend(a, 1, x, 1, long_desc);
  long_desc[1024] = '\0';
  int max_len = vasp_asp_extend(a, 1, x, 1, long_desc);
  int null_desc = vasp_asp_extend(a, 1, x, 1, NULL);
  int null_data = vasp_asp_extend(a, 1, NULL, 5, "d");
  int null_asp = vasp_asp_extend(NULL, 1, x, 1, "d");
  uint8_t out[32];
  int read_reg = vasp_asp_read(a, VASP_ALG_SHA256, 24, out);
  int read_alg = vasp_asp_read(a, 2, 0, out);
  int read_out = vasp_asp_read(a, VASP_ALG_SHA256, 0, NULL);
  uint8_t *log;
  size_t len;
  vasp_asp_event_log(a, &log, &len);
  /* Only the 1024-byte description made it into the log. */
  bool one_entry = strstr((char *)log, "\"reg\":1,") != NULL &&
                   strstr((char *)log, "},{") == NULL;
  vasp_free(log);
  int log_null = vasp_asp_event_log(a, NULL, &len);
  vasp_asp_close(a);
  CHECK(reg == VASP_E_ARG && reg_named);
  CHECK(bad_utf8 == VASP_E_ARG && overlong == VASP_E_ARG && surrogate == VASP_E_ARG);
  CHECK(past_max == VASP_E_ARG && cut == VASP_E_ARG);
  CHECK(too_long == VASP_E_ARG && max_len == VASP_OK);
  CHECK(null_desc == VASP_E_ARG && null_data == VASP_E_ARG && null_asp == VASP_E_ARG);
  CHECK(read_reg == VASP_E_ARG && read_alg == VASP_E_ARG && read_out == VASP_E_ARG);
  CHECK(one_entry && log_null == VASP_E_ARG);
}

TEST(asp_event_log_is_bounded) {
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  int rc = VASP_OK;
  for (unsigned i = 0; i < 65536 && rc == VASP_OK; i++) rc = vasp_asp_extend(a, 2, NULL, 0, "");
  int full = vasp_asp_extend(a, 2, NULL, 0, "");
  bool said = strstr(vasp_errmsg(a), "event log full") != NULL;
  vasp_asp_close(a);
  CHECK(rc == VASP_OK);
  CHECK(full == VASP_E_ARG && said);
}

TEST(asp_measure_file_streams_the_file_into_both_banks) {
  const char *dir = test_tmpdir();
  vasp_asp *a = fx_open(dir);
  CHECK(a);
  /* Larger than one read chunk, and not a multiple of it. */
  size_t len = 200 * 1024 + 17;
  uint8_t *data = malloc(len);
  for (size_t i = 0; i < len; i++) data[i] = (uint8_t)(i * 31 + (i >> 9));
  const char *path = fx_path(dir, "qemu-system-x86_64");
  bool written = fx_write(path, data, len, 0644);
  uint8_t digest[32], want[32], reg[2][32], expect[2][32] = {{0}};
  int rc = vasp_asp_measure_file(a, 4, path, "qemu binary", digest);
  vasp_hash(VASP_ALG_SHA256, data, len, want);
  for (uint32_t alg = 0; alg < 2; alg++) fx_extend(alg, expect[alg], data, len);
  free(data);
  vasp_asp_read(a, VASP_ALG_SHA256, 4, reg[0]);
  vasp_asp_read(a, VASP_ALG_SM3, 4, reg[1]);
  int missing = vasp_asp_measure_file(a, 4, fx_path(dir, "nope"), "x", digest);
  bool named = strstr(vasp_errmsg(a), "/nope") != NULL;
  int is_dir = vasp_asp_measure_file(a, 4, dir, "x", digest);
  int device = vasp_asp_measure_file(a, 4, "/dev/zero", "x", digest);
  int bad_reg = vasp_asp_measure_file(a, 99, path, "x", digest);
  int null_path = vasp_asp_measure_file(a, 4, NULL, "x", digest);
  int null_out = vasp_asp_measure_file(a, 4, path, "x", NULL);
  uint8_t after[32];
  vasp_asp_read(a, VASP_ALG_SHA256, 4, after);
  vasp_asp_close(a);
  CHECK(written && rc == VASP_OK);
  CHECK(memcmp(digest, want, 32) == 0);
  CHECK(memcmp(reg[0], expect[0], 32) == 0 && memcmp(reg[1], expect[1], 32) == 0);
  CHECK(missing == VASP_E_IO && named && is_dir == VASP_E_IO && device == VASP_E_IO);
  CHECK(bad_reg == VASP_E_ARG && null_path == VASP_E_ARG && null_out == VASP_E_ARG);
  CHECK(memcmp(after, reg[0], 32) == 0); /* failures extended nothing */
}

TEST(asp_quote_has_the_documented_layout_and_verifies_against_the_ak_certificate) {
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  vasp_asp_extend(a, 0, (const uint8_t *)"a", 1, "a");
  vasp_asp_extend(a, 5, (const uint8_t *)"b", 1, "b");
  vasp_asp_extend(a, 23, (const uint8_t *)"c", 1, "c");
  const uint8_t nonce[20] = "fresh-nonce-12345678";
  uint32_t mask = 1u | 1u << 5 | 1u << 9 | 1u << 23;
  uint8_t *q = NULL;
  size_t len = 0;
  int rc = vasp_asp_quote(a, VASP_ALG_SM3, mask, nonce, sizeof nonce, &q, &len);
  uint8_t regs[4][32];
  const uint32_t selected[4] = {0, 5, 9, 23};
  for (int i = 0; i < 4; i++) vasp_asp_read(a, VASP_ALG_SM3, selected[i], regs[i]);
  X509 *ak = fx_asp_cert(a, VASP_CERT_AK);
  vasp_asp_close(a);
  CHECK(rc == VASP_OK && ak);
  fx_quote p;
  bool parsed = fx_parse_quote(q, len, &p);
  bool fields = parsed && p.alg == VASP_ALG_SM3 && p.nonce_len == sizeof nonce &&
                p.reg_mask == mask && p.n_regs == 4 && !memcmp(p.nonce, nonce, sizeof nonce) &&
                !memcmp(p.regs, regs, sizeof regs);
  EVP_PKEY *pub = X509_get0_pubkey(ak);
  bool verifies = parsed && fx_verify_p1363(pub, q, p.msg_len, p.sig);
  /* A changed register must break the signature (the check can fail). */
  q[16 + sizeof nonce] ^= 1;
  bool tampered = parsed && fx_verify_p1363(pub, q, p.msg_len, p.sig);
  vasp_free(q);
  X509_free(ak);
  CHECK(parsed && fields);
  CHECK(verifies);
  CHECK(!tampered);
}

TEST(asp_quote_refuses_empty_or_out_of_range_masks_nonces_and_banks) {
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  uint8_t nonce[65] = {0}, *q = NULL;
  size_t len = 0;
  int zero_mask = vasp_asp_quote(a, 0, 0, nonce, 8, &q, &len);
  int high_bit = vasp_asp_quote(a, 0, 1u << 24, nonce, 8, &q, &len);
  bool mask_named = strstr(vasp_errmsg(a), "0x1000000") != NULL;
  int top = vasp_asp_quote(a, 0, 1u << 31, nonce, 8, &q, &len);
  int no_nonce = vasp_asp_quote(a, 0, 1, nonce, 0, &q, &len);
  int null_nonce = vasp_asp_quote(a, 0, 1, NULL, 8, &q, &len);
  int big_nonce = vasp_asp_quote(a, 0, 1, nonce, 65, &q, &len);
  int bank = vasp_asp_quote(a, 2, 1, nonce, 8, &q, &len);
  int null_out = vasp_asp_quote(a, 0, 1, nonce, 8, NULL, &len);
  int max_nonce = vasp_asp_quote(a, 0, 0xFFFFFF, nonce, 64, &q, &len);
  size_t max_len = len;
  vasp_free(q);
  vasp_asp_close(a);
  CHECK(zero_mask == VASP_E_ARG && high_bit == VASP_E_ARG && mask_named && top == VASP_E_ARG);
  CHECK(no_nonce == VASP_E_ARG && null_nonce == VASP_E_ARG && big_nonce == VASP_E_ARG);
  CHECK(bank == VASP_E_ARG && null_out == VASP_E_ARG);
  CHECK(max_nonce == VASP_OK && max_len == 16 + 64 + 24 * 32 + 64);
}

TEST(asp_seal_round_trips_and_refuses_a_wrong_aad_a_flipped_bit_and_another_asp) {
  const char *root = test_tmpdir();
  vasp_asp *a = fx_open(root), *b = fx_open(fx_path(root, "b"));
  CHECK(a && b);
  const uint8_t data[] = "disk encryption key", aad[] = "vm-1";
  uint8_t *blob = NULL, *out = NULL, *empty = NULL;
  size_t blob_len = 0, out_len = 0, empty_len = 0;
  int seal = vasp_asp_seal(a, data, sizeof data, aad, sizeof aad, &blob, &blob_len);
  int unseal = vasp_asp_unseal(a, blob, blob_len, aad, sizeof aad, &out, &out_len);
  bool same = unseal == VASP_OK && out_len == sizeof data && !memcmp(out, data, sizeof data);
  vasp_free(out);
  int wrong_aad = vasp_asp_unseal(a, blob, blob_len, (const uint8_t *)"vm-2", 5, &out, &out_len);
  int no_aad = vasp_asp_unseal(a, blob, blob_len, NULL, 0, &out, &out_len);
  int other_asp = vasp_asp_unseal(b, blob, blob_len, aad, sizeof aad, &out, &out_len);
  blob[blob_len - 20] ^= 0x10;
  int flipped = vasp_asp_unseal(a, blob, blob_len, aad, sizeof aad, &out, &out_len);
  int short_blob = vasp_asp_unseal(a, blob, 10, aad, sizeof aad, &out, &out_len);
  vasp_free(blob);
  int seal_empty = vasp_asp_seal(a, NULL, 0, NULL, 0, &blob, &blob_len);
  int unseal_empty = vasp_asp_unseal(a, blob, blob_len, NULL, 0, &empty, &empty_len);
  vasp_free(blob);
  vasp_free(empty);
  int null_data = vasp_asp_seal(a, NULL, 3, NULL, 0, &blob, &blob_len);
  int null_aad = vasp_asp_seal(a, data, 3, NULL, 3, &blob, &blob_len);
  vasp_asp_close(a);
  vasp_asp_close(b);
  CHECK(seal == VASP_OK && same);
  CHECK(wrong_aad == VASP_E_AUTH && no_aad == VASP_E_AUTH && other_asp == VASP_E_AUTH);
  CHECK(flipped == VASP_E_AUTH && short_blob == VASP_E_AUTH);
  CHECK(seal_empty == VASP_OK && unseal_empty == VASP_OK && empty_len == 0);
  CHECK(null_data == VASP_E_ARG && null_aad == VASP_E_ARG);
}

/* basicConstraints (CA flag, pathlen) and keyUsage of a certificate. */
static bool constraints(X509 *x, bool ca, long pathlen, uint32_t usage) {
  int crit = 0;
  BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
  bool ok = bc && crit == 1 && (bc->ca != 0) == ca &&
            (pathlen < 0 ? bc->pathlen == NULL : ASN1_INTEGER_get(bc->pathlen) == pathlen);
  BASIC_CONSTRAINTS_free(bc);
  return ok && X509_get_key_usage(x) == usage;
}

static bool cn_is(X509 *x, const char *want) {
  char cn[128] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
  if (strcmp(cn, want) != 0) fprintf(stderr, "    CN \"%s\", want \"%s\"\n", cn, want);
  return strcmp(cn, want) == 0;
}

TEST(asp_certificates_chain_from_the_manufacturer_ca_with_the_documented_profile) {
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  X509 *ca = fx_asp_cert(a, VASP_CERT_CA), *ek = fx_asp_cert(a, VASP_CERT_EK),
       *ak = fx_asp_cert(a, VASP_CERT_AK);
  uint8_t *der = NULL;
  size_t len = 0;
  int bad_kind = vasp_asp_cert(a, 4, &der, &len);
  vasp_asp_close(a);
  bool got = ca && ek && ak;
  bool verified = got && fx_verify_chain(ca, ak, (X509 *[]){ek}, 1);

  /* ASP ID = SHA-256 of the EK SubjectPublicKeyInfo; names carry its start. */
  uint8_t id[32];
  char id_hex[65], ek_cn[64], ak_cn[64];
  unsigned char *spki = NULL;
  int spki_len = got ? i2d_PUBKEY(X509_get0_pubkey(ek), &spki) : 0;
  vasp_hash(VASP_ALG_SHA256, spki, spki_len > 0 ? (size_t)spki_len : 0, id);
  OPENSSL_free(spki);
  hex32(id, id_hex);
  snprintf(ek_cn, sizeof ek_cn, "vASP EK %.16s", id_hex);
  snprintf(ak_cn, sizeof ak_cn, "vASP AK %.16s", id_hex);
  bool profile = got && cn_is(ca, "vASP Local Manufacturer CA") && cn_is(ek, ek_cn) &&
                 cn_is(ak, ak_cn) && constraints(ca, true, -1, KU_KEY_CERT_SIGN | KU_CRL_SIGN) &&
                 constraints(ek, true, 1, KU_KEY_CERT_SIGN | KU_DIGITAL_SIGNATURE) &&
                 constraints(ak, true, 0, KU_KEY_CERT_SIGN | KU_DIGITAL_SIGNATURE) &&
                 X509_get_signature_nid(ak) == NID_ecdsa_with_SHA256 &&
                 X509_get0_subject_key_id(ek) && X509_get0_authority_key_id(ek);
  const ASN1_INTEGER *serial = got ? X509_get0_serialNumber(ek) : NULL;
  bool serial_ok = serial && ASN1_STRING_length(serial) == 16 &&
                   ASN1_STRING_type(serial) == V_ASN1_INTEGER;
  X509_free(ca);
  X509_free(ek);
  X509_free(ak);
  CHECK(got && verified);
  CHECK(profile && serial_ok);
  CHECK(bad_kind == VASP_E_ARG);
}

TEST(asp_calls_on_a_null_handle_give_arg_errors) {
  uint8_t buf[32], *out;
  size_t len;
  uint64_t v;
  CHECK_RC(vasp_asp_cert(NULL, 0, &out, &len), VASP_E_ARG, NULL);
  CHECK_RC(vasp_asp_read(NULL, 0, 0, buf), VASP_E_ARG, NULL);
  CHECK_RC(vasp_asp_event_log(NULL, &out, &len), VASP_E_ARG, NULL);
  CHECK_RC(vasp_asp_measure_file(NULL, 0, "/dev/null", "", buf), VASP_E_ARG, NULL);
  CHECK_RC(vasp_asp_quote(NULL, 0, 1, buf, 8, &out, &len), VASP_E_ARG, NULL);
  CHECK_RC(vasp_asp_seal(NULL, buf, 1, NULL, 0, &out, &len), VASP_E_ARG, NULL);
  CHECK_RC(vasp_asp_unseal(NULL, buf, 1, NULL, 0, &out, &len), VASP_E_ARG, NULL);
  CHECK_RC(vasp_asp_counter_increment(NULL, "c", &v), VASP_E_ARG, NULL);
  CHECK_RC(vasp_asp_counter_read(NULL, "c", &v), VASP_E_ARG, NULL);
  CHECK_RC(vasp_asp_snapshot_forget(NULL, "00000000-0000-0000-0000-000000000000", 1),
           VASP_E_ARG, NULL);
}
