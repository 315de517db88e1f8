/* Synthetic guest RAM for the guest tests: an in-memory image with page
 * tables built by hand, written to a (possibly larger, sparse) file. */
#ifndef VASP_GUEST_IMAGE_H
#define VASP_GUEST_IMAGE_H

#include "_test.h"

#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define PTE_P UINT64_C(1)
#define PTE_RW UINT64_C(2)
#define PTE_PS UINT64_C(0x80)

typedef struct image {
  uint8_t *b;
  uint64_t len;
  uint64_t next_table; /* bump allocator for page tables */
} image;

static inline void die(const char *what) {
  perror(what);
  exit(2);
}

/* Deterministic bytes, so a failure reproduces. */
static inline uint64_t rnd(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13, x ^= x >> 7, x ^= x << 17;
  return *state = x;
}

static inline void fill(image *im, uint64_t off, uint64_t len, uint64_t seed) {
  for (uint64_t i = 0; i < len; i++) im->b[off + i] = (uint8_t)(rnd(&seed) >> 24);
}

static inline image image_new(uint64_t len) {
  image im = {calloc(1, len), len, 0x1000};
  if (!im.b) die("calloc");
  return im;
}

static inline void put64(image *im, uint64_t off, uint64_t v) {
  for (int i = 0; i < 8; i++) im->b[off + i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t get64(const image *im, uint64_t off) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | im->b[off + i];
  return v;
}

static inline uint64_t new_table(image *im) {
  uint64_t t = im->next_table;
  im->next_table += 4096;
  if (im->next_table > im->len) die("image too small for its page tables");
  return t;
}

/* Maps gva to gpa with one page of page_size (4 KiB, 2 MiB or 1 GiB) under
 * the tables rooted at root, creating intermediate tables as needed. */
static inline void map_page(image *im, uint64_t root, unsigned levels, uint64_t gva,
                            uint64_t gpa, uint64_t page_size) {
  uint64_t table = root;
  for (unsigned level = levels; level > 0; level--) {
    unsigned shift = 12 + 9 * (level - 1);
    uint64_t at = table + 8 * ((gva >> shift) & 511);
    if ((UINT64_C(1) << shift) == page_size) {
      put64(im, at, gpa | PTE_P | PTE_RW | (level > 1 ? PTE_PS : 0));
      return;
    }
    uint64_t e = get64(im, at);
    if (!(e & PTE_P)) put64(im, at, (e = new_table(im) | PTE_P | PTE_RW));
    table = e & UINT64_C(0x000ffffffffff000);
  }
}

/* Writes the image to dir/name, then extends the file to file_size (sparse)
 * when that is larger. Returns the path (static buffer). */
static inline const char *write_ram(const char *dir, const char *name, const image *im,
                                    uint64_t file_size) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) die("open");
  if (pwrite(fd, im->b, im->len, 0) != (ssize_t)im->len) die("pwrite");
  if (file_size > im->len && ftruncate(fd, (off_t)file_size) != 0) die("ftruncate");
  close(fd);
  return path;
}

static inline vasp_guest *open_ram(const char *path, uint64_t below_4g) {
  vasp_guest_opts opts = {path, below_4g};
  vasp_guest *g = NULL;
  if (vasp_guest_open(&opts, &g) != VASP_OK) {
    fprintf(stderr, "vasp_guest_open: %s\n", vasp_errmsg(NULL));
    exit(2);
  }
  return g;
}

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
