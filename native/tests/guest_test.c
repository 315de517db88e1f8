/* Guest RAM access: opening, the guest-physical layout, truncation, and
 * batched measurement. Page walks are in pagewalk_test.c. */
#include "_guest_image.h"

TEST(guest_open_refuses_missing_empty_and_non_regular_files_naming_them) {
  const char *dir = test_tmpdir();
  char path[512];
  vasp_guest *g = (vasp_guest *)1;
  snprintf(path, sizeof path, "%s/missing.ram", dir);
  vasp_guest_opts opts = {path, 0};
  CHECK_RC(vasp_guest_open(&opts, &g), VASP_E_IO, NULL);
  CHECK(g == NULL && strstr(vasp_errmsg(NULL), path) != NULL);
  image empty = {NULL, 0, 0};
  opts.path = write_ram(dir, "empty.ram", &empty, 0);
  CHECK_RC(vasp_guest_open(&opts, &g), VASP_E_ARG, NULL);
  CHECK_MSG(NULL, "empty.ram\" is empty");
  opts.path = dir;
  CHECK_RC(vasp_guest_open(&opts, &g), VASP_E_IO, NULL);
  CHECK_MSG(NULL, "not a regular file");
  CHECK_RC(vasp_guest_open(NULL, &g), VASP_E_ARG, NULL);
  CHECK(g == NULL);
  vasp_guest_close(NULL);
}

TEST(guest_open_refuses_a_below_4g_larger_than_the_file_or_4_gib) {
  image im = image_new(64 * KIB);
  vasp_guest_opts opts = {write_ram(test_tmpdir(), "g.ram", &im, 0), 128 * KIB};
  vasp_guest *g = NULL;
  free(im.b);
  CHECK_RC(vasp_guest_open(&opts, &g), VASP_E_ARG, NULL);
  CHECK_MSG(NULL, "below_4g 0x20000");
  opts.below_4g = 5 * GIB;
  CHECK_RC(vasp_guest_open(&opts, &g), VASP_E_ARG, NULL);
  CHECK(g == NULL);
}

TEST(guest_read_phys_copies_bytes_and_refuses_reads_past_the_end_whole) {
  image im = image_new(1 * MIB);
  fill(&im, 0, im.len, 7);
  vasp_guest *g = open_ram(write_ram(test_tmpdir(), "g.ram", &im, 0), 0);
  uint64_t size = 0;
  uint8_t buf[256];
  CHECK_RC(vasp_guest_size(g, &size), VASP_OK, g);
  CHECK(size == 1 * MIB);
  CHECK_RC(vasp_guest_read_phys(g, 0x1234, buf, sizeof buf), VASP_OK, g);
  CHECK(memcmp(buf, im.b + 0x1234, sizeof buf) == 0);
  CHECK_RC(vasp_guest_read_phys(g, MIB - sizeof buf, buf, sizeof buf), VASP_OK, g);
  memset(buf, 0xee, sizeof buf);
  CHECK_RC(vasp_guest_read_phys(g, MIB - 8, buf, 16), VASP_E_RANGE, g);
  CHECK_MSG(g, "guest-physical 0xffff8 (16 bytes) lies outside guest RAM");
  CHECK(buf[0] == 0xee); /* refused whole: nothing copied */
  CHECK_RC(vasp_guest_read_phys(g, UINT64_MAX - 3, buf, 16), VASP_E_RANGE, g);
  CHECK_RC(vasp_guest_read_phys(g, 8, buf, SIZE_MAX), VASP_E_RANGE, g);
  CHECK_RC(vasp_guest_read_phys(g, 0, NULL, 0), VASP_OK, g);
  CHECK_RC(vasp_guest_read_phys(NULL, 0, buf, 1), VASP_E_ARG, NULL);
  vasp_guest_close(g);
  free(im.b);
}

TEST(guest_layout_places_ram_above_4_gib_after_the_pci_hole) {
  image im = image_new(3 * MIB); /* 2 MiB low, 1 MiB from 4 GiB */
  fill(&im, 0, im.len, 11);
  vasp_guest *g = open_ram(write_ram(test_tmpdir(), "g.ram", &im, 0), 2 * MIB);
  uint8_t buf[64];
  CHECK_RC(vasp_guest_read_phys(g, 0x1000, buf, sizeof buf), VASP_OK, g);
  CHECK(memcmp(buf, im.b + 0x1000, sizeof buf) == 0);
  CHECK_RC(vasp_guest_read_phys(g, 4 * GIB + 0x10, buf, sizeof buf), VASP_OK, g);
  CHECK(memcmp(buf, im.b + 2 * MIB + 0x10, sizeof buf) == 0);
  CHECK_RC(vasp_guest_read_phys(g, 4 * GIB + MIB - sizeof buf, buf, sizeof buf), VASP_OK, g);
  CHECK(memcmp(buf, im.b + 3 * MIB - sizeof buf, sizeof buf) == 0);
  CHECK_RC(vasp_guest_read_phys(g, 2 * MIB, buf, 8), VASP_E_RANGE, g);
  CHECK_MSG(g, "0x200000 (8 bytes) lies in the PCI hole");
  CHECK_MSG(g, "0x100000000..0x100100000");
  CHECK_RC(vasp_guest_read_phys(g, 2 * MIB - 4, buf, 8), VASP_E_RANGE, g);
  CHECK_RC(vasp_guest_read_phys(g, 4 * GIB - 4, buf, 8), VASP_E_RANGE, g);
  CHECK_RC(vasp_guest_read_phys(g, 4 * GIB + MIB - 4, buf, 8), VASP_E_RANGE, g);
  CHECK_RC(vasp_guest_read_phys(g, 4 * GIB + MIB, buf, 1), VASP_E_RANGE, g);
  CHECK_MSG(g, "lies outside guest RAM");
  vasp_guest_close(g);
  free(im.b);
}

TEST(guest_reads_after_the_file_shrinks_fail_cleanly_and_recover_when_it_grows) {
  image im = image_new(4 * MIB);
  uint64_t root = new_table(&im);
  map_page(&im, root, 4, 0xffffffff81000000, 3 * MIB, 4 * KIB);   /* data past the cut */
  map_page(&im, root, 4, 0xffffffff81001000, 0x80000, 4 * KIB);   /* data before it */
  fill(&im, 0x80000, 4 * KIB, 5);
  const char *path = write_ram(test_tmpdir(), "g.ram", &im, 0);
  vasp_guest *g = open_ram(path, 0);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  CHECK(fd >= 0 && ftruncate(fd, (off_t)(MIB + 100)) == 0);
  uint8_t buf[4096];
  CHECK_RC(vasp_guest_read_phys(g, 0x80000, buf, 4096), VASP_OK, g);
  CHECK(memcmp(buf, im.b + 0x80000, 4096) == 0);
  CHECK_RC(vasp_guest_read_phys(g, 2 * MIB, buf, 16), VASP_E_RANGE, g);
  CHECK_MSG(g, "shrank from 4194304 to 1048676 bytes");
  CHECK_RC(vasp_guest_read_phys(g, MIB + 96, buf, 8), VASP_E_RANGE, g);
  CHECK_RC(vasp_guest_read_virt(g, root, VASP_PAGING_4LEVEL, 0xffffffff81001000, buf, 4096),
           VASP_OK, g);
  CHECK_RC(vasp_guest_read_virt(g, root, VASP_PAGING_4LEVEL, 0xffffffff81000000, buf, 16),
           VASP_E_RANGE, g);
  vasp_guest_region r[2] = {{0x80000, 4096, 0, 0}, {3 * MIB, 4096, 0, 0}};
  uint8_t digests[64];
  int32_t status[2];
  CHECK_RC(vasp_guest_measure(g, 0, 0, r, 2, digests, status), VASP_E_RANGE, g);
  CHECK(status[0] == VASP_OK && status[1] == VASP_E_RANGE);
  CHECK(ftruncate(fd, 0) == 0);
  CHECK_RC(vasp_guest_read_phys(g, 0, buf, 1), VASP_E_RANGE, g);
  CHECK_RC(vasp_guest_translate(g, root, 0, 0xffffffff81001000, &(uint64_t){0}), VASP_E_WALK, g);
  CHECK_MSG(g, "PML4 entry 511 at 0x1ff8");
  CHECK(ftruncate(fd, (off_t)(4 * MIB)) == 0); /* zeros now, but backed again */
  CHECK_RC(vasp_guest_read_phys(g, 2 * MIB, buf, 16), VASP_OK, g);
  close(fd);
  vasp_guest_close(g);
  free(im.b);
}

TEST(guest_measure_equals_vasp_hash_of_the_same_bytes_for_physical_and_virtual_regions) {
  image im = image_new(8 * MIB);
  uint64_t root = new_table(&im);
  const uint64_t text = 0xffffffff81000000;
  map_page(&im, root, 4, text, 4 * MIB, 2 * MIB);
  for (uint64_t i = 0; i < 4; i++) /* scattered, in reverse */
    map_page(&im, root, 4, text + 2 * MIB + i * 4096, 3 * MIB - i * 8192, 4 * KIB);
  fill(&im, 2 * MIB, 6 * MIB, 3);
  vasp_guest *g = open_ram(write_ram(test_tmpdir(), "g.ram", &im, 0), 0);
  vasp_guest_region r[4] = {
      {4 * MIB + 5, 2 * MIB - 5, 0, VASP_ALG_SHA256},
      {text + 2 * MIB - 100, 100 + 3 * 4096 + 50, VASP_REGION_VIRT, VASP_ALG_SHA256},
      {text + 2 * MIB - 100, 100 + 3 * 4096 + 50, VASP_REGION_VIRT, VASP_ALG_SM3},
      {0x500, 1, 0, VASP_ALG_SM3},
  };
  uint8_t digests[4 * 32], want[32];
  int32_t status[4];
  static uint8_t buf[2 * MIB];
  CHECK_RC(vasp_guest_measure(g, root, VASP_PAGING_4LEVEL, r, 4, digests, status), VASP_OK, g);
  for (int i = 0; i < 4; i++) {
    CHECK(status[i] == VASP_OK);
    CHECK_RC(r[i].flags ? vasp_guest_read_virt(g, root, 0, r[i].addr, buf, r[i].len)
                        : vasp_guest_read_phys(g, r[i].addr, buf, r[i].len),
             VASP_OK, g);
    CHECK_RC(vasp_hash(r[i].alg, buf, r[i].len, want), VASP_OK, NULL);
    CHECK(memcmp(digests + 32 * i, want, 32) == 0);
  }
  /* The virtual region really was stitched from the scattered pages. */
  CHECK_RC(vasp_guest_read_virt(g, root, 0, r[1].addr, buf, r[1].len), VASP_OK, g);
  CHECK(memcmp(buf, im.b + 6 * MIB - 100, 100) == 0);
  CHECK(memcmp(buf + 100 + 4096, im.b + 3 * MIB - 8192, 4096) == 0);
  CHECK(memcmp(buf + 100 + 3 * 4096, im.b + 3 * MIB - 3 * 8192, 50) == 0);
  CHECK_RC(vasp_guest_measure(g, root, 0, NULL, 0, NULL, NULL), VASP_OK, g);
  vasp_guest_close(g);
  free(im.b);
}

TEST(guest_measure_reports_each_failed_region_with_a_zero_digest_and_keeps_the_rest) {
  image im = image_new(1 * MIB);
  fill(&im, 0, im.len, 9);
  uint64_t root = new_table(&im);
  memset(im.b + root, 0, 4096);
  vasp_guest *g = open_ram(write_ram(test_tmpdir(), "g.ram", &im, 0), 0);
  vasp_guest_region r[7] = {
      {0x2000, 4096, 0, 0},
      {0xffffffff81000000, 16, VASP_REGION_VIRT, 0}, /* not mapped */
      {0x3000, GIB + 1, 0, 0},                       /* over the cap */
      {0x3000, 0, 0, 0},
      {0x3000, 16, 0, 7},
      {0x3000, 16, 4, 0},
      {0x3000, 4096, 0, 1},
  };
  const int want[7] = {VASP_OK, VASP_E_WALK, VASP_E_ARG, VASP_E_ARG, VASP_E_ARG, VASP_E_ARG, 0};
  uint8_t digests[7 * 32], zero[32] = {0}, d[32];
  int32_t status[7];
  memset(digests, 0xaa, sizeof digests);
  CHECK_RC(vasp_guest_measure(g, root, 0, r, 7, digests, status), VASP_E_WALK, g);
  CHECK_MSG(g, "region 1 (guest-virtual 0xffffffff81000000, 16 bytes): page walk of "
               "0xffffffff81000000: PML4 entry 511 at 0x1ff8: not present");
  for (int i = 0; i < 7; i++) {
    CHECK(status[i] == want[i]);
    CHECK((memcmp(digests + 32 * i, zero, 32) == 0) == (want[i] != VASP_OK));
  }
  CHECK_RC(vasp_hash(VASP_ALG_SM3, im.b + 0x3000, 4096, d), VASP_OK, NULL);
  CHECK(memcmp(digests + 6 * 32, d, 32) == 0);
  CHECK_RC(vasp_guest_measure(g, root, 2, r, 1, digests, status), VASP_E_ARG, g);
  CHECK_MSG(g, "unknown paging mode 2");
  vasp_guest_close(g);
  free(im.b);
}

TEST(guest_measure_refuses_more_than_65536_regions_before_reading_any) {
  image im = image_new(64 * KIB);
  vasp_guest *g = open_ram(write_ram(test_tmpdir(), "g.ram", &im, 0), 0);
  size_t n = 65537;
  vasp_guest_region *r = calloc(n, sizeof *r);
  uint8_t *digests = malloc(n * 32);
  int32_t *status = malloc(n * sizeof *status);
  CHECK(r && digests && status);
  for (size_t i = 0; i < n; i++) r[i] = (vasp_guest_region){i % 1024, 64, 0, 0};
  status[0] = -1;
  int rc = vasp_guest_measure(g, 0, 0, r, n, digests, status);
  bool untouched = status[0] == -1;
  bool named = strstr(vasp_errmsg(g), "65537 regions exceed the limit of 65536") != NULL;
  int full = vasp_guest_measure(g, 0, 0, r, n - 1, digests, status);
  free(r), free(digests), free(status);
  vasp_guest_close(g);
  free(im.b);
  CHECK(rc == VASP_E_ARG && untouched && named);
  CHECK(full == VASP_OK);
}
