import { createHash, hash } from 'node:crypto';
import canonicalize from 'canonicalize';

/** The RFC 8785 canonical JSON of a value: one byte sequence per value, whatever its key order. */
export function canonical(value: unknown): string {
  const s = canonicalize(value);
  if (s === undefined) throw new Error('not JSON-serialisable');
  return s;
}

export const GENESIS = '0'.repeat(64);

/** RFC 6962 leaf hash: SHA-256(0x00 || data), hex. (U+0000 is the one byte 0x00 in UTF-8.) */
export function leafHash(data: string): string {
  return hash('sha256', `\u0000${data}`, 'hex');
}

/** 0x01 and two SHA-256 digests, rewritten for every node (one thread, no await between write and hash). */
const NODE_INPUT = Buffer.alloc(65, 1);
/** RFC 6962 interior node: SHA-256(0x01 || left || right), hex in, hex out. The chain links with it too. */
export function nodeHash(left: string, right: string): string {
  // Buffer.write stops at the first character that is not hex: anything but two digests is refused, not truncated.
  if (left.length !== 64 || right.length !== 64 || NODE_INPUT.write(left, 1, 'hex') !== 32 || NODE_INPUT.write(right, 33, 'hex') !== 32) {
    throw new Error(`an interior node hashes two SHA-256 digests in hex, got ${JSON.stringify(left.slice(0, 80))} and ${JSON.stringify(right.slice(0, 80))}`);
  }
  return hash('sha256', NODE_INPUT, 'hex');
}

/** The chain: each row's hash covers the previous one and its own leaf. */
export function chainHash(prev: string, leaf: string): string {
  return nodeHash(prev, leaf);
}

/** RFC 6962 Merkle tree hash over leaf hashes (hex); the empty tree is SHA-256 of nothing. */
export function merkleRoot(leaves: string[]): string {
  if (leaves.length === 0) return createHash('sha256').digest('hex');
  let level = leaves;
  while (level.length > 1) {
    const next: string[] = [];
    // RFC 6962 splits at the largest power of two below n; pairing left to right and promoting an odd last
    // node gives the same root.
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? nodeHash(level[i]!, level[i + 1]!) : level[i]!);
    level = next;
  }
  return level[0]!;
}

/** A payload as the trail keeps it: its hash, never its content. */
export function payloadDigest(value: unknown): string {
  return 'sha256:' + createHash('sha256').update(canonical(value ?? null), 'utf8').digest('hex');
}

/**
 * The same RFC 6962 root built leaf by leaf in O(log n) memory: full subtrees are merged as they complete, and
 * what is left is folded from the right (the largest power of two goes left, as RFC 6962 splits).
 */
export class MerkleBuilder {
  #stack: Array<{ size: number; hash: string }> = [];
  count = 0;

  add(leaf: string): void {
    this.count++;
    let node = { size: 1, hash: leaf };
    while (this.#stack.length && this.#stack[this.#stack.length - 1]!.size === node.size) {
      const left = this.#stack.pop()!;
      node = { size: left.size * 2, hash: nodeHash(left.hash, node.hash) };
    }
    this.#stack.push(node);
  }

  root(): string {
    if (!this.#stack.length) return merkleRoot([]);
    let hash = this.#stack[this.#stack.length - 1]!.hash;
    for (let i = this.#stack.length - 2; i >= 0; i--) hash = nodeHash(this.#stack[i]!.hash, hash);
    return hash;
  }
}
