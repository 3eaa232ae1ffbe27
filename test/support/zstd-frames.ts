// Counting the frames of a zstd stream from its headers (RFC 8878): which
// archives are one frame from the node plus the manifest's, and which are
// Kompox's frames of 1 MiB.

const FRAME_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

/** The zstd frames in `b` (skippable frames not counted); throws where no frame starts. */
export function zstdFrameCount(b: Buffer): number {
  let pos = 0;
  let frames = 0;
  while (pos < b.length) {
    const magic = b.readUInt32LE(pos);
    if (((magic & SKIPPABLE_MASK) >>> 0) === SKIPPABLE_MAGIC) {
      pos += 8 + b.readUInt32LE(pos + 4);
      continue;
    }
    if (magic !== FRAME_MAGIC) throw new Error(`no zstd frame starts at byte ${pos}`);
    const fhd = b[pos + 4]!;
    const singleSegment = (fhd >> 5) & 1;
    const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fhd >> 6]!;
    pos += 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][fhd & 3]! + fcsBytes;
    for (;;) {
      const h = b[pos]! | (b[pos + 1]! << 8) | (b[pos + 2]! << 16);
      const type = (h >> 1) & 3;
      pos += 3 + (type === 1 ? 1 : h >>> 3);
      if (h & 1) break;
    }
    if ((fhd >> 2) & 1) pos += 4;
    frames++;
  }
  if (pos !== b.length) throw new Error('the last zstd frame is cut short');
  return frames;
}
