/** File helpers shared by the readers of binary files (ELF, persist files, input sniffing). */
import { readSync } from 'node:fs';

/** Bytes [offset, offset + length) of an open file; shorter where the file ends first. */
export function readAt(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, offset + got);
    if (n === 0) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}
