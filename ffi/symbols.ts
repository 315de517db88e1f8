/**
 * The C ABI of libvasp (`native/include/vasp.h`), as one typed table.
 * The C type of each parameter stands beside it; `out` parameters are
 * caller-owned typed arrays passed as buffers.
 *
 * @module
 */

/** Every symbol the bindings use, with its C signature. */
export const symbols = {
  // uint32_t vasp_abi_version(void)
  vasp_abi_version: { parameters: [], result: "u32" },
  // const char *vasp_errmsg(const void *handle)
  vasp_errmsg: { parameters: ["pointer"], result: "pointer" },
  // void vasp_free(void *p)
  vasp_free: { parameters: ["pointer"], result: "void" },

  // int vasp_hash(uint32_t alg, const uint8_t *data, size_t len, uint8_t *out)
  vasp_hash: { parameters: ["u32", "buffer", "usize", "buffer"], result: "i32" },
  // int vasp_hash_batch(uint32_t alg, const vasp_mem_region *regions, size_t n, uint8_t *out)
  vasp_hash_batch: { parameters: ["u32", "buffer", "usize", "buffer"], result: "i32" },

  // int vasp_asp_open(const vasp_asp_opts *opts, vasp_asp **out)
  vasp_asp_open: { parameters: ["buffer", "buffer"], result: "i32" },
  // void vasp_asp_close(vasp_asp *asp)
  vasp_asp_close: { parameters: ["pointer"], result: "void" },
  // int vasp_asp_cert(vasp_asp *asp, uint32_t kind, uint8_t **out, size_t *out_len)
  vasp_asp_cert: { parameters: ["pointer", "u32", "buffer", "buffer"], result: "i32" },
  // int vasp_asp_extend(vasp_asp *asp, uint32_t reg, const uint8_t *data, size_t len,
  //                     const char *description)
  vasp_asp_extend: {
    parameters: ["pointer", "u32", "buffer", "usize", "buffer"],
    result: "i32",
  },
  // int vasp_asp_measure_file(vasp_asp *asp, uint32_t reg, const char *path,
  //                           const char *description, uint8_t *digest_out)
  vasp_asp_measure_file: {
    parameters: ["pointer", "u32", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  // int vasp_asp_read(vasp_asp *asp, uint32_t alg, uint32_t reg, uint8_t *out)
  vasp_asp_read: { parameters: ["pointer", "u32", "u32", "buffer"], result: "i32" },
  // int vasp_asp_event_log(vasp_asp *asp, uint8_t **out, size_t *out_len)
  vasp_asp_event_log: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  // int vasp_asp_quote(vasp_asp *asp, uint32_t alg, uint32_t reg_mask, const uint8_t *nonce,
  //                    size_t nonce_len, uint8_t **out, size_t *out_len)
  vasp_asp_quote: {
    parameters: ["pointer", "u32", "u32", "buffer", "usize", "buffer", "buffer"],
    result: "i32",
  },
  // int vasp_asp_sign(vasp_asp *asp, const uint8_t *data, size_t len, uint8_t *sig_out)
  vasp_asp_sign: { parameters: ["pointer", "buffer", "usize", "buffer"], result: "i32" },
  // int vasp_asp_seal(vasp_asp *asp, const uint8_t *data, size_t len, const uint8_t *aad,
  //                   size_t aad_len, uint8_t **out, size_t *out_len)
  vasp_asp_seal: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize", "buffer", "buffer"],
    result: "i32",
  },
  // int vasp_asp_unseal(vasp_asp *asp, const uint8_t *blob, size_t len, const uint8_t *aad,
  //                     size_t aad_len, uint8_t **out, size_t *out_len)
  vasp_asp_unseal: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize", "buffer", "buffer"],
    result: "i32",
  },
  // int vasp_asp_counter_increment(vasp_asp *asp, const char *name, uint64_t *value)
  vasp_asp_counter_increment: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  // int vasp_asp_counter_read(vasp_asp *asp, const char *name, uint64_t *value)
  vasp_asp_counter_read: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  // int vasp_asp_counter_peek(const vasp_asp_opts *opts, const char *name, uint64_t *value)
  vasp_asp_counter_peek: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  // int vasp_asp_snapshot_forget(vasp_asp *asp, const char *vm_uuid, uint64_t counter)
  vasp_asp_snapshot_forget: { parameters: ["pointer", "buffer", "u64"], result: "i32" },

  // int vasp_instance_create(vasp_asp *asp, const char *vm_uuid, const uint8_t *config_digest,
  //                          vasp_instance **out)
  vasp_instance_create: {
    parameters: ["pointer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  // void vasp_instance_close(vasp_instance *inst)
  vasp_instance_close: { parameters: ["pointer"], result: "void" },
  // int vasp_instance_destroy(vasp_instance *inst)
  vasp_instance_destroy: { parameters: ["pointer"], result: "i32" },
  // int vasp_instance_id(vasp_instance *inst, char *out)
  vasp_instance_id: { parameters: ["pointer", "buffer"], result: "i32" },
  // int vasp_instance_cert(vasp_instance *inst, uint8_t **out, size_t *out_len)
  vasp_instance_cert: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  // int vasp_instance_extend(vasp_instance *inst, uint32_t reg, const uint8_t *data,
  //                          size_t len, const char *description)
  vasp_instance_extend: {
    parameters: ["pointer", "u32", "buffer", "usize", "buffer"],
    result: "i32",
  },
  // int vasp_instance_read(vasp_instance *inst, uint32_t alg, uint32_t reg, uint8_t *out)
  vasp_instance_read: { parameters: ["pointer", "u32", "u32", "buffer"], result: "i32" },
  // int vasp_instance_event_log(vasp_instance *inst, uint8_t **out, size_t *out_len)
  vasp_instance_event_log: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  // int vasp_instance_quote(vasp_instance *inst, uint32_t alg, uint32_t reg_mask,
  //                         const uint8_t *nonce, size_t nonce_len, uint8_t **out,
  //                         size_t *out_len)
  vasp_instance_quote: {
    parameters: ["pointer", "u32", "u32", "buffer", "usize", "buffer", "buffer"],
    result: "i32",
  },
  // int vasp_instance_export(vasp_instance *inst, uint32_t flags, uint8_t **out,
  //                          size_t *out_len, uint64_t *counter)
  vasp_instance_export: {
    parameters: ["pointer", "u32", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  // int vasp_instance_import(vasp_asp *asp, const char *vm_uuid, const uint8_t *blob,
  //                          size_t len, uint32_t flags, vasp_instance **out)
  vasp_instance_import: {
    parameters: ["pointer", "buffer", "buffer", "usize", "u32", "buffer"],
    result: "i32",
  },
  // int vasp_instance_export_to(vasp_instance *inst, const uint8_t *tk_cert,
  //                             size_t tk_cert_len, uint64_t after, uint8_t **out,
  //                             size_t *out_len, uint64_t *counter)
  vasp_instance_export_to: {
    parameters: ["pointer", "buffer", "usize", "u64", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  // int vasp_asp_vm_counter(vasp_asp *asp, const char *vm_uuid, uint64_t *newest)
  vasp_asp_vm_counter: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  // int vasp_instance_import_from(vasp_asp *asp, const char *vm_uuid, const uint8_t *blob,
  //                               size_t len, const uint8_t *source_ak_cert,
  //                               size_t source_ak_cert_len, vasp_instance **out)
  vasp_instance_import_from: {
    parameters: ["pointer", "buffer", "buffer", "usize", "buffer", "usize", "buffer"],
    result: "i32",
  },

  // int vasp_guest_open(const vasp_guest_opts *opts, vasp_guest **out)
  vasp_guest_open: { parameters: ["buffer", "buffer"], result: "i32" },
  // void vasp_guest_close(vasp_guest *g)
  vasp_guest_close: { parameters: ["pointer"], result: "void" },
  // int vasp_guest_size(vasp_guest *g, uint64_t *size)
  vasp_guest_size: { parameters: ["pointer", "buffer"], result: "i32" },
  // int vasp_guest_read_phys(vasp_guest *g, uint64_t gpa, uint8_t *buf, size_t len)
  vasp_guest_read_phys: { parameters: ["pointer", "u64", "buffer", "usize"], result: "i32" },
  // int vasp_guest_translate(vasp_guest *g, uint64_t cr3, uint32_t paging, uint64_t gva,
  //                          uint64_t *gpa)
  vasp_guest_translate: {
    parameters: ["pointer", "u64", "u32", "u64", "buffer"],
    result: "i32",
  },
  // int vasp_guest_read_virt(vasp_guest *g, uint64_t cr3, uint32_t paging, uint64_t gva,
  //                          uint8_t *buf, size_t len)
  vasp_guest_read_virt: {
    parameters: ["pointer", "u64", "u32", "u64", "buffer", "usize"],
    result: "i32",
  },
  // int vasp_guest_measure(vasp_guest *g, uint64_t cr3, uint32_t paging,
  //                        const vasp_guest_region *regions, size_t n, uint8_t *digests,
  //                        int32_t *status)
  // Runs off the main thread: a full kernel measurement takes milliseconds.
  vasp_guest_measure: {
    parameters: ["pointer", "u64", "u32", "buffer", "usize", "buffer", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  // int vasp_guest_mac(vasp_guest *g, uint64_t cr3, uint32_t paging,
  //                    const vasp_guest_region *regions, size_t n, uint8_t *tags,
  //                    int32_t *status)
  // Runs off the main thread, as vasp_guest_measure does.
  vasp_guest_mac: {
    parameters: ["pointer", "u64", "u32", "buffer", "usize", "buffer", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  // int vasp_mac_batch(const vasp_mem_region *regions, size_t n, uint8_t *tags)
  vasp_mac_batch: { parameters: ["buffer", "usize", "buffer"], result: "i32" },
  // int vasp_sock_listen(const char *path, vasp_sock **out)
  vasp_sock_listen: { parameters: ["buffer", "buffer"], result: "i32" },
  // int vasp_sock_adopt(int32_t fd, vasp_sock **out)
  vasp_sock_adopt: { parameters: ["i32", "buffer"], result: "i32" },
  // int vasp_sock_connect(const char *path, vasp_sock **out)
  vasp_sock_connect: { parameters: ["buffer", "buffer"], result: "i32" },
  // int vasp_sock_accept(vasp_sock *listener, vasp_sock **out)
  // Blocks until a client connects: runs on a worker thread.
  vasp_sock_accept: { parameters: ["pointer", "buffer"], result: "i32", nonblocking: true },
  // int vasp_sock_recv(vasp_sock *s, uint8_t *buf, size_t cap, size_t *out_len, int32_t *fds,
  //                    uint32_t fd_cap, uint32_t *out_nfds)
  // Blocks until bytes arrive: runs on a worker thread.
  vasp_sock_recv: {
    parameters: ["pointer", "buffer", "usize", "buffer", "buffer", "u32", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  // const char *vasp_sock_rx_errmsg(const vasp_sock *s)
  vasp_sock_rx_errmsg: { parameters: ["pointer"], result: "pointer" },
  // int vasp_sock_send(vasp_sock *s, const uint8_t *buf, size_t len, const int32_t *fds,
  //                    uint32_t nfds, uint32_t flags, size_t *out_sent)
  // With VASP_SOCK_DONTWAIT: never blocks, so it runs on the calling thread.
  vasp_sock_send: {
    parameters: ["pointer", "buffer", "usize", "buffer", "u32", "u32", "buffer"],
    result: "i32",
  },
  // The same function, for a send that must wait for room: on a worker thread.
  vasp_sock_send_wait: {
    name: "vasp_sock_send",
    parameters: ["pointer", "buffer", "usize", "buffer", "u32", "u32", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  // int vasp_sock_shutdown(vasp_sock *s)
  vasp_sock_shutdown: { parameters: ["pointer"], result: "i32" },
  // void vasp_sock_close(vasp_sock *s)
  vasp_sock_close: { parameters: ["pointer"], result: "void" },
  // int vasp_fd_close(int32_t fd)
  vasp_fd_close: { parameters: ["i32"], result: "i32" },
  // const char *vasp_fd_kind(int32_t fd)
  vasp_fd_kind: { parameters: ["i32"], result: "pointer" },
  // int vasp_lane_open(vasp_sock *client, vasp_sock *upstream, const char *names,
  //                    vasp_lane **out, vasp_sock **out_client, vasp_sock **out_upstream)
  vasp_lane_open: {
    parameters: ["pointer", "pointer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  // int vasp_lane_idle(vasp_lane *l, uint64_t client_bytes, uint64_t upstream_bytes)
  vasp_lane_idle: { parameters: ["pointer", "u64", "u64"], result: "i32" },
  // int vasp_lane_notes(vasp_lane *l, char *buf, size_t cap, size_t *out_len)
  vasp_lane_notes: { parameters: ["pointer", "buffer", "usize", "buffer"], result: "i32" },
  // uint64_t vasp_lane_passed(vasp_lane *l)
  vasp_lane_passed: { parameters: ["pointer"], result: "u64" },
  // void vasp_lane_free(vasp_lane *l)
  vasp_lane_free: { parameters: ["pointer"], result: "void" },

  // int vasp_file_stat(const char *path, vasp_file_id *out)
  vasp_file_stat: { parameters: ["buffer", "buffer"], result: "i32" },
  // int vasp_file_digest(const char *path, uint8_t *sha256_out, uint8_t *sm3_out,
  //                      vasp_file_id *id_out, char *msg_out, size_t msg_len)
  // — streams a whole image: off the event loop
  vasp_file_digest: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  // int vasp_instance_extend_digests(vasp_instance *inst, uint32_t reg, const uint8_t *sha256,
  //                                  const uint8_t *sm3, const char *description)
  vasp_instance_extend_digests: {
    parameters: ["pointer", "u32", "buffer", "buffer", "buffer"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened library's symbols. */
export type VaspSymbols = Deno.DynamicLibrary<typeof symbols>["symbols"];

/**
 * The symbols of the sockets and the gate's lane (`ffi/unix_socket.ts`), which `vasp gate`
 * binds alone: Deno binds about 0.17 ms a symbol, 10.8 ms for all of them, 3.5 ms for these.
 */
const SOCKET_NAMES = [
  "vasp_abi_version",
  "vasp_sock_listen",
  "vasp_sock_adopt",
  "vasp_sock_connect",
  "vasp_sock_accept",
  "vasp_sock_recv",
  "vasp_sock_rx_errmsg",
  "vasp_sock_send",
  "vasp_sock_send_wait",
  "vasp_sock_shutdown",
  "vasp_sock_close",
  "vasp_fd_close",
  "vasp_fd_kind",
  "vasp_lane_open",
  "vasp_lane_idle",
  "vasp_lane_notes",
  "vasp_lane_passed",
  "vasp_lane_free",
] as const;

/** {@link symbols} of the sockets and the lane alone. */
export const socketSymbols = Object.fromEntries(
  SOCKET_NAMES.map((name) => [name, symbols[name]]),
) as Pick<typeof symbols, typeof SOCKET_NAMES[number]>;

/** The sockets' symbols, opened. */
export type SocketSymbols = Deno.DynamicLibrary<typeof socketSymbols>["symbols"];
