/* The x86-64 page walk over guest RAM, 4-level and 5-level (LA57).
 *
 * The tables belong to the guest and are hostile input. The walk reads one
 * entry per level, top down, and never revisits a level, so it ends after at
 * most five reads whatever the entries say: a table pointing to itself only
 * makes the walk resolve to an address inside that table. Every entry read
 * goes through guest_span(), which bounds-checks it against guest RAM. */
#include "_guest.h"

#include <inttypes.h>

/* Physical-address bits 51..12 of an entry; bits 63..52 (NX, protection keys,
 * software bits) are not part of the address, as in hardware. */
#define ADDR_MASK UINT64_C(0x000ffffffffff000)
#define ADDR_MASK_1G UINT64_C(0x000fffffc0000000)
#define ADDR_MASK_2M UINT64_C(0x000fffffffe00000)
#define PTE_PRESENT UINT64_C(1)
#define PTE_PS (UINT64_C(1) << 7)

static const char *const level_names[] = {"PT", "PD", "PDPT", "PML4", "PML5"};

static uint64_t le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

int guest_walk(struct vasp_guest *g, uint64_t cr3, uint32_t paging, uint64_t gva,
               uint64_t *gpa, uint64_t *page_size, vasp_err *err) {
  unsigned levels;
  if (paging == VASP_PAGING_4LEVEL)
    levels = 4;
  else if (paging == VASP_PAGING_5LEVEL)
    levels = 5;
  else
    return vasp_fail(err, VASP_E_ARG, "unknown paging mode %u", paging);
  /* Canonical: bits 63..(va_bits-1) all equal. */
  unsigned va_bits = 12 + 9 * levels;
  uint64_t top = gva >> (va_bits - 1);
  if (top != 0 && top != UINT64_MAX >> (va_bits - 1))
    return vasp_fail(err, VASP_E_WALK,
                     "page walk of 0x%" PRIx64 ": not canonical under %u-level paging", gva,
                     levels);
  uint64_t table = cr3 & ADDR_MASK;
  for (unsigned level = levels; level > 0; level--) {
    unsigned shift = 12 + 9 * (level - 1);
    unsigned index = (unsigned)(gva >> shift) & 511u;
    uint64_t at = table + 8u * index; /* table < 2^52: no wrap */
    const char *name = level_names[level - 1];
    const uint8_t *p;
    vasp_err sub = {{0}};
    int rc = guest_span(g, at, 8, &p, &sub);
    if (rc)
      return vasp_fail(err, rc == VASP_E_IO ? rc : VASP_E_WALK,
                       "page walk of 0x%" PRIx64 ": %s entry %u at 0x%" PRIx64 ": %s", gva, name,
                       index, at, sub.msg);
    uint64_t entry = le64(p);
    if (!(entry & PTE_PRESENT))
      return vasp_fail(err, VASP_E_WALK,
                       "page walk of 0x%" PRIx64 ": %s entry %u at 0x%" PRIx64
                       ": not present (0x%016" PRIx64 ")",
                       gva, name, index, at, entry);
    uint64_t size = UINT64_C(1) << shift;
    if (level == 1 || (entry & PTE_PS && (level == 2 || level == 3))) {
      uint64_t mask = level == 1 ? ADDR_MASK : level == 2 ? ADDR_MASK_2M : ADDR_MASK_1G;
      *gpa = (entry & mask) | (gva & (size - 1));
      *page_size = size;
      return VASP_OK;
    }
    if (entry & PTE_PS)
      return vasp_fail(err, VASP_E_WALK,
                       "page walk of 0x%" PRIx64 ": %s entry %u at 0x%" PRIx64
                       ": page-size bit set, reserved at this level (0x%016" PRIx64 ")",
                       gva, name, index, at, entry);
    table = entry & ADDR_MASK;
  }
  /* Unreachable: level 1 always returns above. */
  return vasp_fail(err, VASP_E_WALK, "page walk of 0x%" PRIx64 ": no leaf entry", gva);
}

int guest_virt_pieces(struct vasp_guest *g, uint64_t cr3, uint32_t paging, uint64_t gva,
                      uint64_t len, guest_piece_fn fn, void *ctx, vasp_err *err) {
  if (len && gva > UINT64_MAX - (len - 1))
    return vasp_fail(err, VASP_E_RANGE,
                     "guest-virtual 0x%" PRIx64 " (%" PRIu64 " bytes) wraps around the address "
                     "space",
                     gva, len);
  while (len) {
    uint64_t gpa, page_size;
    int rc = guest_walk(g, cr3, paging, gva, &gpa, &page_size, err);
    if (rc) return rc;
    uint64_t in_page = page_size - (gva & (page_size - 1));
    uint64_t piece = len < in_page ? len : in_page;
    vasp_err sub = {{0}};
    rc = guest_phys_pieces(g, gpa, piece, fn, ctx, &sub);
    if (rc)
      return vasp_fail(err, rc, "guest-virtual 0x%" PRIx64 ": %s", gva, sub.msg);
    /* Checked above: the range does not wrap, so only the last step may
     * carry gva to 2^64 (0), and len is 0 then. */
    gva += piece;
    len -= piece;
  }
  return VASP_OK;
}
