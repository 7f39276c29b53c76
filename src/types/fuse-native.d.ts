/** The part of fuse-native (CommonJS, untyped) that the mount uses. */
declare module 'fuse-native' {
  type Cb<T = number> = (err: number, result?: T) => void;
  export interface FuseStat {
    mode: number; uid: number; gid: number; size: number; nlink: number; ino?: number;
    mtime: Date; atime: Date; ctime: Date;
  }
  export interface FuseOps {
    getattr?(path: string, cb: Cb<FuseStat>): void;
    fgetattr?(path: string, fd: number, cb: Cb<FuseStat>): void;
    readdir?(path: string, cb: Cb<string[]>): void;
    open?(path: string, flags: number, cb: Cb<number>): void;
    create?(path: string, mode: number, cb: Cb<number>): void;
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void;
    write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void;
    truncate?(path: string, size: number, cb: (err: number) => void): void;
    ftruncate?(path: string, fd: number, size: number, cb: (err: number) => void): void;
    release?(path: string, fd: number, cb: (err: number) => void): void;
    mkdir?(path: string, mode: number, cb: (err: number) => void): void;
    rmdir?(path: string, cb: (err: number) => void): void;
    unlink?(path: string, cb: (err: number) => void): void;
    rename?(src: string, dest: string, cb: (err: number) => void): void;
    chmod?(path: string, mode: number, cb: (err: number) => void): void;
    chown?(path: string, uid: number, gid: number, cb: (err: number) => void): void;
    utimens?(path: string, atime: number, mtime: number, cb: (err: number) => void): void;
  }
  export interface FuseOptions {
    autoUnmount?: boolean; timeout?: number | false; fsname?: string; force?: boolean; mkdir?: boolean;
  }
  export default class Fuse {
    constructor(mnt: string, ops: FuseOps, opts?: FuseOptions);
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
  }
}
