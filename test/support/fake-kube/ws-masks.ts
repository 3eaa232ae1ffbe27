// What a WebSocket client's frames carry as masking keys (RFC 6455 §5.2),
// read off the wire by their headers alone (payloads are skipped, never
// held): the client in src/kube/exec-stream.ts sends zero keys over TLS and
// random ones otherwise, and tests check which it did.

export interface MaskCounts {
  /** Masked frames whose key is zero. */
  zero: number;
  /** Masked frames with any other key. */
  other: number;
  /** Frames without a mask (a client must mask every frame). */
  unmasked: number;
}

interface FrameHeader {
  /** Header bytes, masking key included. */
  size: number;
  payload: number;
  masked: boolean;
  key: number;
}

function parseHeader(h: Buffer): FrameHeader | undefined {
  if (h.length < 2) return undefined;
  const masked = (h[1]! & 0x80) !== 0;
  let payload = h[1]! & 0x7f;
  let off = 2;
  if (payload === 126) {
    if (h.length < 4) return undefined;
    payload = h.readUInt16BE(2);
    off = 4;
  } else if (payload === 127) {
    if (h.length < 10) return undefined;
    payload = Number(h.readBigUInt64BE(2));
    off = 10;
  }
  const size = off + (masked ? 4 : 0);
  if (h.length < size) return undefined;
  return { size, payload, masked, key: masked ? h.readUInt32BE(off) : 0 };
}

/** Counts into `counts` the masks of the frames in the bytes pushed, in order, as they arrive. */
export class MaskTally {
  private head = Buffer.alloc(0);
  private skip = 0;
  constructor(private readonly counts: MaskCounts) {}
  push(b: Buffer): void {
    let i = 0;
    while (i < b.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, b.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      const h = Buffer.concat([this.head, b.subarray(i, i + 14 - this.head.length)]);
      const f = parseHeader(h);
      if (!f) {
        i += h.length - this.head.length;
        this.head = h;
        continue;
      }
      i += f.size - this.head.length;
      this.head = Buffer.alloc(0);
      if (!f.masked) this.counts.unmasked++;
      else if (f.key === 0) this.counts.zero++;
      else this.counts.other++;
      this.skip = f.payload;
    }
  }
}
