/**
 * TLS of the main listener (`listen.tls`, docs/configuration.md): the certificate, key and client CA files,
 * read and checked at startup and reloaded when they change. A reload reads and checks every file,
 * builds the new context, and only then swaps it in (`server.setSecureContext`): new handshakes use
 * it, open connections keep theirs. A missing or broken file keeps the last good context and is
 * logged, like a failed policy reload (conventions §9).
 *
 * Client chains are verified in the handshake against clientCaFile plus the X.509 authorities of
 * every configured SPIFFE trust domain ({@link ListenerTls.setClientAuthorities}), swapped in the
 * same way when a bundle changes. That union only decides whether the handshake verified the
 * chain; which authority may vouch for which SPIFFE ID is checked per trust domain afterwards
 * (src/credentials/x509-svid.ts). When client certificates are asked for, the CA list is always
 * given, even empty: without one Node would verify clients against its public root store.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server as HttpsServer, ServerOptions } from 'node:https';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { distinguishedName } from '../credentials/client-certificate.ts';
import { watchFiles, type FileWatch } from '../file-watch.ts';
import type { Logger } from '../observability/logger.ts';

export type ClientCertMode = 'none' | 'optional' | 'required';

/** Absolute paths of the files. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  clientCaFile?: string | undefined;
}

export interface LoadedTls {
  /** What `createSecureContext` takes: the certificate chain, key and client CAs as read. */
  context: { cert: Buffer; key: Buffer; ca?: Buffer };
  /** The listener's own certificate (the first in certFile). */
  certificate: X509Certificate;
  /** How many CA certificates clientCaFile holds (0 without one). */
  clientCas: number;
  /** SHA-256 over every file, so an event that changed nothing reloads nothing. */
  digest: string;
}

/** A TLS file that cannot be used; `key` is its `listen.tls` key. */
export class TlsFileError extends Error {
  readonly key: 'certFile' | 'keyFile' | 'clientCaFile';
  readonly file: string;
  /** What is wrong with the file, without its name. */
  readonly reason: string;
  constructor(key: TlsFileError['key'], file: string, reason: string, cause?: unknown) {
    super(`listen.tls.${key} ${file}: ${reason}`, cause === undefined ? undefined : { cause });
    this.name = 'TlsFileError';
    this.key = key;
    this.file = file;
    this.reason = reason;
  }
}

/**
 * Reads and checks the files: certFile holds PEM certificates (leaf first), keyFile the PEM key
 * of that leaf (unencrypted), clientCaFile PEM certificates. Throws TlsFileError naming the file.
 * Node itself accepts a CA file without any certificate in it, and would then trust nothing
 * without saying so; that is refused here.
 */
export function readTlsFiles(files: TlsFiles): LoadedTls {
  const read = (key: TlsFileError['key'], file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new TlsFileError(key, file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, err);
    }
  };
  const cert = read('certFile', files.certFile);
  const key = read('keyFile', files.keyFile);
  const ca = files.clientCaFile === undefined ? undefined : read('clientCaFile', files.clientCaFile);
  const chain = pemCertificates(cert, 'certFile', files.certFile);
  const clientCas = ca === undefined ? 0 : pemCertificates(ca, 'clientCaFile', files.clientCaFile!).length;
  const context = { cert, key, ...(ca === undefined ? {} : { ca }) };
  try {
    createSecureContext(context);
  } catch (err) {
    // The certificates parsed, so what fails is the key: unreadable, encrypted, or not the leaf's.
    throw new TlsFileError('keyFile', files.keyFile, `is not a usable private key for certFile (${(err as Error).message})`, err);
  }
  const digest = createHash('sha256');
  for (const part of [cert, key, ca ?? Buffer.alloc(0)]) digest.update(createHash('sha256').update(part).digest());
  return { context, certificate: chain[0]!, clientCas, digest: digest.digest('hex') };
}

function pemCertificates(pem: Buffer, key: TlsFileError['key'], file: string): X509Certificate[] {
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new TlsFileError(key, file, 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new TlsFileError(key, file, `certificate ${i + 1} cannot be parsed (${(err as Error).message})`, err);
    }
  });
}

export interface ListenerTlsOptions extends TlsFiles {
  clientCert: ClientCertMode;
  logger: Logger;
  /** Wait after the last file event before reloading. Default 200 ms. */
  debounceMs?: number;
  now?: () => number;
}

export interface TlsStatus {
  clientCert: ClientCertMode;
  certificate: { subject: string; notAfter: string };
  clientCas: number;
  /** How many X.509 authorities of SPIFFE trust bundles the handshake also trusts. */
  clientAuthorities: number;
  loadedAt: string;
  /** Why the last file reload (or else the last setClientAuthorities) failed; null after a success. */
  lastError: string | null;
}

export class ListenerTls {
  readonly clientCert: ClientCertMode;
  private readonly options: ListenerTlsOptions;
  private current: LoadedTls;
  /** Bundle authorities added to clientCaFile's CAs, without duplicates. */
  private clientAuthorities: readonly X509Certificate[] = [];
  private loadedAt: Date;
  private lastError: string | null = null;
  /** Why the last setClientAuthorities failed; kept apart so a file reload does not clear it, nor it a file error. */
  private authoritiesError: string | null = null;
  private server: HttpsServer | undefined;
  private watcher: FileWatch | undefined;

  /** Reads the files once; throws TlsFileError when one cannot be used (startup fails). */
  constructor(options: ListenerTlsOptions) {
    this.options = options;
    this.clientCert = options.clientCert;
    this.current = readTlsFiles(options);
    this.loadedAt = new Date(this.now());
    this.warnIfExpired();
  }

  /**
   * Options for `https.createServer`. `optional` asks for a certificate and lets the handshake
   * finish without one, or with one the CA does not verify (`socket.authorized` is then false);
   * `required` fails the handshake unless the CA verifies the certificate.
   */
  serverOptions(): ServerOptions {
    return {
      ...this.contextOptions(this.current, this.clientAuthorities),
      requestCert: this.clientCert !== 'none',
      rejectUnauthorized: this.clientCert === 'required',
    };
  }

  /** Watches the files (src/file-watch.ts: through their folders) and reloads into `server`. */
  watch(server: HttpsServer): void {
    this.server = server;
    // Authorities set before the server existed (trust bundles load first) are not in the options
    // it was created with.
    if (this.clientAuthorities.length > 0) server.setSecureContext(this.contextOptions(this.current, this.clientAuthorities));
    if (this.watcher) return;
    const files = [this.options.certFile, this.options.keyFile, this.options.clientCaFile].filter((f): f is string => f !== undefined);
    this.watcher = watchFiles(files, {
      debounceMs: this.options.debounceMs ?? 200,
      onChange: () => this.reload(),
      onError: (err, dir) => this.options.logger.error({ err, dir }, 'TLS file watcher failed; certificate reload is off for this folder'),
    });
  }

  /**
   * Reads the files again and, when they changed and all are usable, makes new handshakes use
   * them. Returns whether the context was replaced. Never throws.
   */
  reload(): boolean {
    let next: LoadedTls;
    try {
      next = readTlsFiles(this.options);
      if (next.digest !== this.current.digest) this.server?.setSecureContext(this.contextOptions(next, this.clientAuthorities));
    } catch (err) {
      this.lastError = err instanceof Error ? err.message : String(err);
      this.options.logger.error({ err: this.lastError, keptCertificate: this.status().certificate }, 'TLS files reload failed; keeping the previous certificate');
      return false;
    }
    this.lastError = null;
    if (next.digest === this.current.digest) return false;
    this.current = next;
    this.loadedAt = new Date(this.now());
    this.options.logger.info({ certificate: this.status().certificate, clientCas: next.clientCas }, 'TLS files reloaded');
    this.warnIfExpired();
    return true;
  }

  /**
   * Makes the handshake verify client chains against `certs` too (X509-SVID §5.1: the X.509
   * authorities of every configured trust domain), next to clientCaFile's CAs. Call it at startup
   * and whenever a bundle changes; the same set again (by SHA-256 fingerprint) does nothing. Like a
   * file reload, the new context is built fully, then swapped in for new handshakes; if it cannot
   * be built the previous one stays, and the failure is logged and shown in status().lastError.
   * Ignored with clientCert none, where no certificate is asked for. Returns whether the context
   * was replaced; never throws.
   */
  setClientAuthorities(certs: readonly X509Certificate[]): boolean {
    if (this.clientCert === 'none') return false;
    const byFingerprint = new Map(certs.map((c) => [c.fingerprint256, c]));
    const next = [...byFingerprint.values()];
    if (next.length === this.clientAuthorities.length && this.clientAuthorities.every((c) => byFingerprint.has(c.fingerprint256))) return false;
    try {
      const options = this.contextOptions(this.current, next);
      createSecureContext(options);
      this.server?.setSecureContext(options);
    } catch (err) {
      this.authoritiesError = `client authorities: ${err instanceof Error ? err.message : String(err)}`;
      this.options.logger.error({ err: this.authoritiesError, keptClientAuthorities: this.clientAuthorities.length }, 'TLS client authorities could not be installed; keeping the previous ones');
      return false;
    }
    this.authoritiesError = null;
    this.clientAuthorities = next;
    this.options.logger.info({ clientAuthorities: next.map((c) => distinguishedName(c.subject)), clientCas: this.current.clientCas }, 'TLS client authorities updated');
    return true;
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  status(): TlsStatus {
    const c = this.current.certificate;
    return {
      clientCert: this.clientCert,
      certificate: { subject: distinguishedName(c.subject), notAfter: c.validToDate.toISOString() },
      clientCas: this.current.clientCas,
      clientAuthorities: this.clientAuthorities.length,
      loadedAt: this.loadedAt.toISOString(),
      lastError: this.lastError ?? this.authoritiesError,
    };
  }

  /**
   * What `createSecureContext` gets. With client certificates asked for, `ca` is clientCaFile's
   * PEM plus each authority, and present even when empty (see the module comment).
   */
  private contextOptions(loaded: LoadedTls, authorities: readonly X509Certificate[]): SecureContextOptions {
    if (this.clientCert === 'none') return loaded.context;
    const { cert, key, ca } = loaded.context;
    return { cert, key, ca: [...(ca === undefined ? [] : [ca]), ...authorities.map((c) => c.toString())] };
  }

  private warnIfExpired(): void {
    const c = this.current.certificate;
    if (c.validToDate.getTime() < this.now()) this.options.logger.warn({ certificate: this.status().certificate }, 'the listener certificate has expired; clients will refuse the handshake');
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}
