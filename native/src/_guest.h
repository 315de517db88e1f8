/* Private to guest.c and pagewalk.c: the guest RAM handle, guest-physical
 * access and the x86-64 page walk. */
#ifndef VASP_GUEST_INTERNAL_H
#define VASP_GUEST_INTERNAL_H

#include "_internal.h"

#define VASP_GIB (UINT64_C(1) << 30)
#define VASP_4GIB (UINT64_C(4) << 30)

struct vasp_guest {
  vasp_err err; /* first member: vasp_errmsg() reads it */
  int fd;
  const uint8_t *map;
  uint64_t size;     /* bytes mapped: the file's size at open */
  uint64_t below_4g; /* RAM bytes below the PCI hole; 0: the whole file */
  /* Bytes of the mapping that were still backed by the file at the last
   * fstat(). Accesses stop here, so a file truncated behind our back gives
   * VASP_E_RANGE instead of SIGBUS. */
  uint64_t backed;
  /* Bytes that may still be touched before the next fstat(). */
  uint64_t unchecked_budget;
  char *path;
};

/* Forces an fstat() before the next access. Every public entry point calls
 * it, so each call sees truncation that happened before it started. */
void guest_recheck(struct vasp_guest *g);

/* Points *p at guest-physical [gpa, gpa+len) in the mapping. Fails with
 * VASP_E_RANGE, a message on err, when any byte lies outside guest RAM (the
 * PCI hole, beyond the end, or past where the file was truncated), and with
 * VASP_E_IO when fstat() fails. len may be 0. */
int guest_span(struct vasp_guest *g, uint64_t gpa, uint64_t len,
               const uint8_t **p, vasp_err *err);

/* Translates gva through the page tables at cr3 (paging: VASP_PAGING_*).
 * Writes the guest-physical address and the size of the page that maps it
 * (4 KiB, 2 MiB or 1 GiB). VASP_E_WALK, naming the level and entry, when the
 * walk fails; VASP_E_ARG for an unknown paging mode. At most five table
 * reads, each bounds-checked. */
int guest_walk(struct vasp_guest *g, uint64_t cr3, uint32_t paging, uint64_t gva,
               uint64_t *gpa, uint64_t *page_size, vasp_err *err);

/* Resolves guest-virtual [gva, gva+len) page by page, calling fn on each
 * guest-physical piece in order (a piece never crosses a page boundary).
 * Stops at the first failure of the walk, the bounds check, or fn. */
typedef int (*guest_piece_fn)(void *ctx, const uint8_t *p, size_t len);
int guest_virt_pieces(struct vasp_guest *g, uint64_t cr3, uint32_t paging,
                      uint64_t gva, uint64_t len, guest_piece_fn fn, void *ctx,
                      vasp_err *err);

/* As guest_virt_pieces for guest-physical [gpa, gpa+len), in pieces small
 * enough that the file size is rechecked between them. */
int guest_phys_pieces(struct vasp_guest *g, uint64_t gpa, uint64_t len,
                      guest_piece_fn fn, void *ctx, vasp_err *err);

/* One region's work in a batch (hash it, MAC it): writes its result to out.
 * Flags and length are checked by guest_batch before it is called. */
typedef int (*guest_region_fn)(struct vasp_guest *g, void *ctx, uint64_t cr3, uint32_t paging,
                               const vasp_guest_region *r, uint8_t *out, vasp_err *err);

/* Checks a batch call's arguments (handle, region count, buffers, paging
 * mode), clearing the handle's error first. */
int guest_batch_check(struct vasp_guest *g, uint32_t paging, const vasp_guest_region *regions,
                      size_t n, const uint8_t *out, const int32_t *status);

/* Runs fn over each region: status[i] is its code, a failed region's out_len
 * bytes are zeroed, and the first failure is returned and named on g. */
int guest_batch(struct vasp_guest *g, uint64_t cr3, uint32_t paging,
                const vasp_guest_region *regions, size_t n, uint8_t *out, size_t out_len,
                int32_t *status, guest_region_fn fn, void *ctx);

#endif
