/**
 * What an identity may do. Every HTTP route and every CLI action that changes something declares one of these;
 * roles (below) are sets of them. The permission matrix in the docs is generated from this file.
 */
export const PERMISSIONS = {
  read: 'see mappings, runs, plans, events, monitors, alerts and records, PII masked',
  run: 'trigger a run or a dry run, retry, cancel a run',
  approve: 'approve or reject a held run (never one the same identity triggered or whose config it changed)',
  silence: 'add and expire alert silences, acknowledge monitors',
  edit: 'change mappings and settings, setup --apply, reconcile --repair',
  audit: 'read and verify the audit trail and export checkpoints',
  pii: 'see unmasked personal data (every view is audited with its reason)',
  erase: 'forget a person in every destination',
  admin: 'create and revoke tokens, everything else',
} as const;

export type Permission = keyof typeof PERMISSIONS;

export const ROLES = {
  viewer: ['read'],
  operator: ['read', 'run', 'silence'],
  approver: ['read', 'approve'],
  editor: ['read', 'run', 'silence', 'edit'],
  auditor: ['read', 'audit'],
  admin: Object.keys(PERMISSIONS) as Permission[],
} as const satisfies Record<string, readonly Permission[]>;

export type Role = keyof typeof ROLES;

export function roleAllows(role: Role, permission: Permission): boolean {
  return (ROLES[role] as readonly Permission[]).includes(permission);
}

/**
 * Who is asking, once a credential was checked: the actor recorded on what they do (runs, approvals, audit rows)
 * and the roles that decide what they may do.
 */
export interface Identity {
  actor: import('../state/actor.ts').Actor;
  roles: Role[];
}

export function identityAllows(identity: Identity, permission: Permission): boolean {
  return identity.roles.some((r) => roleAllows(r, permission));
}
