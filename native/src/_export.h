/* Private to export.c and import.c: the export blob layout
 * (docs/quote-format.md). */
#ifndef VASP_EXPORT_H
#define VASP_EXPORT_H

#define EXPORT_MAGIC "VASPEX01"
#define EXPORT_VERSION 1u
#define CONTENT_VERSION 1u
/* magic | version | asp_id | vm_uuid | instance_id | counter | flags */
#define HEADER_LEN (8u + 2u + VASP_ASP_ID_LEN + VASP_UUID_LEN + VASP_INST_ID_HEX + 8u + 4u)
#define OFF_ASP_ID 10u
#define OFF_UUID (OFF_ASP_ID + VASP_ASP_ID_LEN)
#define OFF_ID (OFF_UUID + VASP_UUID_LEN)
#define OFF_COUNTER (OFF_ID + VASP_INST_ID_HEX)
#define OFF_FLAGS (OFF_COUNTER + 8u)
#define KEY_DER_MAX 4096u
#define CERT_DER_MAX 16384u

#endif
