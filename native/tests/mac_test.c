/* Keyed change detection: GMAC of guest regions and of caller memory. */
#include "_guest_image.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

static int mac_mem(const uint8_t *p, uint64_t len, uint8_t *tag) {
  vasp_mem_region r = {(uint64_t)(uintptr_t)p, len};
  return vasp_mac_batch(&r, 1, tag);
}

/* GMAC under a key the test chooses: the library's tags must not be these. */
static void gmac_with(const uint8_t key[32], const uint8_t *p, size_t len, uint8_t tag[16]) {
  static const uint8_t iv[12] = {0};
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "GMAC", NULL);
  EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, "AES-256-GCM", 0),
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_IV, (void *)iv, sizeof iv),
      OSSL_PARAM_construct_end(),
  };
  size_t out = 0;
  if (!ctx || EVP_MAC_init(ctx, key, 32, params) != 1 || EVP_MAC_update(ctx, p, len) != 1 ||
      EVP_MAC_final(ctx, tag, &out, 16) != 1)
    die("GMAC");
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
}

TEST(mac_is_deterministic_and_changes_with_any_byte_length_or_position) {
  static uint8_t buf[64 * KIB];
  uint64_t seed = 5;
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(rnd(&seed) >> 24);
  uint8_t a[16], b[16], c[16];
  CHECK_RC(mac_mem(buf, sizeof buf, a), VASP_OK, NULL);
  CHECK_RC(mac_mem(buf, sizeof buf, b), VASP_OK, NULL);
  CHECK(memcmp(a, b, 16) == 0);
  const size_t spots[] = {0, 1, 15, 16, 4095, 4096, sizeof buf - 1};
  for (size_t s = 0; s < sizeof spots / sizeof *spots; s++) {
    buf[spots[s]] ^= 0x01;
    CHECK_RC(mac_mem(buf, sizeof buf, c), VASP_OK, NULL);
    CHECK(memcmp(a, c, 16) != 0);
    buf[spots[s]] ^= 0x01;
  }
  CHECK_RC(mac_mem(buf, sizeof buf, c), VASP_OK, NULL);
  CHECK(memcmp(a, c, 16) == 0);
  /* A trailing zero byte is a different input, not padding. */
  static uint8_t zeros[33];
  CHECK_RC(mac_mem(zeros, 32, a), VASP_OK, NULL);
  CHECK_RC(mac_mem(zeros, 33, b), VASP_OK, NULL);
  CHECK(memcmp(a, b, 16) != 0);
  CHECK_RC(mac_mem(NULL, 0, c), VASP_OK, NULL);
}

TEST(mac_key_is_secret_the_tags_are_not_gmac_under_a_zero_or_known_key) {
  static const uint8_t data[] = "kernel text";
  uint8_t key[32] = {0}, ours[16], known[16];
  CHECK_RC(mac_mem(data, sizeof data, ours), VASP_OK, NULL);
  gmac_with(key, data, sizeof data, known);
  CHECK(memcmp(ours, known, 16) != 0);
  memset(key, 0xff, sizeof key);
  gmac_with(key, data, sizeof data, known);
  CHECK(memcmp(ours, known, 16) != 0);
}

TEST(guest_mac_equals_mac_batch_of_the_same_bytes_for_physical_and_virtual_regions) {
  image im = image_new(8 * MIB);
  uint64_t root = new_table(&im);
  const uint64_t text = 0xffffffff81000000;
  map_page(&im, root, 4, text, 4 * MIB, 2 * MIB);
  for (uint64_t i = 0; i < 4; i++)
    map_page(&im, root, 4, text + 2 * MIB + i * 4096, 3 * MIB - i * 8192, 4 * KIB);
  fill(&im, 2 * MIB, 6 * MIB, 3);
  const char *path = write_ram(test_tmpdir(), "g.ram", &im, 0);
  vasp_guest *g = open_ram(path, 0);
  vasp_guest_region r[3] = {
      {4 * MIB + 5, 2 * MIB - 5, 0, 0},
      {text + 2 * MIB - 100, 100 + 3 * 4096 + 50, VASP_REGION_VIRT, 0},
      {0x500, 1, 0, 0},
  };
  uint8_t tags[3 * 16], again[3 * 16], want[16];
  int32_t status[3];
  static uint8_t buf[2 * MIB];
  CHECK_RC(vasp_guest_mac(g, root, VASP_PAGING_4LEVEL, r, 3, tags, status), VASP_OK, g);
  for (int i = 0; i < 3; i++) {
    CHECK(status[i] == VASP_OK);
    CHECK_RC(r[i].flags ? vasp_guest_read_virt(g, root, 0, r[i].addr, buf, r[i].len)
                        : vasp_guest_read_phys(g, r[i].addr, buf, r[i].len),
             VASP_OK, g);
    CHECK_RC(mac_mem(buf, r[i].len, want), VASP_OK, NULL);
    CHECK(memcmp(tags + 16 * i, want, 16) == 0);
  }
  /* A write through the file into one scattered page changes that region's tag only. */
  int fd = open(path, O_WRONLY);
  CHECK(fd >= 0);
  uint8_t byte = (uint8_t)(im.b[3 * MIB - 8192 + 7] ^ 0x80);
  CHECK(pwrite(fd, &byte, 1, (off_t)(3 * MIB - 8192 + 7)) == 1);
  close(fd);
  CHECK_RC(vasp_guest_mac(g, root, VASP_PAGING_4LEVEL, r, 3, again, status), VASP_OK, g);
  CHECK(memcmp(tags, again, 16) == 0);
  CHECK(memcmp(tags + 16, again + 16, 16) != 0);
  CHECK(memcmp(tags + 32, again + 32, 16) == 0);
  CHECK_RC(vasp_guest_mac(g, root, 0, NULL, 0, NULL, NULL), VASP_OK, g);
  vasp_guest_close(g);
  free(im.b);
}

TEST(guest_mac_reports_each_failed_region_with_a_zero_tag_and_keeps_the_rest) {
  image im = image_new(1 * MIB);
  fill(&im, 0, im.len, 9);
  uint64_t root = new_table(&im);
  memset(im.b + root, 0, 4096);
  vasp_guest *g = open_ram(write_ram(test_tmpdir(), "g.ram", &im, 0), 0);
  vasp_guest_region r[6] = {
      {0x2000, 4096, 0, 0},
      {0xffffffff81000000, 16, VASP_REGION_VIRT, 0}, /* not mapped */
      {0x3000, GIB + 1, 0, 0},                       /* over the cap */
      {0x3000, 0, 0, 0},
      {0x3000, 16, 4, 0},                            /* unknown flag */
      {0xff000, 2 * 4096, 0, 0},                     /* past the end */
  };
  const int want[6] = {VASP_OK, VASP_E_WALK, VASP_E_ARG, VASP_E_ARG, VASP_E_ARG, VASP_E_RANGE};
  uint8_t tags[6 * 16], zero[16] = {0}, t[16];
  int32_t status[6];
  memset(tags, 0xaa, sizeof tags);
  CHECK_RC(vasp_guest_mac(g, root, 0, r, 6, tags, status), VASP_E_WALK, g);
  CHECK_MSG(g, "region 1 (guest-virtual 0xffffffff81000000, 16 bytes): page walk of "
               "0xffffffff81000000: PML4 entry 511 at 0x1ff8: not present");
  for (int i = 0; i < 6; i++) {
    CHECK(status[i] == want[i]);
    CHECK((memcmp(tags + 16 * i, zero, 16) == 0) == (want[i] != VASP_OK));
  }
  CHECK_RC(mac_mem(im.b + 0x2000, 4096, t), VASP_OK, NULL);
  CHECK(memcmp(tags, t, 16) == 0);
  CHECK_RC(vasp_guest_mac(g, root, 2, r, 1, tags, status), VASP_E_ARG, g);
  CHECK_MSG(g, "unknown paging mode 2");
  CHECK_RC(vasp_guest_mac(g, root, 0, r, 1, NULL, status), VASP_E_ARG, g);
  CHECK_RC(vasp_guest_mac(g, root, 0, r, 65537, tags, status), VASP_E_ARG, g);
  CHECK_MSG(g, "65537 regions exceed the limit of 65536 per call");
  CHECK_RC(vasp_guest_mac(NULL, root, 0, r, 1, tags, status), VASP_E_ARG, NULL);
  vasp_mem_region bad = {0, 4};
  CHECK_RC(vasp_mac_batch(&bad, 1, t), VASP_E_ARG, NULL);
  CHECK_MSG(NULL, "region 0 has a NULL address");
  vasp_guest_close(g);
  free(im.b);
}
