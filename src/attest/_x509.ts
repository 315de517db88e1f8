/**
 * @peculiar/x509, loaded after the Reflect metadata polyfill its DI container (tsyringe)
 * requires before it loads. Import X.509 types from here, never from the package directly.
 *
 * @module
 */
import "reflect-metadata";

export {
  BasicConstraintsExtension,
  Extension,
  KeyUsageFlags,
  KeyUsagesExtension,
  PemConverter,
  X509Certificate,
  X509CertificateGenerator,
} from "@peculiar/x509";
