/**
 * Crypto-random 16-bit IDs for datagram protocols that match a reply to its query by ID (DNS,
 * SIQ): an off-path attacker must guess the ID (RFC 5452 for DNS). Drawn from a buffer refilled
 * from the CSPRNG, so there is one system call per `batch` IDs rather than one per ID.
 */
import { randomFillSync } from 'node:crypto';

export class RandomIds {
  private readonly buf: Buffer;
  private pos: number;

  /** `batch`: how many IDs each refill draws. */
  constructor(batch: number) {
    this.buf = Buffer.allocUnsafe(2 * batch);
    this.pos = this.buf.length;
  }

  next(): number {
    if (this.pos >= this.buf.length) {
      randomFillSync(this.buf);
      this.pos = 0;
    }
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }
}
