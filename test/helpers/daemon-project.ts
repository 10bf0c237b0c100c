import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A throwaway project folder: config/segsync.yaml plus mappings/*.yaml, rewritable for reload tests. */
export interface TestProject {
  root: string;
  writeSettings(yaml: string): Promise<void>;
  writeMapping(name: string, yaml: string): Promise<void>;
  removeMapping(name: string): Promise<void>;
  cleanup(): Promise<void>;
}

export async function testProject(): Promise<TestProject> {
  const root = await mkdtemp(path.join(tmpdir(), 'segsync-daemon-'));
  await mkdir(path.join(root, 'config'));
  await mkdir(path.join(root, 'mappings'));
  return {
    root,
    writeSettings: (yaml) => writeFile(path.join(root, 'config', 'segsync.yaml'), yaml),
    writeMapping: (name, yaml) => writeFile(path.join(root, 'mappings', `${name}.yaml`), yaml),
    removeMapping: (name) => rm(path.join(root, 'mappings', `${name}.yaml`)),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** A minimal file mapping; `extra` is appended YAML (schedule, after, sla, ...). */
export function fileMapping(name: string, extra = ''): string {
  return `name: ${name}
source:
  model: rfm_current_segments
  key: user_id
destination:
  connection: files
  object: ${name}
  match_key: user_id
fields:
  - {to: segment, from: segment}
${extra}`;
}
