import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import { UsageError } from '../errors.ts';

/**
 * Signed checkpoints of the audit chain as C2SP tlog-checkpoint notes (https://c2sp.org/tlog-checkpoint,
 * https://c2sp.org/signed-note), signed with Ed25519:
 *
 *     segsync/<ledger id>          origin
 *     <n>                          rows covered (seq 1..n)
 *     <base64 chain hash at n>     the head of the hash chain after row n
 *                                  (blank line)
 *     — segsync/<ledger id> <base64(key id (4 bytes) || signature)>
 */
export interface Checkpoint {
  origin: string;
  size: number;
  chainHash: string;
  note: string;
}

function rawPublicKey(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  return Buffer.from(jwk.x!, 'base64url');
}

/** The signed-note key id: the first 4 bytes of SHA-256(name || "\n" || 0x01 || public key). */
export function keyId(name: string, publicKey: KeyObject): Buffer {
  return createHash('sha256').update(name, 'utf8').update(Buffer.from([0x0a, 0x01])).update(rawPublicKey(publicKey)).digest().subarray(0, 4);
}

export function signCheckpoint(origin: string, size: number, chainHash: string, privateKey: KeyObject, publicKey: KeyObject): Checkpoint {
  const body = `${origin}\n${size}\n${Buffer.from(chainHash, 'hex').toString('base64')}\n`;
  const sig = sign(null, Buffer.from(body, 'utf8'), privateKey);
  const note = `${body}\n\u2014 ${origin} ${Buffer.concat([keyId(origin, publicKey), sig]).toString('base64')}\n`;
  return { origin, size, chainHash, note };
}

/** Parses a note and checks its signature with `publicKey`; a bad or foreign note is a usage error saying why. */
export function openCheckpoint(note: string, publicKey: KeyObject, where = 'checkpoint'): Checkpoint {
  const split = note.indexOf('\n\n');
  if (split < 0) throw new UsageError(`${where}: not a signed note (no blank line before the signature)`);
  const body = note.slice(0, split + 1);
  const lines = body.split('\n');
  const [origin, sizeText, rootB64] = lines;
  if (!origin || !sizeText || !rootB64 || !/^\d+$/.test(sizeText)) throw new UsageError(`${where}: expected the lines origin, size and root hash`);
  const sigLine = note.slice(split + 2).split('\n').find((l) => l.startsWith(`\u2014 ${origin} `));
  if (!sigLine) throw new UsageError(`${where}: no signature line by ${origin}`);
  const blob = Buffer.from(sigLine.slice(`\u2014 ${origin} `.length).trim(), 'base64');
  if (blob.length !== 68 || !blob.subarray(0, 4).equals(keyId(origin, publicKey))) throw new UsageError(`${where}: signed by another key than the one given`);
  if (!verify(null, Buffer.from(body, 'utf8'), publicKey, blob.subarray(4))) throw new UsageError(`${where}: the signature does not verify: the note was altered`);
  return { origin, size: Number(sizeText), chainHash: Buffer.from(rootB64, 'base64').toString('hex'), note };
}
