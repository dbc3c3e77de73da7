/**
 * The responses in flight, with the access token each was allowed with, so that a remediation
 * (docs/signals.md) can close the ones it revokes: a Server-Sent Events stream, a long body, a
 * WebSocket (whose response is bound to the upgraded socket, src/proxy/upgrade.ts). A revoked
 * token's open streams are cut, as an upstream failure after the head cuts them: the client sees
 * the connection end, never a truncated answer that looks complete.
 *
 * Per request: one Set insertion and one `close` listener; a remediation walks the set once
 * (events are rare, requests are not).
 */
import type { ServerResponse } from 'node:http';
import type { VerifiedAccessToken } from '../credentials/access-token.ts';

interface OpenStream {
  res: ServerResponse;
  token: VerifiedAccessToken;
}

export class OpenStreams {
  private readonly open = new Set<OpenStream>();

  /** Holds `res` until it closes. */
  track(res: ServerResponse, token: VerifiedAccessToken): void {
    const entry: OpenStream = { res, token };
    this.open.add(entry);
    res.once('close', () => this.open.delete(entry));
  }

  /** Cuts every open response whose token `revoked` matches; returns how many. */
  close(revoked: (token: VerifiedAccessToken) => boolean): number {
    let closed = 0;
    for (const entry of this.open) {
      if (!revoked(entry.token)) continue;
      this.open.delete(entry);
      // Destroys the client socket: for a WebSocket the upgraded connection, for a stream the
      // response (the forwarder then aborts the upstream request, src/proxy/forward.ts).
      entry.res.destroy();
      closed++;
    }
    return closed;
  }

  get size(): number {
    return this.open.size;
  }
}
