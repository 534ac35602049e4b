import type * as grpc from '@grpc/grpc-js';
import type { Snapshot } from '../api/generated/mailmesh/v1/Snapshot.ts';

/** The current signed snapshot as sent on the wire. */
export interface PublishedSnapshot {
  revision: string;
  jws: string;
}

type Stream = grpc.ServerWritableStream<unknown, Snapshot>;

/**
 * Holds the current snapshot and every open Watch stream. A new revision is written to every
 * stream at once; the message object is shared, and the Watch serializer memoizes its encoding
 * per object (see {@link memoizedSerializer}), so a 50 MB snapshot is signed and encoded once.
 */
export class Publisher {
  current: PublishedSnapshot | undefined;
  private readonly streams = new Set<Stream>();

  /** Number of open Watch streams. */
  get watchers(): number {
    return this.streams.size;
  }

  /** Replace the current snapshot; `broadcast` false only for a re-signature of the same revision. */
  publish(snap: PublishedSnapshot, broadcast = true): void {
    this.current = snap;
    if (!broadcast) return;
    for (const s of this.streams) s.write(snap);
  }

  /** Add a Watch stream; it gets the current snapshot unless it already has that revision. */
  attach(stream: Stream, haveRevision: string): void {
    this.streams.add(stream);
    const drop = () => this.streams.delete(stream);
    stream.on('cancelled', drop);
    stream.on('close', drop);
    stream.on('error', drop);
    if (this.current && this.current.revision !== haveRevision) stream.write(this.current);
  }

  /** End every stream (shutdown). */
  closeAll(): void {
    for (const s of this.streams) s.end();
    this.streams.clear();
  }
}

/**
 * Wrap a message serializer so the same object is encoded once however many streams send it.
 * Keyed weakly by the object: old snapshots are collected with their encodings.
 */
export function memoizedSerializer<T extends object>(serialize: (value: T) => Buffer): (value: T) => Buffer {
  const cache = new WeakMap<T, Buffer>();
  return (value: T) => {
    let buf = cache.get(value);
    if (!buf) {
      buf = serialize(value);
      cache.set(value, buf);
    }
    return buf;
  };
}
