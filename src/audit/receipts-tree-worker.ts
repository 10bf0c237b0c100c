import { parentPort, workerData } from 'node:worker_threads';
import { MerkleBuilder } from './hash.ts';
import { hmacKeyOf, pseudonymUnder, receiptLeafWith, unpackLeaves } from './receipt-leaf.ts';

/**
 * The receipts tree's hashing on a thread of its own (receipts-tree.ts): batches arrive packed (packLeaves), in
 * batch order (one port keeps the order), each answered 'added' once its leaves are in the tree; 'root' answers
 * the root of everything added so far. The pseudonym key is the one the parent resolved: the same pseudonyms
 * whichever thread hashes, and no key file made by a thread.
 */
const key = hmacKeyOf((workerData as { pseudonymKey: string }).pseudonymKey);
const pseudonymOf = (value: string) => pseudonymUnder(key, value);
const tree = new MerkleBuilder();
const port = parentPort!;
port.on('message', (m: { type: 'leaves'; packed: string } | { type: 'root' }) => {
  if (m.type === 'root') {
    port.postMessage({ type: 'root', count: tree.count, root: tree.root() });
    return;
  }
  for (const r of unpackLeaves(m.packed)) tree.add(receiptLeafWith(r, pseudonymOf));
  port.postMessage({ type: 'added' });
});
