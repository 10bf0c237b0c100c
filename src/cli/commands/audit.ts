import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { withApp } from '../../app.ts';
import { signCheckpoint } from '../../audit/checkpoint.ts';
import { getSigningKey, readPublicKey } from '../../audit/keys.ts';
import { audit, sealAudit } from '../../audit/trail.ts';
import { readAudit, verifyHere } from '../../audit/read.ts';
import { UsageError } from '../../errors.ts';
import { cliActor } from '../../state/actor.ts';
import { insertCheckpoint, readHead } from '../../state/audit.ts';
import { readLedgerIdentity } from '../../state/ledger-identity.ts';
import { ensureState } from '../../sync/run.ts';
import { render, parseFormat } from '../format.ts';
import { appOptions, integer } from '../options.ts';
import { processingRecord } from '../../audit/processing-record.ts';

/** `segsync audit ...`: read, verify and checkpoint the audit trail (docs/security.md). */
export function registerAudit(program: Command): void {
  const group = program.command('audit').description('the tamper-evident audit trail: verify it, sign checkpoints, read it (docs/security.md)');

  group.command('verify')
    .description('recompute every leaf, the hash chain, each run\'s receipts root and the checkpoints; name the first row edited, deleted, inserted or reordered (exit 1 if any)')
    .option('--checkpoint <file...>', 'also check signed checkpoint file(s) exported earlier')
    .option('--public-key <file>', 'the PEM public key checkpoints were signed with (default: the configured signing key\'s)')
    .option('--json', 'the report as JSON')
    .action(async (o: { checkpoint?: string[]; publicKey?: string; json?: boolean }, cmd: Command) => {
      const extra = await Promise.all((o.checkpoint ?? []).map(async (f) => {
        try {
          return { note: await readFile(f, 'utf8'), where: f };
        } catch (err) {
          throw new UsageError(`--checkpoint ${f}: ${(err as Error).message}`);
        }
      }));
      // An auditor's machine verifies with the keys it is given: it never makes new ones (they would not match).
      const publicKey = o.publicKey ? readPublicKey(o.publicKey) : undefined;
      await withApp(appOptions(cmd), async (app) => {
        await ensureState(app);
        const { receiptsChecked: receipts, ...report } = await verifyHere(app.warehouse.pool, app.config.settings.state.schema, { publicKey, extra });
        if (!receipts) process.stderr.write('note: runs\' receipts not checked: no pseudonym key here (set SEGSYNC_PSEUDONYM_KEY to the one the trail was written with)\n');
        if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        else {
          const lines = report.problems.map((p) => `FAIL ${p.kind}: ${p.message}`);
          if (!report.problems.length) lines.push(`ok: ${report.rows} row(s) chained, ${report.runsChecked} run(s)' receipts match, ${report.checkpoints} checkpoint(s) verify${report.unsigned ? `; ${report.unsigned} row(s) after the last checkpoint are not signed yet` : ''}`);
          process.stdout.write(lines.join('\n') + '\n');
        }
        if (report.problems.length) process.exitCode = 1;
      });
    });

  group.command('checkpoint')
    .description('sign the chain\'s head (Ed25519, C2SP tlog-checkpoint note), store it and print it or write it to a file')
    .option('--out <file>', 'write the note to this file (keep it somewhere the database\'s admins cannot write)')
    .action(async (o: { out?: string }, cmd: Command) => {
      const key = getSigningKey();
      await withApp(appOptions(cmd), async (app) => {
        await ensureState(app);
        const schema = app.config.settings.state.schema;
        const db = app.warehouse.pool;
        await sealAudit(db, schema);
        const head = await readHead(db, schema);
        const cp = signCheckpoint(`segsync/${await readLedgerIdentity(db, schema)}`, head.seq, head.chainHash, key.privateKey, key.publicKey);
        await insertCheckpoint(db, schema, { seq: cp.size, chainHash: cp.chainHash, note: cp.note });
        await audit(db, schema, { actor: cliActor(), action: 'audit.checkpoint', subject: `audit:${cp.size}`, details: { size: cp.size, file: o.out ?? null } });
        if (o.out) {
          await writeFile(o.out, cp.note);
          process.stdout.write(`checkpoint of ${cp.size} row(s) written to ${o.out}\n`);
        } else process.stdout.write(cp.note);
      });
    });

  group.command('public-key')
    .description('print the PEM public key that verifies the checkpoints (give it to the auditor)')
    .action(() => {
      process.stdout.write(getSigningKey().publicKey.export({ type: 'spki', format: 'pem' }).toString());
    });

  group.command('log')
    .description('the audit trail, newest first (keys are pseudonyms, payloads hashes)')
    .option('--limit <n>', 'rows', integer(1), 50)
    .option('--action <prefix>', 'only actions starting with this, e.g. run. or pii.')
    .option('--subject <subject>', 'only this subject, e.g. run:42')
    .option('--format <format>', 'table, json or csv', parseFormat, 'table')
    .action(async (o: { limit: number; action?: string; subject?: string; format: 'table' | 'json' | 'csv' }, cmd: Command) => {
      await withApp(appOptions(cmd), async (app) => {
        await ensureState(app);
        const rows = await readAudit(app.warehouse.pool, app.config.settings.state.schema, o);
        process.stdout.write(render(rows.map((r) => ({ seq: r.seq, at: r.at.toISOString(), actor: `${r.actorType}:${r.actorId}`, action: r.action, subject: r.subject ?? '', details: JSON.stringify(JSON.parse(r.entry).details) })), o.format) + '\n');
      });
    });

  group.command('processing-record')
    .description('a GDPR Article 30 record of processing generated from the config: recipients, categories of data, retention')
    .option('--format <format>', 'markdown or json', 'markdown')
    .action(async (o: { format: string }, cmd: Command) => {
      if (o.format !== 'markdown' && o.format !== 'json') throw new UsageError(`--format: expected markdown or json, not '${o.format}'`);
      const { loadConfig } = await import('../../app.ts');
      const config = await loadConfig(appOptions(cmd));
      const record = processingRecord(config);
      process.stdout.write(o.format === 'json' ? JSON.stringify(record.json, null, 2) + '\n' : record.markdown);
    });
}
