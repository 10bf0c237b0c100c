import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.ts';
import { hmacKeyOf, pseudonymUnder } from './receipt-leaf.ts';

/**
 * The audit trail's two secrets (docs/security.md):
 * - the pseudonym key: HMAC-SHA256 over a record's key, so the trail names a person without holding who it is;
 *   SEGSYNC_PSEUDONYM_KEY (any string, >= 16 characters);
 * - the checkpoint signing key: Ed25519; SEGSYNC_AUDIT_SIGNING_KEY (a PKCS#8 PEM, or its path in
 *   SEGSYNC_AUDIT_SIGNING_KEY_FILE).
 * Without them, each is generated once into SEGSYNC_AUDIT_KEY_DIR (default .segsync/audit, mode 0600): good for
 * one host; daemon replicas must share them through the environment.
 */
export function keyDir(): string {
  return process.env.SEGSYNC_AUDIT_KEY_DIR ?? path.join('.segsync', 'audit');
}

function fileSecret(name: string, make: () => string): string {
  const file = path.join(keyDir(), name);
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(keyDir(), { recursive: true, mode: 0o700 });
  const value = make();
  try {
    writeFileSync(file, value, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file, 'utf8'); // another process won
    throw err;
  }
  chmodSync(file, 0o600);
  return value;
}

function fileExists(name: string): boolean {
  try {
    readFileSync(path.join(keyDir(), name));
    return true;
  } catch {
    return false;
  }
}

/** Whether a pseudonym key is configured or was made here (a verifier must never make a new one). */
export function hasPseudonymKey(): boolean {
  return process.env.SEGSYNC_PSEUDONYM_KEY !== undefined || fileExists('pseudonym.key');
}

/** Whether a signing key is configured or was made here. */
export function hasSigningKey(): boolean {
  return !!process.env.SEGSYNC_AUDIT_SIGNING_KEY || !!process.env.SEGSYNC_AUDIT_SIGNING_KEY_FILE || fileExists('signing.pem');
}

let pseudonymKey: string | undefined;

export function getPseudonymKey(): string {
  const env = process.env.SEGSYNC_PSEUDONYM_KEY;
  if (env !== undefined) {
    if (env.length < 16) throw new UsageError('SEGSYNC_PSEUDONYM_KEY must be at least 16 characters');
    return env;
  }
  pseudonymKey ??= fileSecret('pseudonym.key', () => randomBytes(32).toString('base64url')).trim();
  return pseudonymKey;
}

/** A keyed pseudonym of a record key (or any identifier): stable under one key, meaningless without it. */
export function pseudonym(value: string): string {
  return pseudonymUnder(hmacKey(), value);
}

/**
 * `pseudonym` with the key resolved once, for many values in a row (a run's receipts): reading the
 * environment for each of a million keys was a tenth of their hashing.
 */
export function pseudonymizer(): (value: string) => string {
  const key = hmacKey();
  return (value) => pseudonymUnder(key, value);
}

// The HMAC key as a KeyObject, made once per key text (a run's seal takes a pseudonym of every receipt's key).
let hmacCache: { text: string; key: KeyObject } | undefined;
function hmacKey(): KeyObject {
  const text = getPseudonymKey();
  if (hmacCache?.text !== text) hmacCache = { text, key: hmacKeyOf(text) };
  return hmacCache.key;
}

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function getSigningKey(): SigningKey {
  let pem = process.env.SEGSYNC_AUDIT_SIGNING_KEY;
  const file = process.env.SEGSYNC_AUDIT_SIGNING_KEY_FILE;
  if (!pem && file) {
    try {
      pem = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`SEGSYNC_AUDIT_SIGNING_KEY_FILE: cannot read ${file}: ${(err as Error).message}`);
    }
  }
  pem ??= fileSecret('signing.pem', () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (err) {
    throw new UsageError(`the audit signing key is not a PEM private key: ${(err as Error).message}`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new UsageError(`the audit signing key must be Ed25519, not ${privateKey.asymmetricKeyType}`);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** Reads a public key (PEM) for verifying checkpoints somewhere the signing key is not. */
export function readPublicKey(file: string): KeyObject {
  try {
    return createPublicKey(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--public-key ${file}: not a readable PEM public key: ${(err as Error).message}`);
  }
}
