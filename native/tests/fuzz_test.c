/* Seeded, bounded fuzzing kept in the suite (and under ASan/UBSan in
 * `make test-sanitize`): the state file loader, the export-blob importer,
 * the migration-blob importer and the page walker, fed mutations of valid
 * inputs. Mutated plaintext is re-encrypted with the handle's own keys (and a
 * migration blob signed again by the source's AK), so the parsers behind the
 * AEAD and signature checks are reached, not only those checks.
 *
 * VASP_FUZZ_ITERATIONS scales every target (default: a few seconds in all
 * under ASan); VASP_FUZZ_SEED picks another run. A failure prints the seed
 * and iteration, which reproduce it. Inputs in tests/corpus/<target>/ are
 * run first, unmutated and mutated. */
#include "_asp.h"
#include "_asp_fixture.h"
#include "_export.h"
#include "_guest_image.h"

#include <dirent.h>
#include <openssl/rand.h>
#include <stdlib.h>

#define STATE_HDR 30u /* magic | u16 version | key id | u32 length */
#define MAX_GROW 256u

static uint64_t env_u64(const char *name, uint64_t fallback) {
  const char *v = getenv(name);
  return v && *v ? strtoull(v, NULL, 0) : fallback;
}

/* Iterations of a target: its default times VASP_FUZZ_ITERATIONS / 1000. */
static uint64_t iterations(uint64_t per_thousand) {
  uint64_t scale = env_u64("VASP_FUZZ_ITERATIONS", 1000);
  uint64_t n = per_thousand * scale / 1000;
  return n ? n : 1;
}

static uint64_t seed_for(uint64_t salt) {
  return (env_u64("VASP_FUZZ_SEED", 0x5eed5eed5eedULL) ^ salt) | 1;
}

static void report(const char *target, uint64_t seed, uint64_t i) {
  fprintf(stderr, "    fuzz %s: seed 0x%llx iteration %llu (rerun with VASP_FUZZ_SEED)\n", target,
          (unsigned long long)seed, (unsigned long long)i);
}

/* Applies 1..8 mutations of src[0..len) into out (room for len + MAX_GROW);
 * returns the new length. Lengths and counts get "interesting" values, since
 * those are what the parsers check. */
static size_t mutate(uint64_t *st, const uint8_t *src, size_t len, uint8_t *out) {
  memcpy(out, src, len);
  size_t n = len;
  unsigned rounds = 1 + (unsigned)(rnd(st) % 8);
  static const uint32_t interesting[] = {0,          1,          2,          0x7f, 0x80,
                                         0xff,       0x100,      0xffff,     0x10000,
                                         0x7fffffff, 0x80000000, 0xffffffff, 4096,
                                         65536,      1048576};
  for (unsigned k = 0; k < rounds; k++) {
    uint64_t r = rnd(st);
    size_t at = n ? (size_t)(rnd(st) % n) : 0;
    switch (r % 8) {
    case 0: /* bit flip */
      if (n) out[at] ^= (uint8_t)(1u << (rnd(st) % 8));
      break;
    case 1: /* random byte */
      if (n) out[at] = (uint8_t)rnd(st);
      break;
    case 2: /* interesting u32, little-endian, over a length or count */
      if (n >= 4) {
        at = (size_t)(rnd(st) % (n - 3));
        uint32_t v = interesting[rnd(st) % (sizeof interesting / sizeof *interesting)];
        if (rnd(st) & 1) v = (uint32_t)n - (uint32_t)at + (uint32_t)(rnd(st) % 5) - 2u;
        for (int b = 0; b < 4; b++) out[at + (size_t)b] = (uint8_t)(v >> (8 * b));
      }
      break;
    case 3: /* truncate */
      n = at;
      break;
    case 4: { /* insert random bytes */
      size_t add = 1 + (size_t)(rnd(st) % 16);
      if (n + add > len + MAX_GROW) break;
      memmove(out + at + add, out + at, n - at);
      for (size_t b = 0; b < add; b++) out[at + b] = (uint8_t)rnd(st);
      n += add;
      break;
    }
    case 5: { /* delete a run */
      size_t del = 1 + (size_t)(rnd(st) % 32);
      if (at + del > n) del = n - at;
      memmove(out + at, out + at + del, n - at - del);
      n -= del;
      break;
    }
    case 6: /* interesting byte */
      if (n) out[at] = (uint8_t)interesting[rnd(st) % 6];
      break;
    default: { /* copy a run over another place */
      if (n < 2) break;
      size_t from = (size_t)(rnd(st) % n), run = 1 + (size_t)(rnd(st) % 16);
      if (from + run > n) run = n - from;
      if (at + run > n) run = n - at;
      memmove(out + at, out + from, run);
      break;
    }
    }
  }
  return n;
}

/* Runs fn on every file of tests/corpus/<target>/ (when run from native/). */
static bool each_corpus(const char *target, bool (*fn)(const uint8_t *, size_t, void *),
                        void *ctx) {
  char dir[256];
  snprintf(dir, sizeof dir, "tests/corpus/%s", target);
  DIR *d = opendir(dir);
  if (!d) return true;
  bool ok = true;
  for (struct dirent *e; ok && (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    uint8_t *data;
    size_t len;
    if (!fx_read(fx_path(dir, e->d_name), &data, &len)) continue;
    ok = fn(data, len, ctx);
    if (!ok) fprintf(stderr, "    corpus %s/%s failed\n", dir, e->d_name);
    free(data);
  }
  closedir(d);
  return ok;
}

/* ---- the state file ---------------------------------------------------- */

typedef struct state_ctx {
  const char *dir;
  uint8_t key[VASP_KEY_LEN], key_id[16];
  int rc;       /* of the last open */
  uint64_t opened; /* mutations that still opened */
} state_ctx;

/* Seals plain as a state file of ctx's secret, opens it; true when the open
 * succeeded or refused it as a state problem, and left the file as it was. */
static bool state_try(const uint8_t *plain, size_t len, void *p) {
  state_ctx *ctx = p;
  size_t total = STATE_HDR + VASP_NONCE_LEN + len + VASP_TAG_LEN;
  uint8_t *file = malloc(total);
  if (!file) return false;
  memcpy(file, "VASPST01", 8);
  file[8] = 1, file[9] = 0;
  memcpy(file + 10, ctx->key_id, 16);
  for (int b = 0; b < 4; b++) file[26 + b] = (uint8_t)(len >> (8 * b));
  uint8_t *nonce = file + STATE_HDR, *ct = nonce + VASP_NONCE_LEN;
  bool ok = RAND_bytes(nonce, VASP_NONCE_LEN) == 1 &&
            vasp_aead_seal(ctx->key, nonce, file, STATE_HDR, NULL, 0, plain, len, ct,
                           ct + len) &&
            fx_write(fx_path(ctx->dir, "asp.state"), file, total, 0600);
  if (ok) {
    vasp_asp_opts opts = {.state_dir = ctx->dir};
    vasp_asp *a = NULL;
    int rc = vasp_asp_open(&opts, &a);
    vasp_asp_close(a);
    ctx->rc = rc;
    ctx->opened += rc == VASP_OK;
    ok = (rc == VASP_OK || rc == VASP_E_STATE) && fx_same(fx_path(ctx->dir, "asp.state"), file,
                                                           total);
    if (!ok) fprintf(stderr, "    open: rc %d (%s)\n", rc, vasp_errmsg(NULL));
  }
  free(file);
  return ok;
}

/* A state with every kind of entry: counters, VMs with snapshots, destroyed
 * instances. Returns its plaintext (malloc'd) and the keys to seal with. */
static bool state_seed(const char *dir, state_ctx *ctx, uint8_t **plain, size_t *len) {
  vasp_asp *a = fx_open(dir);
  if (!a) return false;
  uint64_t v;
  static const char vm[] = "11111111-2222-4333-8444-555555555555";
  uint8_t digest[32] = {1};
  vasp_instance *inst = NULL, *gone = NULL;
  uint8_t *blob = NULL;
  size_t blob_len = 0;
  uint64_t counter = 0;
  bool ok = vasp_asp_counter_increment(a, "audit.checkpoints", &v) == VASP_OK &&
            vasp_asp_counter_increment(a, "boot", &v) == VASP_OK &&
            vasp_instance_create(a, vm, digest, &inst) == VASP_OK &&
            vasp_instance_export(inst, VASP_SNAPSHOT, &blob, &blob_len, &counter) == VASP_OK &&
            vasp_instance_create(a, vm, digest, &gone) == VASP_OK &&
            vasp_instance_destroy(gone) == VASP_OK;
  vasp_free(blob);
  vasp_instance_close(inst);
  memcpy(ctx->key, a->state_key, sizeof ctx->key);
  memcpy(ctx->key_id, a->state_key_id, sizeof ctx->key_id);
  vasp_asp_close(a);
  if (!ok) return false;
  uint8_t *file;
  size_t file_len;
  if (!fx_read(fx_path(dir, "asp.state"), &file, &file_len)) return false;
  *len = file_len - STATE_HDR - VASP_NONCE_LEN - VASP_TAG_LEN;
  *plain = malloc(*len + MAX_GROW);
  const uint8_t *nonce = file + STATE_HDR, *ct = nonce + VASP_NONCE_LEN;
  ok = *plain && vasp_aead_open(ctx->key, nonce, file, STATE_HDR, NULL, 0, ct, *len, ct + *len,
                                *plain) == 1;
  free(file);
  ctx->dir = dir;
  return ok;
}

static void write_seed(const char *target, const uint8_t *data, size_t len) {
  const char *out = getenv("VASP_FUZZ_WRITE_CORPUS");
  if (!out || !*out) return;
  char path[512];
  snprintf(path, sizeof path, "%s/%s/seed.bin", out, target);
  fx_write(path, data, len, 0644);
}

TEST(fuzz_state_file_loader_refuses_mutated_plaintext_without_crashing) {
  const char *dir = test_tmpdir();
  state_ctx ctx;
  uint8_t *plain = NULL, *buf = NULL;
  size_t len = 0;
  CHECK(state_seed(dir, &ctx, &plain, &len));
  write_seed("state", plain, len);
  buf = malloc(len + MAX_GROW);
  /* The seed itself must open: the mutations start from a state the loader accepts. */
  bool ok = buf && state_try(plain, len, &ctx) && ctx.rc == VASP_OK &&
            each_corpus("state", state_try, &ctx);
  ctx.opened = 0;
  uint64_t seed = seed_for(1), st = seed, n = iterations(1500), i = 0;
  for (; ok && i < n; i++) {
    size_t m = mutate(&st, plain, len, buf);
    ok = state_try(buf, m, &ctx);
  }
  if (!ok) report("state", seed, i);
  /* Some mutations (of values, not structure) must still open, or the run only tested the
   * first refusal. */
  if (ok && n >= 100 && ctx.opened == 0) ok = test_fail(__FILE__, __LINE__, "no mutation opened");
  free(buf);
  free(plain);
  CHECK(ok);
}

/* ---- export blobs ------------------------------------------------------ */

typedef struct import_ctx {
  vasp_asp *asp;
  const uint8_t *header; /* HEADER_LEN + nonce of the valid blob */
  bool reseal;
  uint64_t imported; /* inputs that imported */
} import_ctx;

/* Imports mutated content: resealed under the ASP's storage key (the parser
 * behind the tag), or as raw bytes (the header checks). */
static bool import_try(const uint8_t *data, size_t len, void *p) {
  import_ctx *ctx = p;
  uint8_t *blob = NULL;
  size_t blob_len = len;
  const uint8_t *in = data;
  if (ctx->reseal) {
    blob_len = HEADER_LEN + VASP_NONCE_LEN + len + VASP_TAG_LEN;
    if (!(blob = malloc(blob_len))) return false;
    memcpy(blob, ctx->header, HEADER_LEN + VASP_NONCE_LEN);
    uint8_t *ct = blob + HEADER_LEN + VASP_NONCE_LEN;
    if (!vasp_aead_seal(ctx->asp->storage_key, blob + HEADER_LEN, blob, HEADER_LEN, NULL, 0,
                        data, len, ct, ct + len)) {
      free(blob);
      return false;
    }
    in = blob;
  }
  static const char vm[] = "11111111-2222-4333-8444-555555555555";
  vasp_instance *inst = NULL;
  int rc = vasp_instance_import(ctx->asp, vm, in, blob_len, VASP_SNAPSHOT, &inst);
  bool ok = rc == VASP_OK || rc == VASP_E_AUTH || rc == VASP_E_ARG || rc == VASP_E_BINDING ||
            rc == VASP_E_ROLLBACK || rc == VASP_E_DESTROYED;
  if (rc == VASP_OK) {
    ctx->imported++;
    /* What imported must be usable: quote it. */
    uint8_t nonce[16] = {0}, *quote = NULL;
    size_t quote_len = 0;
    ok = vasp_instance_quote(inst, VASP_ALG_SHA256, 0xffffff, nonce, sizeof nonce, &quote,
                             &quote_len) == VASP_OK;
    vasp_free(quote);
  }
  if (!ok) fprintf(stderr, "    import: rc %d (%s)\n", rc, vasp_errmsg(ctx->asp));
  vasp_instance_close(inst);
  free(blob);
  return ok;
}

TEST(fuzz_import_refuses_mutated_blobs_and_content_without_crashing) {
  const char *dir = test_tmpdir();
  vasp_asp *a = fx_open(dir);
  CHECK(a);
  static const char vm[] = "11111111-2222-4333-8444-555555555555";
  uint8_t digest[32] = {2};
  vasp_instance *inst = NULL;
  uint8_t *blob = NULL, *plain = NULL, *buf = NULL;
  size_t blob_len = 0, body = 0;
  uint64_t counter = 0;
  bool ok = vasp_instance_create(a, vm, digest, &inst) == VASP_OK &&
            vasp_instance_extend(inst, 3, (const uint8_t *)"kernel", 6, "kernel") == VASP_OK &&
            vasp_instance_export(inst, VASP_SNAPSHOT, &blob, &blob_len, &counter) == VASP_OK;
  vasp_instance_close(inst);
  if (ok) {
    body = blob_len - HEADER_LEN - VASP_NONCE_LEN - VASP_TAG_LEN;
    plain = malloc(body + MAX_GROW);
    buf = malloc(blob_len + MAX_GROW);
    const uint8_t *ct = blob + HEADER_LEN + VASP_NONCE_LEN;
    ok = plain && buf &&
         vasp_aead_open(a->storage_key, blob + HEADER_LEN, blob, HEADER_LEN, NULL, 0, ct, body,
                        ct + body, plain) == 1;
  }
  uint64_t seed = seed_for(2), st = seed, i = 0;
  if (ok) {
    write_seed("import", plain, body);
    import_ctx content = {a, blob, true, 0}, raw = {a, blob, false, 0};
    ok = import_try(plain, body, &content) && content.imported == 1 &&
         each_corpus("import", import_try, &content);
    uint64_t n = iterations(6000);
    for (; ok && i < n; i++) {
      if (i % 4 == 3) ok = import_try(buf, mutate(&st, blob, blob_len, buf), &raw);
      else ok = import_try(buf, mutate(&st, plain, body, buf), &content);
    }
  }
  if (!ok) report("import", seed, i);
  vasp_free(blob);
  free(plain);
  free(buf);
  vasp_asp_close(a);
  CHECK(ok);
}

/* ---- migration blobs ---------------------------------------------------- */

typedef struct migrate_ctx {
  vasp_asp *src, *dst;
  const char *vm, *id;
  const uint8_t *ak; /* the source's AK certificate */
  size_t ak_len;
  bool reseal;
  uint64_t counter;  /* of the last resealed blob: each one goes past it */
  uint64_t imported; /* inputs that imported */
} migrate_ctx;

/* Imports mutated content sealed by the source to the destination (the
 * parser behind the signature and the AEAD), or a mutated blob as it is
 * (the header and signature checks). */
static bool migrate_try(const uint8_t *data, size_t len, void *p) {
  migrate_ctx *ctx = p;
  vasp_wbuf sealed = {0};
  const uint8_t *in = data;
  size_t in_len = len;
  if (ctx->reseal) {
    vasp_err err;
    if (vasp_migrate_seal(&err, ctx->src, ctx->dst->tk, ctx->dst->tk_id, ctx->vm, ctx->id,
                          ++ctx->counter, data, len, &sealed) != VASP_OK)
      return false;
    in = sealed.p;
    in_len = sealed.len;
  }
  vasp_instance *inst = NULL;
  int rc = vasp_instance_import_from(ctx->dst, ctx->vm, in, in_len, ctx->ak, ctx->ak_len, &inst);
  bool ok = rc == VASP_OK || rc == VASP_E_AUTH || rc == VASP_E_ARG || rc == VASP_E_BINDING ||
            rc == VASP_E_ROLLBACK || rc == VASP_E_DESTROYED;
  if (rc == VASP_OK) {
    ctx->imported++;
    uint8_t nonce[16] = {0}, *quote = NULL;
    size_t quote_len = 0;
    ok = vasp_instance_quote(inst, VASP_ALG_SHA256, 0xffffff, nonce, sizeof nonce, &quote,
                             &quote_len) == VASP_OK;
    vasp_free(quote);
  }
  if (!ok) fprintf(stderr, "    import_from: rc %d (%s)\n", rc, vasp_errmsg(ctx->dst));
  vasp_instance_close(inst);
  vasp_wb_free(&sealed);
  return ok;
}

TEST(fuzz_migration_import_refuses_mutated_blobs_and_content_without_crashing) {
  const char *root = test_tmpdir();
  vasp_asp *a = fx_open(fx_path(root, "src")), *b = fx_open(fx_path(root, "dst"));
  CHECK(a && b);
  static const char vm[] = "11111111-2222-4333-8444-555555555555";
  uint8_t digest[32] = {3}, *tk = NULL, *ak = NULL, *blob = NULL, *buf = NULL;
  size_t tk_len = 0, ak_len = 0, blob_len = 0;
  uint64_t counter = 0;
  vasp_wbuf plain = {0};
  vasp_instance *inst = NULL;
  bool ok = vasp_instance_create(a, vm, digest, &inst) == VASP_OK &&
            vasp_instance_extend(inst, 3, (const uint8_t *)"kernel", 6, "kernel") == VASP_OK &&
            vasp_asp_cert(b, VASP_CERT_TRANSPORT, &tk, &tk_len) == VASP_OK &&
            vasp_asp_cert(a, VASP_CERT_AK, &ak, &ak_len) == VASP_OK &&
            vasp_instance_export_to(inst, tk, tk_len, 0, &blob, &blob_len, &counter) == VASP_OK &&
            vasp_export_content_write(inst, &plain) &&
            (buf = malloc((blob_len > plain.len ? blob_len : plain.len) + MAX_GROW));
  char id[VASP_INST_ID_HEX + 1] = "";
  if (inst) vasp_instance_id(inst, id);
  vasp_instance_close(inst);
  uint64_t seed = seed_for(4), st = seed, i = 0;
  if (ok) {
    write_seed("migrate", plain.p, plain.len);
    /* The blob itself imports; the resealed content goes on past its counter. */
    migrate_ctx raw = {a, b, vm, id, ak, ak_len, false, counter, 0};
    migrate_ctx content = {a, b, vm, id, ak, ak_len, true, counter, 0};
    ok = migrate_try(blob, blob_len, &raw) && raw.imported == 1 &&
         migrate_try(plain.p, plain.len, &content) && content.imported == 1 &&
         each_corpus("migrate", migrate_try, &content);
    uint64_t n = iterations(1500);
    for (; ok && i < n; i++) {
      if (i % 4 == 3) ok = migrate_try(buf, mutate(&st, blob, blob_len, buf), &raw);
      else ok = migrate_try(buf, mutate(&st, plain.p, plain.len, buf), &content);
    }
  }
  if (!ok) report("migrate", seed, i);
  vasp_wb_free(&plain);
  vasp_free(tk);
  vasp_free(ak);
  vasp_free(blob);
  free(buf);
  vasp_asp_close(a);
  vasp_asp_close(b);
  CHECK(ok);
}

/* ---- the page walker ---------------------------------------------------- */

TEST(fuzz_page_walker_stays_inside_guest_ram_on_random_page_tables) {
  const uint64_t ram = 512 * KIB;
  image im = image_new(ram);
  const char *path = write_ram(test_tmpdir(), "fuzz.ram", &im, 0);
  vasp_guest *g = open_ram(path, 0);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  CHECK(fd >= 0);
  uint64_t seed = seed_for(3), st = seed, n = iterations(30000), i = 0;
  bool ok = true;
  static uint8_t buf[3 * 4096];
  for (; ok && i < n; i++) {
    /* Every 32nd round a fresh image: tables of random entries, many of them
     * present and pointing back into RAM (loops, large pages, reserved bits). */
    if (i % 32 == 0) {
      for (uint64_t off = 0; off < ram; off += 8) {
        uint64_t r = rnd(&st), e;
        switch (r % 4) {
        case 0: e = 0; break;
        case 1: e = (rnd(&st) % ram & ~UINT64_C(0xfff)) | PTE_P | (r >> 8 & 0x1e6); break;
        case 2: e = rnd(&st); break;
        default: e = (rnd(&st) % ram & ~UINT64_C(0xfff)) | PTE_P | PTE_PS; break;
        }
        put64(&im, off, e);
      }
      if (pwrite(fd, im.b, ram, 0) != (ssize_t)ram) ok = false;
    }
    uint64_t cr3 = rnd(&st) % ram & ~UINT64_C(0xfff);
    uint32_t paging = rnd(&st) & 1 ? VASP_PAGING_4LEVEL : VASP_PAGING_5LEVEL;
    uint64_t gva = rnd(&st), gpa = 0;
    int rc = vasp_guest_translate(g, cr3, paging, gva, &gpa);
    ok = ok && (rc == VASP_OK || rc == VASP_E_WALK || rc == VASP_E_RANGE || rc == VASP_E_ARG);
    size_t len = (size_t)(rnd(&st) % sizeof buf);
    rc = vasp_guest_read_virt(g, cr3, paging, gva, buf, len);
    ok = ok && (rc == VASP_OK || rc == VASP_E_WALK || rc == VASP_E_RANGE || rc == VASP_E_ARG);
    if (!ok) fprintf(stderr, "    walk: rc %d (%s)\n", rc, vasp_errmsg(g));
  }
  if (!ok) report("pagewalk", seed, i);
  close(fd);
  vasp_guest_close(g);
  free(im.b);
  CHECK(ok);
}
