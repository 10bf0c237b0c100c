import type { Mapping } from '../../src/config/mapping.ts';
import type { FieldDescription } from '../types.ts';
import type { CasesConfig } from './config.ts';

/**
 * The mapping checked against describe (fields exist and are writable, types fit the transforms, the match
 * field is an external ID, mapped picklist values exist), and the field definitions `segsync setup` prints
 * for an admin: custom fields cannot be created through the REST API segsync uses.
 */

export interface SfDescribeField {
  name: string;
  type: string;
  length?: number;
  externalId?: boolean;
  unique?: boolean;
  createable?: boolean;
  updateable?: boolean;
  nillable?: boolean;
  defaultedOnCreate?: boolean;
  picklistValues?: Array<{ value: string; active?: boolean }>;
  restrictedPicklist?: boolean;
}

export interface SfDescribe {
  name: string;
  deletable?: boolean;
  fields: SfDescribeField[];
}

export function fieldDescriptions(d: SfDescribe): FieldDescription[] {
  return d.fields.map((f) => ({
    name: f.name, type: f.type, writable: f.createable === true || f.updateable === true,
    ...(f.type === 'picklist' || f.type === 'multipicklist' ? { options: (f.picklistValues ?? []).filter((p) => p.active !== false).map((p) => p.value) } : {}),
    unique: f.unique === true || f.externalId === true,
    required: f.nillable === false && f.createable === true && f.defaultedOnCreate !== true,
  }));
}

const NUMERIC = new Set(['double', 'int', 'currency', 'percent', 'long']);
const TEXTUAL = new Set(['string', 'textarea', 'picklist', 'email', 'phone', 'url', 'multipicklist']);

function find(d: SfDescribe, name: string): SfDescribeField | undefined {
  return d.fields.find((f) => f.name.toLowerCase() === name.toLowerCase());
}

/** What a transform produces, as a Salesforce field type family, when it says. */
function producedKind(t: Mapping['fields'][number]['transform']): 'number' | 'text' | 'date' | 'datetime' | null {
  if (t === undefined || typeof t === 'object') return typeof t === 'object' ? 'text' : null;
  if (t === 'number' || t === 'integer' || t === 'epoch_ms') return 'number';
  if (t === 'date') return 'date';
  if (t === 'datetime') return 'datetime';
  return 'text';
}

export function checkMapping(mapping: Mapping, d: SfDescribe, cases: CasesConfig | null, caseDescribe: SfDescribe | null): string[] {
  const problems: string[] = [];
  const obj = d.name;
  const key = find(d, mapping.destination.match_key);
  if (!key) problems.push(`${obj}.${mapping.destination.match_key} (destination.match_key) does not exist`);
  else if (!key.externalId) problems.push(`${obj}.${key.name} (destination.match_key) is not an External ID field: upserts need one (tick "External ID", and "Unique")`);
  const inserting = mapping.mode !== 'update';
  for (const fm of mapping.fields) {
    const f = find(d, fm.to);
    const at = `${obj}.${fm.to} (from ${fm.from})`;
    if (!f) { problems.push(`${at} does not exist`); continue; }
    if (f.updateable !== true && f.createable !== true) problems.push(`${at} is read-only (not updateable, not createable)`);
    else if (f.updateable !== true) problems.push(`${at} is not updateable`);
    else if (inserting && f.createable !== true) problems.push(`${at} is not createable, so new records cannot be inserted with it`);
    const kind = producedKind(fm.transform);
    if (NUMERIC.has(f.type) && kind && kind !== 'number') problems.push(`${at} is a number field (${f.type}) but the transform produces ${kind}`);
    if (f.type === 'boolean' && kind && kind !== 'text') problems.push(`${at} is a checkbox but the transform produces ${kind}`);
    if ((f.type === 'date' || f.type === 'datetime') && kind && kind !== f.type && kind !== 'text') problems.push(`${at} is a ${f.type} field but the transform produces ${kind}`);
    if (f.type === 'reference' || f.type === 'id') problems.push(`${at} is a ${f.type} field; segsync writes values, not record links`);
    if (typeof fm.transform === 'object' && f.type === 'picklist') {
      const allowed = new Set((f.picklistValues ?? []).filter((p) => p.active !== false).map((p) => p.value));
      const bad = [...new Set(Object.values(fm.transform.map))].filter((v) => !allowed.has(v));
      if (bad.length > 0 && f.restrictedPicklist !== false) problems.push(`${at} is a restricted picklist without the value(s) ${bad.map((v) => JSON.stringify(v)).join(', ')}`);
    }
    if (!TEXTUAL.has(f.type) && !NUMERIC.has(f.type) && !['boolean', 'date', 'datetime', 'reference', 'id'].includes(f.type)) {
      problems.push(`${at} has type ${f.type}, which segsync does not write`);
    }
    if (mapping.on_removed === 'clear' && f.nillable === false && f.name !== key?.name) problems.push(`${at} cannot be emptied (required), but on_removed is clear`);
  }
  if (mapping.on_removed === 'delete' && d.deletable === false) problems.push(`${obj} records cannot be deleted by this user, but on_removed is delete`);
  if (cases) {
    if (!mapping.fields.some((f) => f.to === cases.segment_from)) problems.push(`cases.segment_from: ${cases.segment_from} is not one of the mapped fields (fields[].to)`);
    if (!caseDescribe) return problems;
    const seg = find(caseDescribe, cases.segment_field);
    if (!seg) problems.push(`Case.${cases.segment_field} (cases.segment_field) does not exist`);
    else if (seg.updateable !== true) problems.push(`Case.${cases.segment_field} (cases.segment_field) is not updateable`);
    const pri = find(caseDescribe, cases.priority_field);
    if (Object.keys(cases.priority).length > 0) {
      if (!pri) problems.push(`Case.${cases.priority_field} (cases.priority_field) does not exist`);
      else if (pri.updateable !== true) problems.push(`Case.${cases.priority_field} (cases.priority_field) is not updateable`);
      else if (pri.type === 'picklist') {
        const allowed = new Set((pri.picklistValues ?? []).map((p) => p.value));
        const bad = [...new Set(Object.values(cases.priority))].filter((v) => !allowed.has(v));
        if (bad.length > 0) problems.push(`Case.${pri.name} has no picklist value(s) ${bad.map((v) => JSON.stringify(v)).join(', ')} (cases.priority)`);
      }
    }
    if (cases.open_statuses) {
      const status = find(caseDescribe, 'Status');
      const allowed = new Set((status?.picklistValues ?? []).map((p) => p.value));
      const bad = cases.open_statuses.filter((s) => !allowed.has(s));
      if (bad.length > 0) problems.push(`cases.open_statuses: Case.Status has no value(s) ${bad.map((v) => JSON.stringify(v)).join(', ')}`);
    }
  }
  return problems;
}

/** The definition an admin should create for a field the mapping needs and the org lacks. */
function definitionFor(mapping: Mapping, name: string): string {
  const fm = mapping.fields.find((f) => f.to === name);
  const label = name.replace(/__c$/, '').replace(/_/g, ' ');
  if (name === mapping.destination.match_key) return `Text(64), External ID, Unique (case-insensitive); label "${label}"`;
  const t = fm?.transform;
  if (typeof t === 'object') {
    const values = [...new Set(Object.values(t.map))];
    return `Picklist, restricted, values: ${values.join('; ')}; label "${label}"`;
  }
  switch (producedKind(t)) {
    case 'number': return `Number(18, 2); label "${label}"`;
    case 'date': return `Date; label "${label}"`;
    case 'datetime': return `Date/Time; label "${label}"`;
    default: return /segment/i.test(name)
      ? `Picklist, restricted, values: your segment names (or Text(80)); label "${label}"`
      : `Text(255); label "${label}"`;
  }
}

export function setupLines(mapping: Mapping, d: SfDescribe, cases: CasesConfig | null, caseDescribe: SfDescribe | null): string[] {
  const lines: string[] = [];
  const obj = d.name;
  const wanted = [mapping.destination.match_key, ...mapping.fields.map((f) => f.to)];
  const missing: string[] = [];
  for (const name of [...new Set(wanted)]) {
    const f = find(d, name);
    if (f) lines.push(`exists: ${obj}.${f.name} (${f.type}${f.length ? `, length ${f.length}` : ''}${f.externalId ? ', External ID' : ''}${f.type === 'picklist' ? `, values: ${(f.picklistValues ?? []).map((p) => p.value).join('; ')}` : ''})`);
    else missing.push(name);
  }
  for (const name of missing) lines.push(`create: ${obj}.${name}: ${definitionFor(mapping, name)}`);
  const segmentField = cases?.segment_from ?? mapping.fields.find((f) => /segment/i.test(f.to))?.to;
  if (obj === 'Contact' && segmentField) {
    const existing = find(d, segmentField);
    const isPicklist = existing ? existing.type === 'picklist' : definitionFor(mapping, segmentField).startsWith('Picklist');
    const formula = isPicklist ? `TEXT(Contact.${segmentField})` : `Contact.${segmentField}`;
    const exists = caseDescribe ? find(caseDescribe, 'Contact_RFM_Segment__c') : undefined;
    lines.push(`${exists ? 'exists' : 'create'}: Case.Contact_RFM_Segment__c: Formula (Text), formula ${formula}; label "Contact RFM Segment" (shows the contact's segment on every Case, no writes needed)`);
  }
  if (cases) {
    const seg = caseDescribe ? find(caseDescribe, cases.segment_field) : undefined;
    lines.push(seg ? `exists: Case.${seg.name} (${seg.type})` : `create: Case.${cases.segment_field}: Text(80); label "RFM Segment" (written by segsync on open Cases)`);
    const pri = caseDescribe ? find(caseDescribe, cases.priority_field) : undefined;
    const values = [...new Set(Object.values(cases.priority))];
    if (!pri) lines.push(`create: Case.${cases.priority_field}: Picklist, values: ${values.join('; ')}`);
    else if (pri.type === 'picklist') {
      const have = new Set((pri.picklistValues ?? []).map((p) => p.value));
      const lack = values.filter((v) => !have.has(v));
      lines.push(lack.length ? `add picklist values to Case.${pri.name}: ${lack.join('; ')}` : `exists: Case.${pri.name} (picklist with ${values.join('; ') || 'no mapped values'})`);
    }
  }
  if (missing.length > 0 || lines.some((l) => l.startsWith('create') || l.startsWith('add'))) {
    lines.push('Salesforce custom fields are metadata: create them in Setup > Object Manager (or deploy them with the Metadata API / sf CLI),',
      `then give the integration user read/edit field-level security on each, and run \`segsync validate\` again.`);
  }
  return lines;
}
