import { parentPort, workerData } from 'node:worker_threads';
import { MerkleBuilder } from './hash.ts';
import { adoptPseudonymKey } from './keys.ts';
import { receiptLeaf } from './receipt-leaf.ts';
import type { LeafColumns } from './receipts-tree.ts';

/**
 * The receipts tree's hashing on a thread of its own (src/audit/receipts-tree.ts): a batch's receipts arrive as
 * columns, in batch order (one port keeps the order), and are added leaf by leaf; `root` answers the root of
 * everything added so far.
 */
adoptPseudonymKey((workerData as { pseudonymKey: string }).pseudonymKey);
const tree = new MerkleBuilder();
const port = parentPort!;
port.on('message', (m: { type: 'leaves'; columns: LeafColumns } | { type: 'root' }) => {
  if (m.type === 'root') {
    port.postMessage({ count: tree.count, root: tree.root() });
    return;
  }
  const c = m.columns;
  for (let i = 0; i < c.key.length; i++) {
    tree.add(receiptLeaf({ key: c.key[i]!, op: c.op[i]!, status: c.status[i]!, payloadHash: c.payloadHash[i]!, destinationId: c.destinationId[i]!, errorCode: c.errorCode[i]!, attempt: c.attempt[i]!, requestId: c.requestId[i]! }));
  }
});
