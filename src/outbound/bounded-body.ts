/**
 * The one bounded body reader. A peer's body is read into memory only up to a cap, so a
 * misbehaving key server, bundle server, authorization server or client cannot make us buffer
 * without limit. A declared
 * `Content-Length` over the cap is refused before a byte is read (RFC 9110 §8.6); a body without
 * one (chunked, RFC 9112 §7.1) is counted as it arrives and refused at the first byte past the cap.
 *
 * The reader knows no codes and no wording: each caller passes the errors it throws, so a key set
 * fetch, an introspection call and a request body each keep their own (conventions §4).
 */

/** How one caller bounds a body and which errors it raises. */
export interface BoundedBodyOptions {
  /** Largest body accepted, in bytes. */
  maxBytes: number;
  /**
   * The `Content-Length` field as received. A declared size over `maxBytes` is refused unread; a
   * value that is not a number is ignored (the count still bounds the body).
   */
  contentLength?: string | string[] | undefined;
  /** The error thrown for a body over `maxBytes`, declared or counted. */
  tooLarge: () => Error;
  /** The error thrown when the stream fails while being read; `cause` is what it threw. */
  readFailed: (cause: unknown) => Error;
  /**
   * Disposes of a body refused for its declared size, which was not read at all (e.g. undici's
   * `body.dump()`, so the connection is reused or closed). Default: left as it is.
   */
  discard?: () => Promise<unknown>;
}

/**
 * Reads `body` whole, at most `maxBytes` of it. Throws `tooLarge()` or `readFailed(cause)`, never
 * a third-party error. A body cut at the cap is destroyed: leaving a `for await` loop early
 * destroys a Node.js Readable (Node.js docs, stream "readable[Symbol.asyncIterator]()"), and
 * undici's answer bodies and node:http's requests are Readables.
 */
export async function readBounded(body: AsyncIterable<Uint8Array>, options: BoundedBodyOptions): Promise<Buffer> {
  const { maxBytes } = options;
  const declared = Number(options.contentLength);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await options.discard?.();
    throw options.tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  let over = false;
  try {
    for await (const chunk of body) {
      size += chunk.length;
      if (size > maxBytes) {
        over = true;
        break;
      }
      chunks.push(chunk);
    }
  } catch (err) {
    throw options.readFailed(err);
  }
  if (over) throw options.tooLarge();
  return Buffer.concat(chunks);
}
