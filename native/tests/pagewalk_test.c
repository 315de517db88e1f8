/* The x86-64 page walk: 4- and 5-level paging, 4 KiB, 2 MiB and 1 GiB pages,
 * and guest page tables as hostile input. */
#include "_guest_image.h"

#define L4 VASP_PAGING_4LEVEL
#define L5 VASP_PAGING_5LEVEL

/* The gpa of gva, or UINT64_MAX when the walk fails. */
static uint64_t xlate(vasp_guest *g, uint64_t cr3, uint32_t paging, uint64_t gva) {
  uint64_t gpa = 0;
  return vasp_guest_translate(g, cr3, paging, gva, &gpa) == VASP_OK ? gpa : UINT64_MAX;
}

TEST(pagewalk_4level_translates_4k_2m_and_1g_pages_and_reads_across_them) {
  image im = image_new(8 * MIB);
  uint64_t root = new_table(&im);
  const uint64_t text = 0xffffffff81000000;
  map_page(&im, root, 4, text, 4 * MIB, 2 * MIB);
  for (uint64_t i = 0; i < 4; i++)
    map_page(&im, root, 4, text + 2 * MIB + i * 4096, 3 * MIB - i * 4096, 4 * KIB);
  map_page(&im, root, 4, 0xffff888000000000, 0, GIB);
  fill(&im, 2 * MIB, 6 * MIB, 1);
  vasp_guest *g = open_ram(write_ram(test_tmpdir(), "g.ram", &im, 0), 0);
  CHECK(xlate(g, root, L4, text + 0x123) == 4 * MIB + 0x123);
  CHECK(xlate(g, root, L4, text + 2 * MIB + 4096 + 0x10) == 3 * MIB - 4096 + 0x10);
  CHECK(xlate(g, root, L4, 0xffff888000400010) == 0x400010);
  CHECK(xlate(g, root, L4, 0xffff888012345678) == 0x12345678); /* beyond RAM: still translates */
  /* PCID in the low bits and bit 63 of CR3 are not part of the root. */
  CHECK(xlate(g, root | 0x8000000000000005, L4, text) == 4 * MIB);
  static uint8_t buf[3 * 4096 + 200];
  CHECK_RC(vasp_guest_read_virt(g, root, L4, text + 2 * MIB - 100, buf, 100 + 3 * 4096 + 50),
           VASP_OK, g);
  CHECK(memcmp(buf, im.b + 6 * MIB - 100, 100) == 0);
  for (int i = 0; i < 3; i++)
    CHECK(memcmp(buf + 100 + i * 4096, im.b + 3 * MIB - (uint64_t)i * 4096, 4096) == 0);
  CHECK(memcmp(buf + 100 + 3 * 4096, im.b + 3 * MIB - 3 * 4096, 50) == 0);
  CHECK_RC(vasp_guest_read_virt(g, root, L4, text + 2 * MIB + 3 * 4096, buf, 4097),
           VASP_E_WALK, g);
  CHECK_MSG(g, "page walk of 0xffffffff81204000: PT entry 4 at ");
  CHECK_MSG(g, ": not present (0x0000000000000000)");
  CHECK_RC(vasp_guest_read_virt(g, root, L4, 0xffff888012345678, buf, 8), VASP_E_RANGE, g);
  CHECK_MSG(g, "guest-virtual 0xffff888012345678: guest-physical 0x12345678");
  vasp_guest_close(g);
  free(im.b);
}

TEST(pagewalk_5level_translates_addresses_beyond_48_bits) {
  image im = image_new(4 * MIB);
  uint64_t root = new_table(&im);
  map_page(&im, root, 5, 0xff80000000000000, 2 * MIB, 2 * MIB);
  map_page(&im, root, 5, 0x0000800000001000, 0x70000, 4 * KIB);
  map_page(&im, root, 5, 0xffd0000040000000, GIB, GIB);
  fill(&im, 0x70000, 4096, 2);
  vasp_guest *g = open_ram(write_ram(test_tmpdir(), "g.ram", &im, 0), 0);
  CHECK(xlate(g, root, L5, 0xff800000001fffff) == 4 * MIB - 1);
  CHECK(xlate(g, root, L5, 0x0000800000001abc) == 0x70abc);
  CHECK(xlate(g, root, L5, 0xffd000007fffffff) == 2 * GIB - 1);
  uint8_t buf[64];
  CHECK_RC(vasp_guest_read_virt(g, root, L5, 0x0000800000001010, buf, 64), VASP_OK, g);
  CHECK(memcmp(buf, im.b + 0x70010, 64) == 0);
  /* Canonical under 5-level paging only. */
  CHECK_RC(vasp_guest_translate(g, root, L4, 0x0000800000001abc, &(uint64_t){0}), VASP_E_WALK, g);
  CHECK_MSG(g, "0x800000001abc: not canonical under 4-level");
  CHECK_RC(vasp_guest_translate(g, root, L5, 0xfe00000000000000, &(uint64_t){0}), VASP_E_WALK, g);
  CHECK_MSG(g, "not canonical under 5-level");
  CHECK_RC(vasp_guest_translate(g, root, L5, 0xff80000000200000, &(uint64_t){0}), VASP_E_WALK, g);
  CHECK_MSG(g, "PD entry 1 at");
  CHECK_RC(vasp_guest_translate(g, root, 9, 0, &(uint64_t){0}), VASP_E_ARG, g);
  vasp_guest_close(g);
  free(im.b);
}

TEST(pagewalk_masks_the_bits_hardware_ignores_and_refuses_a_page_size_bit_in_pml4) {
  image im = image_new(1 * MIB);
  uint64_t root = new_table(&im);
  map_page(&im, root, 4, 0x400000, 0x80000, 4 * KIB);
  /* NX, protection-key and software bits above bit 51 in every level. */
  for (uint64_t t = root; t < im.next_table; t += 4096)
    for (uint64_t at = t; at < t + 4096; at += 8)
      if (get64(&im, at) & PTE_P) put64(&im, at, get64(&im, at) | 0xfff0000000000000);
  put64(&im, root + 8 * 5, 0x1000 | PTE_P | PTE_PS);
  vasp_guest *g = open_ram(write_ram(test_tmpdir(), "g.ram", &im, 0), 0);
  CHECK(xlate(g, root, L4, 0x400123) == 0x80123);
  CHECK_RC(vasp_guest_translate(g, root, L4, UINT64_C(5) << 39, &(uint64_t){0}), VASP_E_WALK, g);
  CHECK_MSG(g, "PML4 entry 5 at 0x1028: page-size bit set");
  vasp_guest_close(g);
  free(im.b);
}

TEST(pagewalk_through_self_referencing_tables_ends_in_at_most_five_reads) {
  image im = image_new(1 * MIB);
  uint64_t root = new_table(&im);
  fill(&im, root, 4096, 4);
  put64(&im, root + 8 * 511, root | PTE_P); /* the classic recursive slot */
  uint64_t every = new_table(&im);           /* every entry points to itself */
  for (int i = 0; i < 512; i++) put64(&im, every + 8 * (uint64_t)i, every | PTE_P | PTE_RW);
  vasp_guest *g = open_ram(write_ram(test_tmpdir(), "g.ram", &im, 0), 0);
  CHECK(xlate(g, root, L4, 0xfffffffffffff123) == root + 0x123);
  CHECK(xlate(g, root, L5, 0xfffffffffffff123) == root + 0x123);
  uint64_t seed = 99;
  double start = now_s();
  for (int i = 0; i < 100000; i++) {
    uint64_t gva = rnd(&seed);
    gva = (uint64_t)((int64_t)(gva << 16) >> 16); /* canonical for 4-level */
    CHECK(xlate(g, every, L4, gva) == every + (gva & 0xfff));
    CHECK(xlate(g, every, L5, gva) == every + (gva & 0xfff));
  }
  CHECK(now_s() - start < 5.0);
  uint8_t buf[4096];
  CHECK_RC(vasp_guest_read_virt(g, every, L5, 0x7000, buf, sizeof buf), VASP_OK, g);
  CHECK(memcmp(buf, im.b + every, sizeof buf) == 0);
  vasp_guest_close(g);
  free(im.b);
}

TEST(pagewalk_refuses_tables_outside_guest_ram_naming_level_and_entry) {
  image im = image_new(1 * MIB);
  uint64_t root = new_table(&im);
  put64(&im, root, 0x000ffffffffff000 | PTE_P);
  vasp_guest *g = open_ram(write_ram(test_tmpdir(), "g.ram", &im, 0), 0);
  CHECK_RC(vasp_guest_translate(g, root, L4, 0x1000, &(uint64_t){0}), VASP_E_WALK, g);
  CHECK_MSG(g, "page walk of 0x1000: PDPT entry 0 at 0xffffffffff000: "
               "guest-physical 0xffffffffff000 (8 bytes) lies outside guest RAM");
  CHECK_RC(vasp_guest_translate(g, 2 * MIB, L5, 0x1000, &(uint64_t){0}), VASP_E_WALK, g);
  CHECK_MSG(g, "PML5 entry 0 at 0x200000");
  CHECK_RC(vasp_guest_read_virt(g, root, L4, 0xfffffffffffff000, (uint8_t[16]){0}, 0x2000),
           VASP_E_RANGE, g);
  CHECK_MSG(g, "wraps around");
  vasp_guest_close(g);
  free(im.b);
}

TEST(pagewalk_over_random_garbage_tables_fails_cleanly_or_reads_the_right_bytes) {
  image im = image_new(4 * MIB);
  fill(&im, 0, im.len, 12345);
  /* Most entries are present and point back into RAM, so walks go deep. */
  uint64_t seed = 777;
  for (uint64_t at = 0; at < im.len; at += 8)
    put64(&im, at, (rnd(&seed) & 0xfff00000003ff1ffULL) | (at % 64 ? PTE_P : 0));
  vasp_guest *g = open_ram(write_ram(test_tmpdir(), "g.ram", &im, 0), 0);
  static vasp_guest_region r[2000];
  static uint8_t digests[2000 * 32];
  static int32_t status[2000];
  static uint8_t buf[16 * KIB];
  int seen[VASP_E_WALK + 1] = {0};
  double start = now_s();
  for (int round = 0; round < 20; round++) {
    uint64_t cr3 = rnd(&seed) & (round % 4 == 3 ? UINT64_MAX : 0x3ff000), paging = round & 1;
    unsigned bits = paging ? 57 : 48;
    for (int i = 0; i < 2000; i++) {
      uint64_t gva = rnd(&seed); /* mostly canonical, one in eight not */
      if (i % 8) gva = (uint64_t)((int64_t)(gva << (64 - bits)) >> (64 - bits));
      r[i] = (vasp_guest_region){gva, 1 + rnd(&seed) % (16 * KIB), VASP_REGION_VIRT, 0};
    }
    int rc = vasp_guest_measure(g, cr3, (uint32_t)paging, r, 2000, digests, status);
    CHECK(rc == VASP_OK || rc == VASP_E_WALK || rc == VASP_E_RANGE);
    for (int i = 0; i < 2000; i++) {
      CHECK(status[i] == VASP_OK || status[i] == VASP_E_WALK || status[i] == VASP_E_RANGE);
      int rv = vasp_guest_read_virt(g, cr3, (uint32_t)paging, r[i].addr, buf, r[i].len);
      CHECK(rv == status[i]);
      seen[rv]++;
      if (rv != VASP_OK) continue;
      uint8_t want[32];
      CHECK_RC(vasp_hash(0, buf, r[i].len, want), VASP_OK, NULL);
      CHECK(memcmp(want, digests + 32 * i, 32) == 0);
    }
  }
  CHECK(now_s() - start < 10.0);
  /* The garbage led to each outcome, so each path ran. */
  CHECK(seen[VASP_OK] > 0 && seen[VASP_E_WALK] > 0 && seen[VASP_E_RANGE] > 0);
  vasp_guest_close(g);
  free(im.b);
}
