/* Guest RAM from the host: a read-only shared mapping of the RAM file, the
 * guest-physical layout around the PCI hole, and batched measurement.
 *
 * Truncation: the file can shrink while it is mapped, and touching a mapped
 * page past the new end raises SIGBUS. The process's signals belong to Deno,
 * so no handler is installed; instead fstat() runs at the start of every call
 * and again before each further RECHECK_BYTES of access, and nothing past
 * the size it reported is touched. What remains is a race: a truncation
 * landing between that fstat() and the access (at most RECHECK_BYTES later)
 * still kills the process. Only a process that can write the RAM file can
 * cause it, and that process can already kill the guest. */
#include "_guest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECHECK_BYTES (UINT64_C(1) << 20)
#define MAX_REGIONS 65536u
#define MAX_REGION_LEN VASP_GIB

void guest_recheck(struct vasp_guest *g) { g->unchecked_budget = 0; }

static int refresh(struct vasp_guest *g, vasp_err *err) {
  struct stat st;
  if (fstat(g->fd, &st) != 0)
    return vasp_fail(err, VASP_E_IO, "cannot stat guest RAM file \"%s\": %s", g->path,
                     strerror(errno));
  uint64_t now = st.st_size > 0 ? (uint64_t)st.st_size : 0;
  g->backed = now < g->size ? now : g->size;
  g->unchecked_budget = RECHECK_BYTES;
  return VASP_OK;
}

static int outside(struct vasp_guest *g, uint64_t gpa, uint64_t len, vasp_err *err) {
  const char *where = g->below_4g && gpa >= g->below_4g && gpa < VASP_4GIB
                          ? "lies in the PCI hole"
                          : "lies outside guest RAM";
  if (!g->below_4g)
    return vasp_fail(err, VASP_E_RANGE,
                     "guest-physical 0x%" PRIx64 " (%" PRIu64 " bytes) %s (RAM at 0x0..0x%" PRIx64 ")",
                     gpa, len, where, g->size);
  return vasp_fail(err, VASP_E_RANGE,
                   "guest-physical 0x%" PRIx64 " (%" PRIu64 " bytes) %s (RAM at 0x0..0x%" PRIx64
                   " and 0x100000000..0x%" PRIx64 ")",
                   gpa, len, where, g->below_4g, VASP_4GIB + (g->size - g->below_4g));
}

/* The file offset of guest-physical [gpa, gpa+len), which must lie within
 * one RAM segment. Pure arithmetic on the layout; touches nothing. */
static int locate(struct vasp_guest *g, uint64_t gpa, uint64_t len, uint64_t *off,
                  vasp_err *err) {
  uint64_t low_end = g->below_4g ? g->below_4g : g->size;
  if (gpa < low_end) {
    if (len > low_end - gpa) return outside(g, gpa, len, err);
    *off = gpa;
    return VASP_OK;
  }
  uint64_t high_size = g->size - g->below_4g;
  if (g->below_4g && gpa >= VASP_4GIB && gpa - VASP_4GIB < high_size) {
    uint64_t rel = gpa - VASP_4GIB;
    if (len > high_size - rel) return outside(g, gpa, len, err);
    *off = g->below_4g + rel;
    return VASP_OK;
  }
  return outside(g, gpa, len, err);
}

int guest_span(struct vasp_guest *g, uint64_t gpa, uint64_t len, const uint8_t **p,
               vasp_err *err) {
  uint64_t off = 0;
  if (len == 0) {
    *p = g->map;
    return VASP_OK;
  }
  int rc = locate(g, gpa, len, &off, err);
  if (rc) return rc;
  if (g->unchecked_budget < len && (rc = refresh(g, err)) != VASP_OK) return rc;
  g->unchecked_budget -= len < g->unchecked_budget ? len : g->unchecked_budget;
  /* off + len <= size (locate), so the sum cannot wrap. */
  if (off + len > g->backed)
    return vasp_fail(err, VASP_E_RANGE,
                     "guest-physical 0x%" PRIx64 " (%" PRIu64 " bytes) lies past the end of "
                     "guest RAM file \"%s\", which shrank from %" PRIu64 " to %" PRIu64 " bytes",
                     gpa, len, g->path, g->size, g->backed);
  *p = g->map + off;
  return VASP_OK;
}

int guest_phys_pieces(struct vasp_guest *g, uint64_t gpa, uint64_t len, guest_piece_fn fn,
                      void *ctx, vasp_err *err) {
  const uint8_t *p;
  /* The whole range first, so a range straddling the hole or the end is
   * refused before any byte of it is used. */
  int rc = guest_span(g, gpa, len, &p, err);
  for (uint64_t done = 0; rc == VASP_OK && done < len;) {
    uint64_t piece = len - done < RECHECK_BYTES ? len - done : RECHECK_BYTES;
    rc = guest_span(g, gpa + done, piece, &p, err);
    if (rc == VASP_OK) rc = fn(ctx, p, (size_t)piece);
    done += piece;
  }
  return rc;
}

int vasp_guest_open(const vasp_guest_opts *opts, vasp_guest **out) {
  vasp_clear(NULL);
  if (!out) return vasp_fail(NULL, VASP_E_ARG, "NULL out-parameter");
  *out = NULL;
  if (!opts || !opts->path || !opts->path[0])
    return vasp_fail(NULL, VASP_E_ARG, "no guest RAM file path given");
  const char *path = opts->path;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return vasp_fail(NULL, VASP_E_IO, "cannot open guest RAM file \"%s\": %s", path,
                     strerror(errno));
  struct stat st;
  int rc = VASP_OK;
  if (fstat(fd, &st) != 0)
    rc = vasp_fail(NULL, VASP_E_IO, "cannot stat guest RAM file \"%s\": %s", path,
                   strerror(errno));
  else if (!S_ISREG(st.st_mode))
    rc = vasp_fail(NULL, VASP_E_IO, "guest RAM file \"%s\" is not a regular file", path);
  else if (st.st_size <= 0)
    rc = vasp_fail(NULL, VASP_E_ARG, "guest RAM file \"%s\" is empty", path);
  else if (opts->below_4g > VASP_4GIB || opts->below_4g > (uint64_t)st.st_size)
    rc = vasp_fail(NULL, VASP_E_ARG,
                   "below_4g 0x%" PRIx64 " exceeds 4 GiB or the size of guest RAM file \"%s\" "
                   "(%" PRIu64 " bytes)",
                   opts->below_4g, path, (uint64_t)st.st_size);
  if (rc) {
    close(fd);
    return rc;
  }
  uint64_t size = (uint64_t)st.st_size;
  void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    rc = vasp_fail(NULL, VASP_E_IO, "cannot map guest RAM file \"%s\" (%" PRIu64 " bytes): %s",
                   path, size, strerror(errno));
    close(fd);
    return rc;
  }
  struct vasp_guest *g = calloc(1, sizeof *g);
  char *copy = strdup(path);
  if (!g || !copy) {
    free(g);
    free(copy);
    munmap(map, (size_t)size);
    close(fd);
    return vasp_fail(NULL, VASP_E_NOMEM, "out of memory opening guest RAM file \"%s\"", path);
  }
  g->fd = fd;
  g->map = map;
  g->size = g->backed = size;
  g->below_4g = opts->below_4g;
  g->path = copy;
  *out = g;
  return VASP_OK;
}

void vasp_guest_close(vasp_guest *g) {
  if (!g) return;
  munmap((void *)g->map, (size_t)g->size);
  close(g->fd);
  free(g->path);
  free(g);
}

int vasp_guest_size(vasp_guest *g, uint64_t *size) {
  if (!g) return vasp_fail(NULL, VASP_E_ARG, "NULL guest handle");
  vasp_clear(&g->err);
  if (!size) return vasp_fail(&g->err, VASP_E_ARG, "NULL out-parameter");
  *size = g->size;
  return VASP_OK;
}

static int copy_piece(void *ctx, const uint8_t *p, size_t len) {
  uint8_t **cursor = ctx;
  memcpy(*cursor, p, len);
  *cursor += len;
  return VASP_OK;
}

int vasp_guest_read_phys(vasp_guest *g, uint64_t gpa, uint8_t *buf, size_t len) {
  if (!g) return vasp_fail(NULL, VASP_E_ARG, "NULL guest handle");
  vasp_clear(&g->err);
  if (!buf && len) return vasp_fail(&g->err, VASP_E_ARG, "NULL buffer");
  guest_recheck(g);
  return guest_phys_pieces(g, gpa, len, copy_piece, &buf, &g->err);
}

static int check_paging(struct vasp_guest *g, uint32_t paging) {
  if (paging == VASP_PAGING_4LEVEL || paging == VASP_PAGING_5LEVEL) return VASP_OK;
  return vasp_fail(&g->err, VASP_E_ARG, "unknown paging mode %u", paging);
}

int vasp_guest_translate(vasp_guest *g, uint64_t cr3, uint32_t paging, uint64_t gva,
                         uint64_t *gpa) {
  if (!g) return vasp_fail(NULL, VASP_E_ARG, "NULL guest handle");
  vasp_clear(&g->err);
  if (!gpa) return vasp_fail(&g->err, VASP_E_ARG, "NULL out-parameter");
  guest_recheck(g);
  uint64_t phys, page_size;
  int rc = guest_walk(g, cr3, paging, gva, &phys, &page_size, &g->err);
  if (rc == VASP_OK) *gpa = phys;
  return rc;
}

int vasp_guest_read_virt(vasp_guest *g, uint64_t cr3, uint32_t paging, uint64_t gva,
                         uint8_t *buf, size_t len) {
  if (!g) return vasp_fail(NULL, VASP_E_ARG, "NULL guest handle");
  vasp_clear(&g->err);
  if (!buf && len) return vasp_fail(&g->err, VASP_E_ARG, "NULL buffer");
  int rc = check_paging(g, paging);
  if (rc) return rc;
  guest_recheck(g);
  return guest_virt_pieces(g, cr3, paging, gva, len, copy_piece, &buf, &g->err);
}

typedef struct hash_ctx {
  EVP_MD_CTX *md;
  bool failed;
} hash_ctx;

static int hash_piece(void *ctx, const uint8_t *p, size_t len) {
  hash_ctx *h = ctx;
  if (EVP_DigestUpdate(h->md, p, len) == 1) return VASP_OK;
  h->failed = true;
  return VASP_E_CRYPTO;
}

static int measure_one(struct vasp_guest *g, void *ctx, uint64_t cr3, uint32_t paging,
                       const vasp_guest_region *r, uint8_t *digest, vasp_err *err) {
  hash_ctx *h = ctx;
  if (r->alg > VASP_ALG_SM3) return vasp_fail(err, VASP_E_ARG, "unknown hash algorithm %u", r->alg);
  h->failed = false;
  if (EVP_DigestInit_ex(h->md, vasp_md(r->alg), NULL) != 1)
    return vasp_fail_ssl(err, VASP_E_CRYPTO, "digest init failed");
  int rc = r->flags & VASP_REGION_VIRT
               ? guest_virt_pieces(g, cr3, paging, r->addr, r->len, hash_piece, h, err)
               : guest_phys_pieces(g, r->addr, r->len, hash_piece, h, err);
  if (h->failed) return vasp_fail_ssl(err, VASP_E_CRYPTO, "digest update failed");
  if (rc) return rc;
  unsigned int out_len = 0;
  if (EVP_DigestFinal_ex(h->md, digest, &out_len) != 1 || out_len != VASP_DIGEST_LEN)
    return vasp_fail_ssl(err, VASP_E_CRYPTO, "digest final failed");
  return VASP_OK;
}

int guest_batch_check(struct vasp_guest *g, uint32_t paging, const vasp_guest_region *regions,
                      size_t n, const uint8_t *out, const int32_t *status) {
  if (!g) return vasp_fail(NULL, VASP_E_ARG, "NULL guest handle");
  vasp_clear(&g->err);
  if (n > MAX_REGIONS)
    return vasp_fail(&g->err, VASP_E_ARG, "%zu regions exceed the limit of %u per call", n,
                     MAX_REGIONS);
  if (n && (!regions || !out || !status)) return vasp_fail(&g->err, VASP_E_ARG, "NULL buffer");
  return check_paging(g, paging);
}

int guest_batch(struct vasp_guest *g, uint64_t cr3, uint32_t paging,
                const vasp_guest_region *regions, size_t n, uint8_t *out, size_t out_len,
                int32_t *status, guest_region_fn fn, void *ctx) {
  int first = VASP_OK;
  guest_recheck(g);
  for (size_t i = 0; i < n; i++) {
    const vasp_guest_region *r = &regions[i];
    vasp_err local = {{0}};
    int rc = r->flags & ~VASP_REGION_VIRT
                 ? vasp_fail(&local, VASP_E_ARG, "unknown flags 0x%x", r->flags)
             : r->len == 0 || r->len > MAX_REGION_LEN
                 ? vasp_fail(&local, VASP_E_ARG,
                             "length %" PRIu64 " is not within 1..%" PRIu64 " bytes", r->len,
                             MAX_REGION_LEN)
                 : fn(g, ctx, cr3, paging, r, out + i * out_len, &local);
    status[i] = rc;
    if (rc == VASP_OK) continue;
    memset(out + i * out_len, 0, out_len);
    if (first == VASP_OK)
      first = vasp_fail(&g->err, rc, "region %zu (guest-%s 0x%" PRIx64 ", %" PRIu64 " bytes): %s",
                        i, r->flags & VASP_REGION_VIRT ? "virtual" : "physical", r->addr,
                        r->len, local.msg);
  }
  return first;
}

int vasp_guest_measure(vasp_guest *g, uint64_t cr3, uint32_t paging,
                       const vasp_guest_region *regions, size_t n, uint8_t *digests,
                       int32_t *status) {
  int rc = guest_batch_check(g, paging, regions, n, digests, status);
  if (rc) return rc;
  hash_ctx h = {EVP_MD_CTX_new(), false};
  if (!h.md) return vasp_fail(&g->err, VASP_E_NOMEM, "out of memory for a digest context");
  rc = guest_batch(g, cr3, paging, regions, n, digests, VASP_DIGEST_LEN, status, measure_one, &h);
  EVP_MD_CTX_free(h.md);
  return rc;
}
